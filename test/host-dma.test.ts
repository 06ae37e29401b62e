// DMA (spec 8): BIND_DMA and unbinding, SEND_DMA to the Launcher and between
// Guests that share a page, buffer rules, the receive cursor, key identity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Host } from "../src/host/host.ts";
import type { Guest } from "../src/host/guest.ts";
import type { HostEvent } from "../src/host/trace.ts";
import { LHCALL_BIND_DMA, LHCALL_SEND_DMA } from "../src/host/constants.ts";
import { boot, RAM_SIZE, SCRATCH, tinyGuest, va, type TinyGuest } from "./helpers/tiny-guest.ts";
import { EAX, hcall, imm32, jmpSelf, store } from "./helpers/x86.ts";

/** struct lguest_dma: used_len, then up to 16 pieces. */
function dma(pieces: [number, number][], usedLen = 0): number[] {
  const bytes = new Uint8Array(100);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, usedLen, true);
  pieces.forEach(([addr, len], i) => {
    view.setUint32(4 + 4 * i, addr, true);
    view.setUint16(68 + 2 * i, len, true);
  });
  return [...bytes];
}
const SHARED = RAM_SIZE; // the shared page's gpa in most tests: frame 256
const key = (slot: number, page = SHARED) => page + 4 * slot;
const bind = (k: number, count: number, irq: number, at = SCRATCH) => hcall(LHCALL_BIND_DMA, k, at, (count << 8) | irq);
const send = (k: number, at = SCRATCH) => hcall(LHCALL_SEND_DMA, k, at);
const text = (s: string) => [...new TextEncoder().encode(s)];
const usedLen = (t: TinyGuest, at: number) => t.u32(at);
const read = (t: TinyGuest, at: number, length: number) => new TextDecoder().decode(t.memory.ram.slice(at, at + length));

/** A Host with two Guests' worth of shared network page. */
function network(options: { wake?: (guest: Guest) => void } = {}) {
  const page = new Uint8Array(4096);
  const events: HostEvent[] = [];
  const host = new Host({ trace: (e) => events.push(e), wake: options.wake });
  const guest = (code: number[], memory: [number, number[]][] = [], pages = [page]) =>
    tinyGuest(code, { host, pages, sharedPages: [page], memory });
  return { host, page, events, guest };
}

/** A receiver with `count` buffers of `size` bytes at SCRATCH+0x1000, bound to `k` with irq 4. */
function receiver(net: ReturnType<typeof network>, k: number, count: number, size = 64, used: number[] = []) {
  const buffers = Array.from({ length: count }, (_, i) => dma([[SCRATCH + 0x1000 + i * 0x100, size]], used[i] ?? 0)).flat();
  const t = net.guest([...boot, ...bind(k, count, 4), ...jmpSelf], [[SCRATCH, buffers]]);
  t.run(2_000);
  return t;
}

function sender(net: ReturnType<typeof network>, k: number, pieces: [number, number][], data: [number, number[]][] = []) {
  const t = net.guest([...boot, ...send(k), ...jmpSelf], [[SCRATCH, dma(pieces)], ...data]);
  t.run(2_000);
  return t;
}

// --- 8.5 BIND_DMA -----------------------------------------------------------

test("BIND_DMA with an irq of 32 or more returns 0 and binds nothing", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, 0x100, SCRATCH, (1 << 8) | 32), ...jmpSelf]);
  t.run(2_000);
  assert.equal(t.guest.cpu.regs[0], 0);
  assert.equal(t.host.bindings.length, 0);
});

test("BIND_DMA with a key that is not 4-aligned kills with 'bad dma key'", () => {
  assert.deepEqual(tinyGuest([...boot, ...bind(0x102, 1, 3), ...jmpSelf]).run(), { kind: "dead", reason: "bad dma key 0x102" });
});

test("BIND_DMA with a key at or above pfn_limit kills with 'bad dma key'", () => {
  assert.deepEqual(tinyGuest([...boot, ...bind(RAM_SIZE, 1, 3), ...jmpSelf]).run(), { kind: "dead", reason: "bad dma key 0x100000" });
});

test("BIND_DMA takes the count from ecx's upper bits and the irq from its low byte; 32 bindings, then 0", () => {
  const t = tinyGuest([...boot, ...Array.from({ length: 33 }, (_, i) => bind(0x100 + 4 * i, 0x1234, 7)).flat(), ...jmpSelf]);
  t.run(5_000);
  assert.equal(t.guest.cpu.regs[0], 0, "the 33rd bind fails");
  assert.equal(t.host.bindings.length, 32);
  const first = t.host.bindings[31];
  assert.deepEqual([first.count, first.irq, first.dmas, first.nextDma], [0x1234, 7, SCRATCH, 0]);
});

test("BIND_DMA with irq 0 unbinds the binding with the same key and array; none found returns 0", () => {
  const t = tinyGuest([
    ...boot, ...bind(0x100, 1, 3), ...bind(0x100, 1, 3, SCRATCH + 0x400), ...bind(0x100, 0, 0, SCRATCH + 0x400),
    ...store(va(SCRATCH + 0xc00), EAX), ...hcall(LHCALL_SEND_DMA, 0, SCRATCH + 0x800), ...bind(0x100, 0, 0, SCRATCH + 0x400), ...jmpSelf,
  ]);
  assert.equal(t.run().kind, "dma");
  assert.equal(t.u32(SCRATCH + 0xc00), 1, "the unbind found it");
  assert.deepEqual(t.host.bindings.map((b) => b.dmas), [SCRATCH]);
  t.run(2_000);
  assert.equal(t.guest.cpu.regs[0], 0, "nothing left to unbind");
});

// --- 8.6 SEND_DMA -----------------------------------------------------------

test("SEND_DMA with a key that is not 4-aligned kills with 'bad sending DMA key'", () => {
  assert.deepEqual(tinyGuest([...boot, ...send(0x101), ...jmpSelf]).run(), { kind: "dead", reason: "bad sending DMA key" });
});

test("SEND_DMA to a shared key copies into another Guest's first free buffer, sets both used_lens, raises its irq, wakes it", () => {
  const woken: number[] = [];
  const net = network({ wake: (g) => woken.push(g.id) });
  const rx = receiver(net, key(2), 3, 64, [5]);
  const tx = sender(net, key(2), [[SCRATCH + 0x200, 6], [SCRATCH + 0x300, 5]], [[SCRATCH + 0x200, text("hello ")], [SCRATCH + 0x300, text("world")]]);
  assert.equal(tx.guest.dead, undefined);
  assert.equal(usedLen(tx, SCRATCH), 11);
  assert.equal(usedLen(rx, SCRATCH), 5, "entry 0 was busy and is untouched");
  assert.equal(usedLen(rx, SCRATCH + 100), 11);
  assert.equal(read(rx, SCRATCH + 0x1100, 11), "hello world");
  assert.equal(rx.guest.irqsPending, 1 << 4);
  assert.deepEqual(woken, [rx.guest.id]);
  assert.deepEqual(net.events.flatMap((e) => (e.type === "dma-send" ? [[e.outcome, e.to, e.length]] : [])), [["delivered", 0, 11]]);
});

test("a send to a shared key nobody else bound is dropped: used_len stays 0, and a Guest never receives its own send", () => {
  const net = network();
  const self = net.guest([...boot, ...bind(key(1), 1, 4, SCRATCH + 0x400), ...send(key(1)), ...jmpSelf], [
    [SCRATCH, [...dma([[SCRATCH + 0x200, 4]])]], [SCRATCH + 0x400, dma([[SCRATCH + 0x600, 64]])],
  ]);
  assert.equal(self.run(2_000).kind, "timeslice");
  assert.equal(usedLen(self, SCRATCH), 0);
  assert.equal(usedLen(self, SCRATCH + 0x400), 0);
  assert.equal(self.guest.irqsPending, 0);
  assert.deepEqual(net.events.flatMap((e) => (e.type === "dma-send" ? [e.outcome] : [])), ["dropped"]);
});

test("when the receiver has no free buffer the send is given up after a second try; the irq is raised anyway", () => {
  const net = network();
  const rx = receiver(net, key(2), 2, 64, [9, 9]);
  const tx = sender(net, key(2), [[SCRATCH + 0x200, 4]], [[SCRATCH + 0x200, text("ping")]]);
  assert.equal(usedLen(tx, SCRATCH), 0);
  assert.equal(rx.guest.irqsPending, 1 << 4);
  assert.deepEqual(net.events.flatMap((e) => (e.type === "dma-send" ? [e.outcome] : [])), ["full", "full"]);
});

test("the receive cursor moves on by one from where it was, not from the buffer used (the quirk)", () => {
  const net = network();
  const rx = receiver(net, key(2), 3);
  const tx = net.guest([...boot, ...send(key(2)), ...hcall(LHCALL_SEND_DMA, 0, SCRATCH + 0x800), ...send(key(2)), ...jmpSelf], [
    [SCRATCH, dma([[SCRATCH + 0x200, 4]])],
  ]);
  assert.equal(tx.run().kind, "dma");
  const binding = rx.guest.dma[0]!;
  assert.equal(binding.nextDma, 1);
  rx.ram.setUint32(SCRATCH, 0, true); // the receiver consumed buffer 0
  rx.ram.setUint32(SCRATCH + 100, 99, true); // buffer 1 is still busy
  tx.ram.setUint32(SCRATCH, 0, true);
  tx.run(2_000);
  assert.equal(usedLen(rx, SCRATCH + 200), 4, "buffer 2 took the second send");
  assert.equal(binding.nextDma, 2, "the cursor is 1 + 1, not 2 + 1");
});

test("a packet longer than the receiver's buffer is cut short, and used_len says how much went across", () => {
  const net = network();
  const rx = receiver(net, key(3), 1, 5);
  const tx = sender(net, key(3), [[SCRATCH + 0x200, 11]], [[SCRATCH + 0x200, text("hello world")]]);
  assert.equal(usedLen(tx, SCRATCH), 5);
  assert.equal(usedLen(rx, SCRATCH), 5);
  assert.equal(read(rx, SCRATCH + 0x1000, 5), "hello");
});

test("a sender's piece that crosses a page boundary kills the sender with 'bad DMA entry'", () => {
  const net = network();
  const rx = receiver(net, key(2), 1);
  const tx = sender(net, key(2), [[0x9ff0, 0x20]]);
  assert.equal(tx.guest.dead, "bad DMA entry: 32@0x9ff0");
  assert.equal(rx.guest.dead, undefined);
  assert.equal(usedLen(rx, SCRATCH), 0);
});

test("a piece longer than a page kills with 'bad DMA entry'", () => {
  const net = network();
  receiver(net, key(2), 1);
  assert.equal(sender(net, key(2), [[0x20000, 4097]]).guest.dead, "bad DMA entry: 4097@0x20000");
});

test("a receiver's bad buffer kills the receiver, and the sender learns that nothing went (used_len 0)", () => {
  const net = network();
  const rx = net.guest([...boot, ...bind(key(2), 1, 4), ...jmpSelf], [[SCRATCH, dma([[RAM_SIZE + 0x2000, 16]])]]);
  rx.run(2_000);
  const tx = sender(net, key(2), [[SCRATCH + 0x200, 4]]);
  assert.equal(rx.guest.dead, "bad DMA entry: 16@0x102000");
  assert.equal(tx.guest.dead, undefined);
  assert.equal(usedLen(tx, SCRATCH), 0);
  assert.equal(rx.guest.irqsPending, 0, "a failed transfer raises no irq");
});

test("a receiver's array that is not in its memory kills the receiver with 'bad address in registered DMA struct'", () => {
  const net = network();
  const rx = net.guest([...boot, ...bind(key(2), 1, 4, RAM_SIZE + 4096 - 50), ...jmpSelf]);
  rx.run(2_000);
  const tx = sender(net, key(2), [[SCRATCH + 0x200, 4]]);
  assert.equal(rx.guest.dead, "bad address in registered DMA struct");
  assert.equal(tx.guest.dead, undefined);
});

// --- 8.4 keys -------------------------------------------------------------------

test("keys are compared by identity: a shared page at different addresses matches, private memory never does", () => {
  const net = network();
  const other = new Uint8Array(4096);
  // The receiver maps a private page first, so the shared page is at 0x101000 in it.
  const rx = net.guest([...boot, ...bind(key(2, SHARED + 0x1000), 1, 4), ...bind(0x100, 1, 5, SCRATCH + 0x400), ...jmpSelf], [
    [SCRATCH, dma([[SCRATCH + 0x1000, 64]])], [SCRATCH + 0x400, dma([[SCRATCH + 0x1400, 64]])],
  ], [other, net.page]);
  rx.run(2_000);
  const tx = sender(net, key(2), [[SCRATCH + 0x200, 4]], [[SCRATCH + 0x200, text("ping")]]);
  assert.equal(usedLen(rx, SCRATCH), 4);
  const launcher = net.guest([...boot, ...send(0x100), ...jmpSelf], [[SCRATCH, dma([[SCRATCH + 0x200, 4]])]]);
  assert.deepEqual(launcher.run(), { kind: "dma", dmaGpa: SCRATCH, key: 0x100 }, "a private key is the Launcher's");
  assert.equal(usedLen(rx, SCRATCH + 0x400), 0);
  assert.equal(tx.guest.dead, undefined);
});

test("the most recently bound matching buffer wins", () => {
  const net = network();
  const older = receiver(net, key(2), 1);
  const newer = receiver(net, key(2), 1);
  sender(net, key(2), [[SCRATCH + 0x200, 4]]);
  assert.equal(usedLen(older, SCRATCH), 0);
  assert.equal(usedLen(newer, SCRATCH), 4);
});

test("releasing a Guest drops its bindings: sends to it are dropped", () => {
  const net = network();
  const rx = receiver(net, key(2), 1);
  net.host.release(rx.guest);
  assert.equal(net.host.bindings.length, 0);
  const tx = sender(net, key(2), [[SCRATCH + 0x200, 4]]);
  assert.equal(usedLen(tx, SCRATCH), 0);
  assert.deepEqual(net.events.flatMap((e) => (e.type === "dma-send" ? [e.outcome] : [])), ["dropped"]);
  assert.equal(imm32(1).length, 4);
});

// --- descriptors as a real kernel lays them out (spec 8.5) -------------------------

/** dma(), but every byte garbage first, and addr[n] = 0xffffffff after the terminator: a descriptor built on a stack. */
function stackDma(pieces: [number, number][], usedLen = 0): number[] {
  const bytes = dma(pieces, usedLen).map((byte, i) => (i >= 4 + 4 * pieces.length && i < 68 ? 0xa5 : byte));
  for (let i = 68 + 2 * (pieces.length + 1); i < 100; i++) bytes[i] = 0xa5;
  if (pieces.length < 16) bytes.splice(4 + 4 * pieces.length, 4, 0xff, 0xff, 0xff, 0xff);
  return bytes;
}

test("a send built on the stack, garbage after its terminator, goes across; the garbage is never checked", () => {
  const net = network();
  const rx = net.guest([...boot, ...bind(key(2), 1, 4), ...jmpSelf], [[SCRATCH, stackDma([[SCRATCH + 0x1000, 64]])]]);
  rx.run(2_000);
  const tx = sender(net, key(2), [], [[SCRATCH, stackDma([[SCRATCH + 0x201, 5]])], [SCRATCH + 0x201, text("stack")]]);
  assert.equal(tx.guest.dead, undefined);
  assert.equal(rx.guest.dead, undefined);
  assert.equal(usedLen(tx, SCRATCH), 5);
  assert.equal(read(rx, SCRATCH + 0x1000, 5), "stack");
});

test("sixteen pieces on both sides, all used, no terminator: all sixteen go across, unaligned, each ending where it may", () => {
  const net = network();
  const into = Array.from({ length: 16 }, (_, i): [number, number] => [0x20000 + 0x1000 * i + 0xffd, 3]); // each ends at its page's end
  const rx = net.guest([...boot, ...bind(key(2), 1, 4), ...jmpSelf], [[SCRATCH, dma(into)]]);
  rx.run(2_000);
  const from = Array.from({ length: 16 }, (_, i): [number, number] => [0x40001 + 0x10 * i, 3]);
  const message = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL"; // 48 bytes
  const tx = sender(net, key(2), from, from.map(([addr], i): [number, number[]] => [addr, text(message.slice(3 * i, 3 * i + 3))]));
  assert.equal(tx.guest.dead, undefined);
  assert.equal(usedLen(tx, SCRATCH), 48);
  assert.equal(into.map(([addr]) => read(rx, addr, 3)).join(""), message);
});

test("a whole page at a page's start is one legal piece; a descriptor that itself crosses a page is read whole", () => {
  const net = network();
  const rx = net.guest([...boot, ...bind(key(2), 1, 4), ...jmpSelf], [[SCRATCH, dma([[0x20000, 4096]])]]);
  rx.run(2_000);
  const at = 0xafc0; // crosses 0xb000
  const tx = net.guest([...boot, ...send(key(2), at), ...jmpSelf], [[at, stackDma([[0x30000, 4096]])], [0x30000, new Array(4096).fill(0x5a)]]);
  tx.run(2_000);
  assert.equal(tx.guest.dead, undefined);
  assert.equal(usedLen(tx, at), 4096);
  assert.equal(rx.memory.ram[0x20fff], 0x5a);
});

test("a receiver's bound descriptor with garbage after its terminator receives; a piece of it across a page kills the receiver", () => {
  const net = network();
  const rx = net.guest([...boot, ...bind(key(2), 1, 4), ...jmpSelf], [[SCRATCH, stackDma([[0x20ff8, 16]])]]);
  rx.run(2_000);
  const tx = sender(net, key(2), [[SCRATCH + 0x200, 4]], [[SCRATCH + 0x200, text("ping")]]);
  assert.equal(rx.guest.dead, "bad DMA entry: 16@0x20ff8");
  assert.equal(usedLen(tx, SCRATCH), 0);
});
