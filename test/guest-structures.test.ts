// The structures a Guest shares with the Host and the Launcher (src/host/abi.ts),
// laid out the way a real Linux 2.6.23 kernel lays them out: descriptors
// built on the stack with garbage after their terminator, all sixteen
// pieces used with no terminator, buffers at odd addresses and across
// pages, lguest_data across a page boundary, a command line followed by
// garbage. A layout the spec allows never kills; one it forbids kills with
// the reason the spec (or the original) gives. The console tests drive the
// Launcher's console model, whose first version read len[i] as 32-bit
// words at 68 + 4i and killed a real kernel at its first printk.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  badHostPiece, badLauncherPiece, COMMAND_LINE, LGUEST_DATA, parseLguestDma, readBootParameters,
  readDeviceDescriptors, readLguestDma, writeDeviceDescriptor,
} from "../src/host/abi.ts";
import { LHCALL_BIND_DMA, LHCALL_FLUSH_ASYNC, LHCALL_TS } from "../src/host/constants.ts";
import { ConsoleDevice } from "../src/devices/console.ts";
import { DeviceBus } from "../src/devices/bus.ts";
import { GuestLink } from "../src/devices/link.ts";
import type { Guest } from "../src/host/guest.ts";
import type { Host } from "../src/host/host.ts";
import { layOutGuest } from "../src/launcher/layout.ts";
import { boot, RAM_SIZE, SCRATCH, tinyGuest, type TinyGuest } from "./helpers/tiny-guest.ts";
import { EAX, EDX, hcall, jmpSelf, mov } from "./helpers/x86.ts";
import { buildElf, kernelText } from "./helpers/images.ts";

/** The Launcher's console (book/devices-console.md) on a bus of its own: what it writes for the DMA at `dma`, if anything. */
function takeConsoleOutput(guest: Guest, dma: number, key: number): Uint8Array | undefined {
  const output: Uint8Array[] = [];
  const bus = new DeviceBus([new ConsoleDevice((bytes) => output.push(bytes))]);
  bus.attach([{ index: 0, pfn: 0, memory: new Uint8Array(0) }], new GuestLink(guest.host, guest, () => {}));
  bus.handleDma(dma, key);
  return output[0];
}

/** Feeds `pending` to the Launcher's console and lets it fill the Guest's free buffers; true if it all went in. */
function giveConsoleInput(host: Host, guest: Guest, pending: Uint8Array[]): boolean {
  const console = new ConsoleDevice(() => {});
  const bus = new DeviceBus([console]);
  bus.attach([{ index: 0, pfn: 0, memory: new Uint8Array(0) }], new GuestLink(host, guest, () => {}));
  for (const bytes of pending) console.receive(bytes);
  for (let k = 0; k < 16 && console.inputWaiting() && guest.dead === undefined; k++) bus.deliverInput();
  return !console.inputWaiting() && guest.dead === undefined;
}

const kernel = () => buildElf({ segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(0x3000, 0x1234) }] });

/**
 * A struct lguest_dma as a kernel builds it on its stack: every byte
 * garbage, then the pieces written, then len[n] = 0; and, as Linux's
 * hvc_lguest leaves it, addr[n] = 0xffffffff (or whatever the stack held).
 */
function stackDescriptor(pieces: [number, number][], garbage = 0xa5): number[] {
  const bytes = new Uint8Array(100).fill(garbage);
  const view = new DataView(bytes.buffer);
  pieces.forEach(([addr, len], i) => {
    view.setUint32(4 + 4 * i, addr, true);
    view.setUint16(68 + 2 * i, len, true);
  });
  if (pieces.length < 16) {
    view.setUint16(68 + 2 * pieces.length, 0, true);
    view.setUint32(4 + 4 * pieces.length, 0xffffffff, true);
  }
  return [...bytes];
}

const text = (s: string) => [...new TextEncoder().encode(s)];
const decode = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

/** A Guest that does nothing: its memory is all these tests need, plus `memory`. */
function idle(memory: [number, number[]][] = []): TinyGuest {
  return tinyGuest([...jmpSelf], { memory });
}

// --- struct lguest_dma: the reader --------------------------------------------

test("lguest_dma: sixteen u16 lengths at offset 68; the first zero ends the list, and nothing after it is read", () => {
  const dma = parseLguestDma(Uint8Array.from(stackDescriptor([[0x1234, 0x1c5]])));
  assert.deepEqual(dma.pieces, [{ addr: 0x1234, len: 0x1c5 }]);
  assert.equal(dma.usedLen, 0xa5a5a5a5, "used_len is read as it is (the guest wrapper zeroes it before a send)");
  assert.deepEqual(parseLguestDma(Uint8Array.from(stackDescriptor([]))).pieces, [], "len[0] = 0: no pieces at all");
});

test("lguest_dma: all sixteen pieces used, with no terminator, are sixteen pieces", () => {
  const pieces = Array.from({ length: 16 }, (_, i): [number, number] => [0x1000 + 0x101 * i, i + 1]);
  assert.deepEqual(parseLguestDma(Uint8Array.from(stackDescriptor(pieces))).pieces, pieces.map(([addr, len]) => ({ addr, len })));
});

test("lguest_dma: a descriptor at an odd address that crosses a page is read whole; one outside memory is not read", () => {
  const at = SCRATCH + 0xfd1; // 0x9fd1: crosses into 0xa000
  const t = idle([[at, stackDescriptor([[0x20001, 7], [0x30ffe, 3]])]]);
  assert.deepEqual(readLguestDma(t.guest, at)?.pieces, [{ addr: 0x20001, len: 7 }, { addr: 0x30ffe, len: 3 }]);
  assert.equal(readLguestDma(t.guest, RAM_SIZE - 99), undefined, "the 100 bytes must all be the Guest's (and end below top)");
  assert.equal(t.guest.dead, undefined, "reading never kills: the caller decides");
});

test("lguest_dma pieces: the Host's rule (spec 8.5) forbids crossing a page and more than a page; the Launcher's only leaving memory", () => {
  const t = idle();
  const check = (addr: number, len: number) => {
    const dma = { usedLen: 0, pieces: [{ addr, len }] };
    return [badHostPiece(t.guest, dma) === undefined, badLauncherPiece(t.guest, dma) === undefined];
  };
  assert.deepEqual(check(0x20001, 0xfff), [true, true], "unaligned, ending exactly at the page's end");
  assert.deepEqual(check(0x20000, 4096), [true, true], "a whole page");
  assert.deepEqual(check(0x20ff0, 0x20), [false, true], "crosses a page");
  assert.deepEqual(check(0x20000, 4097), [false, true], "longer than a page");
  assert.deepEqual(check(RAM_SIZE - 0x10, 0x10), [false, false], "ends exactly at top: outside (spec 1.2, 13.5)");
  assert.deepEqual(check(0xffffffff, 1), [false, false], "wraps");
  assert.equal(t.guest.dead, undefined);
});

// --- the Launcher's console: output ---------------------------------------------

test("console output: a descriptor on the stack as hvc_lguest builds it (addr[0], len[0], len[1] = 0, garbage after) prints", () => {
  const buffer = SCRATCH + 0x400;
  const t = idle([[SCRATCH, stackDescriptor([[buffer, 5]])], [buffer, text("hello")]]);
  assert.equal(decode(takeConsoleOutput(t.guest, SCRATCH, 0)), "hello");
  assert.equal(t.guest.dead, undefined);
  assert.equal(t.u32(SCRATCH), 5, "used_len: the bytes written");
});

test("console output: a buffer at an odd address that crosses a page prints (the Launcher has no page rule)", () => {
  const buffer = 0x20ffd;
  const t = idle([[SCRATCH, stackDescriptor([[buffer, 7]])], [buffer, text("crossed")]]);
  assert.equal(decode(takeConsoleOutput(t.guest, SCRATCH, 0)), "crossed");
  assert.equal(t.guest.dead, undefined);
});

test("console output: sixteen pieces and no terminator print all sixteen, in order", () => {
  const pieces = Array.from({ length: 16 }, (_, i): [number, number] => [0x20000 + 0x40 * i + (i & 1), 1]);
  const letters = "abcdefghijklmnop";
  const t = idle([[SCRATCH, stackDescriptor(pieces)], ...pieces.map(([addr], i): [number, number[]] => [addr, text(letters[i])])]);
  assert.equal(decode(takeConsoleOutput(t.guest, SCRATCH, 0)), letters);
  assert.equal(t.u32(SCRATCH), 16);
});

test("console output: a piece outside the Guest's memory kills it with the console's reason", () => {
  const t = idle([[SCRATCH, stackDescriptor([[SCRATCH + 0x400, 3], [RAM_SIZE - 2, 2]])]]);
  assert.equal(takeConsoleOutput(t.guest, SCRATCH, 0), undefined);
  assert.equal(t.guest.dead, "console output buffer 0xffffe+2 is outside its memory");
});

test("console output: a descriptor outside the Guest's memory kills it; DMA to a key nobody serves is ignored, as the original did", () => {
  const t = idle();
  assert.equal(takeConsoleOutput(t.guest, RAM_SIZE - 40, 0), undefined);
  assert.equal(t.guest.dead, "console output descriptor 0xfffd8 is outside its memory");
  const u = idle([[SCRATCH, stackDescriptor([[SCRATCH + 0x400, 3]])]]);
  assert.equal(takeConsoleOutput(u.guest, SCRATCH, 0x1000), undefined);
  assert.equal(u.guest.dead, undefined);
});

// --- the Launcher's console: input ------------------------------------------------

/** A Guest that binds `count` console input descriptors at SCRATCH to key 0 with irq 3, then idles. */
function consoleGuest(count: number, memory: [number, number[]][]): TinyGuest {
  const t = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, 0, SCRATCH, (count << 8) | 3), ...jmpSelf], { memory });
  t.run(2_000);
  assert.equal(t.guest.dead, undefined);
  return t;
}

test("console input: bound descriptors with garbage after their terminators are filled one after the other", () => {
  const first = 0x20000, second = 0x21001;
  const t = consoleGuest(2, [[SCRATCH, [...stackDescriptor([[first, 16]]), ...stackDescriptor([[second, 16]])]]]);
  t.ram.setUint32(SCRATCH, 0, true); // both free (used_len 0); everything else stays garbage
  t.ram.setUint32(SCRATCH + 100, 0, true);
  const pending = [Uint8Array.from(text("0123456789abcdefXYZW"))];
  assert.equal(giveConsoleInput(t.host, t.guest, pending), true);
  assert.equal(t.guest.dead, undefined);
  assert.equal(t.u32(SCRATCH), 16);
  assert.equal(t.u32(SCRATCH + 100), 4);
  assert.equal(new TextDecoder().decode(t.memory.ram.slice(first, first + 16)), "0123456789abcdef");
  assert.equal(new TextDecoder().decode(t.memory.ram.slice(second, second + 4)), "XYZW");
  assert.equal(t.guest.irqsPending, 1 << 3);
});

test("console input: sixteen one-byte pieces and no terminator take sixteen bytes", () => {
  const pieces = Array.from({ length: 16 }, (_, i): [number, number] => [0x20000 + 0x1ff * i, 1]);
  const t = consoleGuest(1, [[SCRATCH, stackDescriptor(pieces)]]);
  t.ram.setUint32(SCRATCH, 0, true);
  const pending = [Uint8Array.from(text("ABCDEFGHIJKLMNOP"))];
  assert.equal(giveConsoleInput(t.host, t.guest, pending), true);
  assert.equal(t.u32(SCRATCH), 16);
  assert.equal(pieces.map(([addr]) => String.fromCharCode(t.memory.ram[addr])).join(""), "ABCDEFGHIJKLMNOP");
});

test("console input: a bound buffer outside the Guest's memory kills it before a byte is copied", () => {
  const t = consoleGuest(1, [[SCRATCH, stackDescriptor([[0x20000, 4], [RAM_SIZE - 8, 16]])]]);
  t.ram.setUint32(SCRATCH, 0, true);
  assert.equal(giveConsoleInput(t.host, t.guest, [Uint8Array.from(text("abcd"))]), false);
  assert.equal(t.guest.dead, "console input buffer 0xffff8+16 is outside its memory");
  assert.equal(t.memory.ram[0x20000], 0, "nothing was copied");
});

// --- struct lguest_data --------------------------------------------------------------

test("lguest_data across a page boundary, as a static variable may lie: the ring runs across it, free slots' garbage never runs", () => {
  const data = 0xaf00; // hcalls[10] is 0xaff4..0xb003: it straddles the boundary at 0xb000
  const t = tinyGuest([...mov(EAX, 1), ...mov(EDX, data), 0xcd, 0x1f, ...hcall(LHCALL_FLUSH_ASYNC), ...jmpSelf]);
  const status = Array.from({ length: 64 }, (_, n) => (n <= 10 ? 0 : 0xff));
  t.memory.ram.set(status, data + LGUEST_DATA.hcallStatus);
  for (let n = 0; n < 64; n++) {
    const slot = data + LGUEST_DATA.hcalls + 16 * n;
    const call = n < 10 ? LHCALL_FLUSH_ASYNC : n === 10 ? LHCALL_TS : 2; // free slots hold a CRASH: garbage
    [call, 1, 0xdeadbeef, 0xdeadbeef].forEach((word, k) => t.ram.setUint32(slot + 4 * k, word, true));
  }
  t.ram.setUint16(data + LGUEST_DATA.guestid + 2, 0xabab, true); // padding after the u16 guestid
  t.run(5_000);
  assert.equal(t.guest.dead, undefined, "no garbage slot ran");
  assert.equal(t.guest.ts, true, "the slot across the page boundary ran");
  assert.deepEqual([...t.memory.ram.slice(data + LGUEST_DATA.hcallStatus, data + LGUEST_DATA.hcallStatus + 12)], new Array(12).fill(0xff));
  assert.equal(t.ram.getUint16(data + LGUEST_DATA.guestid, true), t.guest.id);
  assert.equal(t.ram.getUint16(data + LGUEST_DATA.guestid + 2, true), 0xabab, "the padding is left alone");
});

// --- the boot parameters -------------------------------------------------------------

function laidOut(kernelArguments: string[], initrd?: Uint8Array) {
  return layOutGuest({
    memoryBytes: 16 * 1024 * 1024, kernel: kernel(), kernelName: "vmlinux", initrd, initrdName: "initrd",
    devices: [{ type: 1, features: 0, pages: 0, description: "console" }], kernelArguments,
  });
}

test("boot parameters: what the layout writes is what the Guest reads (one e820 entry, the command line, subarch 1)", () => {
  const boot = readBootParameters(laidOut(["console=hvc0", "init=/bin/sh"]).ram);
  assert.deepEqual(boot.memory, { addr: 0n, size: 16n * 1024n * 1024n, type: 1 });
  assert.equal(boot.e820Entries, 1);
  assert.equal(boot.commandLinePointer, COMMAND_LINE);
  assert.equal(boot.commandLine, "console=hvc0 init=/bin/sh ");
  assert.equal(boot.hardwareSubarch, 1);
  assert.equal(boot.initrd, undefined, "no initrd: type_of_loader is 0");
  const withInitrd = readBootParameters(laidOut([], new Uint8Array(5000).fill(7)).ram);
  assert.deepEqual(withInitrd.initrd, { start: 16 * 1024 * 1024 - 8192, size: 8192 });
});

test("boot parameters: the command line ends at its NUL, garbage after it is not part of it; without a NUL, 2047 bytes", () => {
  const ram = laidOut(["quiet"]).ram;
  ram.fill(0x41, COMMAND_LINE + 7, COMMAND_LINE + 2048); // after "quiet \0"
  assert.equal(readBootParameters(ram).commandLine, "quiet ");
  ram.fill(0x42, COMMAND_LINE, COMMAND_LINE + 4096);
  assert.equal(readBootParameters(ram).commandLine, "B".repeat(2047));
});

test("boot parameters: an initrd counts only when type_of_loader and ramdisk_image are both non-zero", () => {
  const ram = laidOut([], new Uint8Array(4096)).ram;
  const view = new DataView(ram.buffer);
  view.setUint8(0x210, 0);
  assert.equal(readBootParameters(ram).initrd, undefined);
  view.setUint8(0x210, 0xff);
  view.setUint32(0x218, 0, true);
  assert.equal(readBootParameters(ram).initrd, undefined);
});

// --- the device descriptor page ----------------------------------------------------------

test("device page: every one of the sixteen slots is scanned (an empty slot is not the end); status bits and stray bytes", () => {
  const page = new Uint8Array(4096).fill(0x5a, 192); // bytes after the sixteenth descriptor are nobody's
  writeDeviceDescriptor(page, { index: 0, type: 3, features: 0x8000, status: 0, numPages: 1, pfn: 0x1001 });
  writeDeviceDescriptor(page, { index: 5, type: 1, features: 0, status: 1 | 2 | 4, numPages: 0, pfn: 0 });
  writeDeviceDescriptor(page, { index: 15, type: 2, features: 0x4000 | 7, status: 128, numPages: 1, pfn: 0x1002 });
  new DataView(page.buffer).setUint32(12 + 8, 0xdeadbeef, true); // an empty slot's pfn: garbage
  assert.deepEqual(readDeviceDescriptors(page), [
    { index: 0, type: 3, features: 0x8000, status: 0, numPages: 1, pfn: 0x1001 },
    { index: 5, type: 1, features: 0, status: 7, numPages: 0, pfn: 0 },
    { index: 15, type: 2, features: 0x4007, status: 128, numPages: 1, pfn: 0x1002 },
  ]);
});

test("device page: the layout's descriptors read back, console last, pages above the descriptor page", () => {
  const layout = layOutGuest({
    memoryBytes: 16 * 1024 * 1024, kernel: kernel(), kernelName: "vmlinux", kernelArguments: [],
    devices: [
      { type: 3, features: 0x8000, pages: 1, description: "block" },
      { type: 1, features: 0, pages: 0, description: "console" },
    ],
  });
  assert.deepEqual(readDeviceDescriptors(layout.descriptorPage), [
    { index: 0, type: 3, features: 0x8000, status: 0, numPages: 1, pfn: 16 * 256 + 1 },
    { index: 1, type: 1, features: 0, status: 0, numPages: 0, pfn: 0 },
  ]);
});
