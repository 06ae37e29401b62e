// Hypercalls (spec 3) and lguest_data (spec 4): the calling convention,
// LGUEST_INIT, CRASH, the asynchronous ring, and the calls that kill.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EAX, EBP, EBX, ECX, EDI, EDX, ESI } from "../src/cpu/registers.ts";
import { Host, type HostOptions } from "../src/host/host.ts";
import type { HostEvent } from "../src/host/trace.ts";
import {
  LHCALL_BIND_DMA, LHCALL_CRASH, LHCALL_FLUSH_ASYNC, LHCALL_LGUEST_INIT, LHCALL_LOAD_IDT_ENTRY,
  LHCALL_SEND_DMA, LHCALL_SET_CLOCKEVENT, LHCALL_TS,
} from "../src/host/constants.ts";
import { LGUEST_DATA } from "../src/host/abi.ts";
import {
  boot, CODE, DATA, enterUser, HANDLER, kernelSetup, linuxGdt, RAM_SIZE, SCRATCH, stackTop, STACK_TOP, tinyGuest, USER,
  USER_CS, USER_DS, USER_VA, va,
} from "./helpers/tiny-guest.ts";
import { gate, hcall, int, jmpSelf, mov, storeImm, ESP } from "./helpers/x86.ts";

const hypercalls = (events: HostEvent[]) =>
  events.flatMap((e) => (e.type === "hypercall" ? [{ name: e.name, edx: e.edx, async: e.async }] : []));

function traced(code: number[], options: { hostOptions?: HostOptions; memory?: [number, number[]][] } = {}) {
  const events: HostEvent[] = [];
  const t = tinyGuest(code, { ...options, hostOptions: { ...options.hostOptions, trace: (e) => events.push(e) } });
  return { ...t, events };
}

/** Guest code that queues a call in ring slot `n` (registers, then status 0). */
function queue(n: number, eax: number, edx = 0, ebx = 0, ecx = 0): number[] {
  const slot = va(DATA + LGUEST_DATA.hcalls + 16 * n);
  return [
    ...storeImm(slot, eax), ...storeImm(slot + 4, edx), ...storeImm(slot + 8, ebx), ...storeImm(slot + 12, ecx),
  ];
}
/** Sets the status bytes of slots 4k..4k+3 at once. */
const status = (k: number, bytes: [number, number, number, number]) =>
  storeImm(va(DATA + LGUEST_DATA.hcallStatus + 4 * k), (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0);

test("struct lguest_data has the spec's offsets and size", () => {
  assert.deepEqual(LGUEST_DATA, {
    irqEnabled: 0x000, blockedInterrupts: 0x004, cr2: 0x008, time: 0x00c, hcallStatus: 0x014, hcalls: 0x054,
    reserveMem: 0x454, guestid: 0x458, tscKhz: 0x45c, noirqStart: 0x460, noirqEnd: 0x464, size: 0x468,
  });
});

test("a hypercall before LGUEST_INIT kills with 'hypercall N before LGUEST_INIT'", () => {
  const t = tinyGuest([...mov(ESP, va(STACK_TOP)), ...hcall(5, 0), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "hypercall 5 before LGUEST_INIT" });
});

test("LGUEST_INIT with lguest_data not wholly in guest memory kills with 'bad guest page'", () => {
  const t = tinyGuest([...hcall(LHCALL_LGUEST_INIT, RAM_SIZE - 0x100), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "bad guest page 0xfff00" });
});

test("the address check is on addr + len: lguest_data ending on the last byte of memory is refused (spec 1.2)", () => {
  const t = tinyGuest([...hcall(LHCALL_LGUEST_INIT, RAM_SIZE - LGUEST_DATA.size), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: `bad guest page 0x${(RAM_SIZE - LGUEST_DATA.size).toString(16)}` });
  const fits = tinyGuest([...hcall(LHCALL_LGUEST_INIT, RAM_SIZE - LGUEST_DATA.size - 1), ...jmpSelf]);
  assert.equal(fits.run(1_000).kind, "timeslice");
});

test("LGUEST_INIT writes reserve_mem, tsc_khz, guestid and the wall-clock time, and reads the noirq window", () => {
  const now = 1_700_000_000_123_456_789n;
  const host = new Host({ now: () => now, tscKhz: 1234 });
  tinyGuest(jmpSelf, { host });
  const t = tinyGuest([...boot, ...jmpSelf], { host });
  t.ram.setUint32(DATA + LGUEST_DATA.noirqStart, 0xc0005000, true);
  t.ram.setUint32(DATA + LGUEST_DATA.noirqEnd, 0xc0005010, true);
  t.run(1_000);
  assert.equal(t.u32(DATA + LGUEST_DATA.reserveMem), 0x400000);
  assert.equal(t.u32(DATA + LGUEST_DATA.tscKhz), 1234);
  assert.equal(t.ram.getUint16(DATA + LGUEST_DATA.guestid, true), 1);
  assert.equal(t.u32(DATA + LGUEST_DATA.time), 1_700_000_000);
  assert.equal(t.u32(DATA + LGUEST_DATA.time + 4), 123_456_789);
  assert.equal(t.guest.noirqStart, 0xc0005000);
  assert.equal(t.guest.noirqEnd, 0xc0005010);
});

test("LGUEST_INIT writes the id the Launcher named for the Guest into guestid, as a u16 (spec 2.2, 4)", () => {
  const t = tinyGuest([...boot, ...jmpSelf], { id: 13 });
  t.run(1_000);
  assert.equal(t.guest.id, 13);
  assert.equal(t.ram.getUint16(DATA + LGUEST_DATA.guestid, true), 13);
});

test("a second LGUEST_INIT kills with 'already have lguest_data'", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_LGUEST_INIT, DATA), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "already have lguest_data" });
});

test("eax comes back holding the call number and every other register is preserved; BIND_DMA answers in eax", () => {
  const t = tinyGuest([
    ...boot, ...mov(ESI, 0x5151), ...mov(EDI, 0xd1d1), ...mov(EBP, 0xb9b9), ...hcall(LHCALL_FLUSH_ASYNC, 0x11, 0x22, 0x33), ...jmpSelf,
  ]);
  t.run(1_000);
  const regs = [...t.guest.cpu.regs];
  assert.deepEqual([regs[EAX], regs[EDX], regs[EBX], regs[ECX], regs[ESI], regs[EDI], regs[EBP]], [0, 0x11, 0x22, 0x33, 0x5151, 0xd1d1, 0xb9b9]);
  const bind = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, 0x100, SCRATCH, (1 << 8) | 3), ...jmpSelf]);
  bind.run(1_000);
  assert.equal(bind.guest.cpu.regs[EAX], 1);
});

test("int $0x1f from ring 3 is a #GP with error code 0xfa, reflected to the Guest kernel", () => {
  const t = tinyGuest([
    ...boot, ...kernelSetup, ...hcall(LHCALL_LOAD_IDT_ENTRY, 13, ...gate(va(HANDLER), 0xe, 0)), ...enterUser(),
  ], { memory: [linuxGdt(), [HANDLER, jmpSelf], [USER, [...int(0x1f), ...jmpSelf]]] });
  t.run(10_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  assert.equal(t.guest.cpu.regs[ESP] >>> 0, va(STACK_TOP) - 24, "on the kernel stack from SET_STACK");
  const [errorCode, eip, cs, eflags, esp, ss] = stackTop(t, 6);
  assert.deepEqual([errorCode, eip, cs, esp, ss], [0x1f * 8 + 2, USER_VA, USER_CS, USER_VA + 0x2000, USER_DS]);
  assert.equal(eflags & 0x200, 0x200);
});

test("hypercall 11 (GET_WALLCLOCK before 2.6.23) kills with 'Bad hypercall 11'", () => {
  assert.deepEqual(tinyGuest([...boot, ...hcall(11), ...jmpSelf]).run(), { kind: "dead", reason: "Bad hypercall 11" });
});

test("an unknown hypercall kills with 'Bad hypercall N', N printed signed", () => {
  assert.deepEqual(tinyGuest([...boot, ...hcall(17), ...jmpSelf]).run(), { kind: "dead", reason: "Bad hypercall 17" });
  assert.deepEqual(tinyGuest([...boot, ...hcall(0xffffffff), ...jmpSelf]).run(), { kind: "dead", reason: "Bad hypercall -1" });
});

test("CRASH kills with 'CRASH: ' and the Guest's message", () => {
  const message = [...new TextEncoder().encode("Power down"), 0];
  const t = tinyGuest([...boot, ...hcall(LHCALL_CRASH, SCRATCH), ...jmpSelf], { memory: [[SCRATCH, message]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "CRASH: Power down" });
});

test("CRASH reads 128 bytes and forces the last to NUL: at most 127 characters", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_CRASH, SCRATCH), ...jmpSelf], { memory: [[SCRATCH, new Array(200).fill(0x41)]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "CRASH: " + "A".repeat(127) });
});

test("a CRASH whose 128 bytes are not all the Guest's kills with 'bad read address' first", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_CRASH, RAM_SIZE - 64), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "bad read address 0xfffc0 len 128" });
});

test("the async ring runs queued calls in ring order, before the synchronous call, and frees their slots", () => {
  const t = traced([
    ...boot, ...queue(0, LHCALL_SET_CLOCKEVENT, 1000), ...queue(1, LHCALL_TS, 1), ...status(0, [0, 0, 0xff, 0xff]),
    ...hcall(LHCALL_FLUSH_ASYNC, 7), ...jmpSelf,
  ]);
  t.run(1_000);
  assert.deepEqual(hypercalls(t.events), [
    { name: "LGUEST_INIT", edx: DATA, async: false },
    { name: "SET_CLOCKEVENT", edx: 1000, async: true },
    { name: "TS", edx: 1, async: true },
    { name: "FLUSH_ASYNC", edx: 7, async: false },
  ]);
  assert.equal(t.u32(DATA + LGUEST_DATA.hcallStatus), 0xffffffff, "the slots are free again");
  assert.equal(t.guest.nextHcall, 2);
  assert.equal(t.guest.ts, true);
});

test("the ring stops at the first free slot, and the Host's cursor carries on from there", () => {
  const t = traced([
    ...boot, ...queue(0, LHCALL_TS, 1), ...status(0, [0, 0xff, 0xff, 0xff]), ...hcall(LHCALL_FLUSH_ASYNC),
    // slot 2 is queued while slot 1 is free: the Host stops at slot 1 and never sees it
    ...queue(2, LHCALL_TS, 0), ...status(0, [0xff, 0xff, 0, 0xff]), ...hcall(LHCALL_FLUSH_ASYNC),
    ...queue(1, LHCALL_SET_CLOCKEVENT, 5), ...status(0, [0xff, 0, 0, 0xff]), ...hcall(LHCALL_FLUSH_ASYNC), ...jmpSelf,
  ]);
  t.run(5_000);
  assert.deepEqual(hypercalls(t.events).slice(1).map((c) => `${c.name}${c.async ? " (ring)" : ""}`), [
    "TS (ring)", "FLUSH_ASYNC", "FLUSH_ASYNC", "SET_CLOCKEVENT (ring)", "TS (ring)", "FLUSH_ASYNC",
  ]);
  assert.equal(t.guest.nextHcall, 3);
});

test("a SEND_DMA to the Launcher from the ring stops the ring; the rest and the synchronous call wait for the next run", () => {
  const t = traced([
    ...boot, ...queue(0, LHCALL_SEND_DMA, 0, SCRATCH), ...queue(1, LHCALL_TS, 1), ...status(0, [0, 0, 0xff, 0xff]),
    ...hcall(LHCALL_FLUSH_ASYNC, 9), ...jmpSelf,
  ]);
  assert.deepEqual(t.run(), { kind: "dma", dmaGpa: SCRATCH, key: 0 });
  assert.equal(t.guest.ts, false);
  assert.deepEqual(hypercalls(t.events).map((c) => c.name), ["LGUEST_INIT", "SEND_DMA"]);
  t.run(1_000);
  assert.deepEqual(hypercalls(t.events).map((c) => c.name), ["LGUEST_INIT", "SEND_DMA", "TS", "FLUSH_ASYNC"]);
  assert.equal(t.guest.ts, true);
});

test("a bad call in the ring kills just as it would synchronously", () => {
  const t = tinyGuest([...boot, ...queue(0, 11), ...status(0, [0, 0xff, 0xff, 0xff]), ...hcall(LHCALL_FLUSH_ASYNC), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "Bad hypercall 11" });
});

test("TS: the CPU's CR0.TS follows the Guest's flag while the Guest runs", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_TS, 8), ...hcall(LHCALL_SEND_DMA, 0, SCRATCH), ...hcall(LHCALL_TS, 0), ...jmpSelf]);
  assert.equal(t.run().kind, "dma");
  assert.equal(t.guest.cpu.cr0 & 8, 8);
  t.run(1_000);
  assert.equal(t.guest.cpu.cr0 & 8, 0);
  assert.equal(CODE, 0x1000);
});

test("a hypercall is reported before its effects: SEND_DMA before the send, CRASH before the death, INIT before its flush", () => {
  const crashMessage = 0x3000;
  const t = traced([...boot, ...hcall(LHCALL_SEND_DMA, 0, SCRATCH), ...hcall(LHCALL_CRASH, crashMessage), ...jmpSelf]);
  assert.equal(t.run().kind, "dma");
  t.run();
  const kinds = t.events.flatMap((e) => (e.type === "hypercall" ? [`hcall ${e.name}`] : e.type === "shadow-fault" ? [] : [e.type]));
  assert.deepEqual(kinds, ["hcall LGUEST_INIT", "pagetable", "hcall SEND_DMA", "dma-send", "hcall CRASH", "death"]);
});

test("a call made before LGUEST_INIT is reported, then the death it causes", () => {
  const t = traced([...mov(ESP, va(STACK_TOP)), ...hcall(5, 0), ...jmpSelf]);
  t.run();
  const kinds = t.events.flatMap((e) => (e.type === "hypercall" ? [`hcall ${e.name}`] : e.type === "shadow-fault" ? [] : [e.type]));
  assert.deepEqual(kinds, ["hcall FLUSH_TLB", "death"]);
});
