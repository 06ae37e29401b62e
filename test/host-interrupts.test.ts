// Interrupts and traps (spec 5): the Guest's IDT, direct and reflected
// delivery and their frames, virtual interrupts, halting, the timer, the
// kernel stack, and the I/O instructions the Host emulates.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EAX, ESP } from "../src/cpu/registers.ts";
import type { HostEvent } from "../src/host/trace.ts";
import {
  LHCALL_HALT, LHCALL_LOAD_IDT_ENTRY, LHCALL_SET_CLOCKEVENT, LHCALL_SET_STACK,
} from "../src/host/constants.ts";
import { LGUEST_DATA } from "../src/host/abi.ts";
import { STATE_TSS } from "../src/host/switcher.ts";
import {
  boot, CODE, DATA, enterUser, HANDLER, kernelSetup, KERNEL_PTES, linuxGdt, PAGE_OFFSET, SCRATCH, stackTop, STACK_TOP, tinyGuest, USER,
  USER_CS, USER_DS, USER_VA, va, type TinyGuestOptions,
} from "./helpers/tiny-guest.ts";
import { cli, EDX, gate, hcall, inDx16, inDx32, inImm8, int, int3, jmpSelf, mov, outDx32, outImm8, ud2, EBX, ECX } from "./helpers/x86.ts";

const idtEntry = (vector: number, handler: number, type = 0xe, dpl = 0) => hcall(LHCALL_LOAD_IDT_ENTRY, vector, ...gate(handler, type, dpl));

function traced(code: number[], options: TinyGuestOptions = {}) {
  const events: HostEvent[] = [];
  const t = tinyGuest(code, { ...options, hostOptions: { ...options.hostOptions, trace: (e) => events.push(e) } });
  return { ...t, events, traps: () => events.flatMap((e) => (e.type === "trap" ? [e] : [])) };
}

/** The Guest's stored gate for `vector`. */
const stored = (t: ReturnType<typeof tinyGuest>, vector: number) =>
  vector === 0x80 ? [t.guest.syscallIdt[0] >>> 0, t.guest.syscallIdt[1] >>> 0] : [t.guest.idt[vector * 2] >>> 0, t.guest.idt[vector * 2 + 1] >>> 0];

// --- 5.3 The Guest's IDT -------------------------------------------------

test("LOAD_IDT_ENTRY ignores vectors 2, 8, 15 and 31 silently", () => {
  const t = tinyGuest([...boot, ...[2, 8, 15, 31].flatMap((v) => idtEntry(v, va(HANDLER), 0xf)), ...jmpSelf]);
  t.run(2_000);
  assert.equal(t.guest.dead, undefined);
  for (const v of [2, 8, 15, 31]) assert.deepEqual(stored(t, v), [0, 0]);
});

test("LOAD_IDT_ENTRY stores 0..63 and 0x80, and ignores other vectors", () => {
  const t = tinyGuest([...boot, ...idtEntry(63, va(HANDLER)), ...idtEntry(0x80, va(HANDLER), 0xf, 3), ...idtEntry(64, va(HANDLER)), ...jmpSelf]);
  t.run(2_000);
  assert.notDeepEqual(stored(t, 63), [0, 0]);
  assert.notDeepEqual(stored(t, 0x80), [0, 0]);
  assert.equal(t.guest.idt.length, 128, "no room for vector 64");
});

test("a stored gate has selector 0x61 and keeps only offset, P, DPL and type (hi & 0xFFFFEF00)", () => {
  const handler = 0xc0123456;
  const lo = (0x10 << 16) | 0x3456, hi = (0xc0120000 | 0x8000 | (3 << 13) | 0x1000 | (0xf << 8) | 0x55) >>> 0;
  const t = tinyGuest([...boot, ...hcall(LHCALL_LOAD_IDT_ENTRY, 3, lo, hi), ...jmpSelf]);
  t.run(2_000);
  assert.deepEqual(stored(t, 3), [((0x61 << 16) | (handler & 0xffff)) >>> 0, (hi & 0xffffef00) >>> 0]);
});

test("a gate that is not present clears the entry", () => {
  const t = tinyGuest([...boot, ...idtEntry(6, va(HANDLER)), ...hcall(LHCALL_LOAD_IDT_ENTRY, 6, ...gate(va(HANDLER), 0xe, 0, false)), ...jmpSelf]);
  t.run(2_000);
  assert.deepEqual(stored(t, 6), [0, 0]);
});

test("a present gate that is neither an interrupt nor a trap gate kills with 'bad IDT type N'", () => {
  assert.deepEqual(tinyGuest([...boot, ...idtEntry(6, va(HANDLER), 0x5), ...jmpSelf]).run(), { kind: "dead", reason: "bad IDT type 5" });
  assert.deepEqual(tinyGuest([...boot, ...idtEntry(6, va(HANDLER), 0xc), ...jmpSelf]).run(), { kind: "dead", reason: "bad IDT type 12" });
});

// --- 5.4 (a) direct delivery -------------------------------------------------

const userSetup = (extra: number[] = []) => [...boot, ...kernelSetup, ...extra];
const userMemory = (userCode: number[]): [number, number[]][] => [linuxGdt(), [HANDLER, jmpSelf], [USER, userCode]];

test("a DPL-3 trap gate for 0x80 takes a user int $0x80 straight to the Guest kernel, on ss1:esp1", () => {
  const t = traced(userSetup([...idtEntry(0x80, va(HANDLER), 0xf, 3), ...enterUser()]), { memory: userMemory([...int(0x80), ...jmpSelf]) });
  t.run(10_000);
  const cpu = t.guest.cpu;
  assert.equal(cpu.eip >>> 0, va(HANDLER));
  assert.equal(cpu.cpl, 1);
  assert.equal(cpu.regs[ESP] >>> 0, va(STACK_TOP) - 20);
  assert.deepEqual(stackTop(t, 5).map((w, k) => (k === 2 ? w & 0x200 : w)), [USER_VA + 2, USER_CS, 0x200, USER_VA + 0x2000, USER_DS]);
  assert.deepEqual(t.traps().map((e) => [e.vector, e.delivery]), [[0x80, "direct"]]);
  assert.equal(cpu.stopOnVector[0x80], 0);
});

test("without a trap gate for 0x80, a user int $0x80 is a #GP with error code 0x402", () => {
  const t = traced(userSetup([...idtEntry(0x80, va(HANDLER), 0xe, 3), ...idtEntry(13, va(HANDLER + 0x100)), ...enterUser()]), {
    memory: [...userMemory([...int(0x80), ...jmpSelf]), [HANDLER + 0x100, jmpSelf]],
  });
  t.run(10_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER + 0x100));
  assert.equal(stackTop(t, 1)[0], 0x80 * 8 + 2);
  assert.deepEqual(t.traps().map((e) => [e.vector, e.delivery]), [[13, "reflected"]]);
});

test("trap gates for 7, 13 and 14 are never direct; for the other exceptions they are", () => {
  const t = tinyGuest([...boot, ...[0, 6, 7, 13, 14].flatMap((v) => idtEntry(v, va(HANDLER), 0xf)), ...idtEntry(1, va(HANDLER), 0xe), ...jmpSelf]);
  t.run(2_000);
  const stops = t.guest.cpu.stopOnVector;
  assert.deepEqual([0, 1, 6, 7, 13, 14, 32, 0x1f].map((v) => stops[v]), [0, 1, 0, 1, 1, 1, 1, 1]);
});

test("an exception with a trap gate is delivered by the CPU itself: frame on the current stack, IF untouched", () => {
  const t = traced([...boot, ...idtEntry(6, va(HANDLER), 0xf), ...ud2], { memory: [[HANDLER, jmpSelf]] });
  t.run(2_000);
  const at = va(CODE + boot.length + 22);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  // #UD is a fault: the hardware pushes its EFLAGS with RF set (SDM vol. 3 17.3.1.1)
  assert.deepEqual(stackTop(t, 3), [at, 0x61, 0x10202]);
  assert.equal(t.u32(DATA + LGUEST_DATA.irqEnabled), 0x200);
  assert.deepEqual(t.traps().map((e) => [e.vector, e.delivery, e.eip]), [[6, "direct", at]]);
});

// --- 5.4 (b) reflection -------------------------------------------------

test("a Guest kernel's int $0x21 is a #GP with error code 0x10a (the Host's gate has DPL 0)", () => {
  const t = tinyGuest([...boot, ...idtEntry(13, va(HANDLER)), ...int(0x21)], { memory: [[HANDLER, jmpSelf]] });
  t.run(2_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  assert.equal(stackTop(t, 1)[0], 0x21 * 8 + 2);
});

test("a user int3 reaches the Guest as #GP(0x1a) when vector 3 is an interrupt gate", () => {
  const t = traced(userSetup([...idtEntry(3, va(HANDLER + 0x100), 0xe, 3), ...idtEntry(13, va(HANDLER)), ...enterUser()]), {
    memory: userMemory([...int3, ...jmpSelf]),
  });
  t.run(10_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  assert.deepEqual(stackTop(t, 2), [3 * 8 + 2, USER_VA]);
});

test("a reflected trap from ring 1 pushes eflags, cs, eip and the error code on the current stack", () => {
  const t = traced([...boot, ...idtEntry(13, va(HANDLER)), ...cli], { memory: [[HANDLER, jmpSelf]] });
  t.run(2_000);
  const at = va(CODE + boot.length + 22);
  assert.equal(t.guest.cpu.regs[ESP] >>> 0, va(STACK_TOP) - 16);
  assert.deepEqual(stackTop(t, 4), [0, at, 0x61, 0x202]);
  assert.equal(t.guest.cpu.segSelector[1], 0x61);
  assert.deepEqual(t.traps().map((e) => [e.vector, e.delivery, e.errorCode, e.eip]), [[13, "reflected", 0, at]]);
});

test("the reflected frame's IF comes from lguest_data.irq_enabled, while the CPU's IF stays set", () => {
  const t = tinyGuest([...boot, ...idtEntry(6, va(HANDLER)), ...ud2], { memory: [[HANDLER, jmpSelf]] });
  t.ram.setUint32(DATA + LGUEST_DATA.irqEnabled, 0, true);
  t.run(2_000);
  assert.equal(stackTop(t, 3)[2], 0x002);
  assert.equal(t.guest.cpu.eflags() & 0x200, 0x200);
});

test("reflecting through an interrupt gate clears irq_enabled; through a trap gate it does not", () => {
  const interrupt = tinyGuest([...boot, ...idtEntry(13, va(HANDLER), 0xe), ...cli], { memory: [[HANDLER, jmpSelf]] });
  interrupt.run(2_000);
  assert.equal(interrupt.u32(DATA + LGUEST_DATA.irqEnabled), 0);
  const trap = tinyGuest([...boot, ...idtEntry(13, va(HANDLER), 0xf), ...cli], { memory: [[HANDLER, jmpSelf]] });
  trap.run(2_000);
  assert.equal(trap.guest.cpu.eip >>> 0, va(HANDLER));
  assert.equal(trap.u32(DATA + LGUEST_DATA.irqEnabled), 0x200);
});

test("a reflected frame that falls outside guest memory kills with 'bad write address'", () => {
  const t = tinyGuest([...boot, ...idtEntry(6, va(HANDLER)), ...mov(ESP, PAGE_OFFSET), ...ud2], { memory: [[HANDLER, jmpSelf]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "bad write address 0xfffffffc len 4" });
});

// --- 5.5 virtual interrupts -----------------------------------------------

const irqGuest = (extra: number[] = [], options: TinyGuestOptions = {}) =>
  traced([...boot, ...idtEntry(33, va(HANDLER)), ...idtEntry(35, va(HANDLER + 0x100)), ...extra, ...jmpSelf], {
    ...options, memory: [[HANDLER, jmpSelf], [HANDLER + 0x100, jmpSelf], ...(options.memory ?? [])],
  });

test("the lowest pending, unmasked irq is delivered first, and only one per trip round the loop", () => {
  const t = irqGuest();
  t.run(2_000);
  t.host.irq(t.guest, 3);
  t.host.irq(t.guest, 1);
  t.run(1);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  assert.equal(t.guest.irqsPending, 1 << 3);
  assert.deepEqual(t.events.flatMap((e) => (e.type === "interrupt" ? [e.irq] : [])), [1]);
});

test("an irq masked in blocked_interrupts is not delivered", () => {
  const t = irqGuest();
  t.run(2_000);
  const eip = t.guest.cpu.eip;
  t.ram.setUint32(DATA + LGUEST_DATA.blockedInterrupts, 1 << 1, true);
  t.host.irq(t.guest, 1);
  t.run(1_000);
  assert.equal(t.guest.cpu.eip, eip);
  assert.equal(t.guest.irqsPending, 2);
});

test("no interrupt is delivered while lguest_data.irq_enabled is 0", () => {
  const t = irqGuest();
  t.run(2_000);
  const eip = t.guest.cpu.eip;
  t.ram.setUint32(DATA + LGUEST_DATA.irqEnabled, 0, true);
  t.host.irq(t.guest, 1);
  t.run(1_000);
  assert.equal(t.guest.cpu.eip, eip);
  t.ram.setUint32(DATA + LGUEST_DATA.irqEnabled, 0x200, true);
  t.run(1_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
});

test("no interrupt is delivered while eip is inside the noirq window", () => {
  const spin = va(CODE + boot.length + 44);
  const t = irqGuest();
  t.ram.setUint32(DATA + LGUEST_DATA.noirqStart, spin, true);
  t.ram.setUint32(DATA + LGUEST_DATA.noirqEnd, spin + 2, true);
  t.run(2_000);
  t.host.irq(t.guest, 1);
  t.run(1_000);
  assert.equal(t.guest.cpu.eip >>> 0, spin);
  assert.equal(t.guest.irqsPending, 2);
});

test("an irq whose gate is missing stays pending, but the time is still written", () => {
  let now = 5_000_000_000n;
  const t = irqGuest([], { hostOptions: { now: () => now } });
  t.run(2_000);
  now = 7_000_000_001n;
  t.host.irq(t.guest, 2);
  t.run(1_000);
  assert.equal(t.guest.irqsPending, 4);
  assert.equal(t.u32(DATA + LGUEST_DATA.time), 7);
  assert.equal(t.u32(DATA + LGUEST_DATA.time + 4), 1);
});

test("delivering an interrupt refreshes lguest_data.time", () => {
  let now = 1_000_000_000n;
  const t = irqGuest([], { hostOptions: { now: () => now } });
  t.run(2_000);
  now = 42_500_000_000n;
  t.host.irq(t.guest, 1);
  t.run(1_000);
  assert.equal(t.u32(DATA + LGUEST_DATA.time), 42);
  assert.equal(t.u32(DATA + LGUEST_DATA.time + 4), 500_000_000);
});

test("HALT: the Guest does not run again until an interrupt can be delivered", () => {
  const t = irqGuest([...hcall(LHCALL_HALT), ...mov(EAX, 0x1234)]);
  assert.deepEqual(t.run(), { kind: "timeslice", halted: true, timerAt: undefined });
  t.ram.setUint32(DATA + LGUEST_DATA.blockedInterrupts, 1 << 1, true);
  t.host.irq(t.guest, 1);
  assert.deepEqual(t.run(), { kind: "timeslice", halted: true, timerAt: undefined }, "a masked irq does not wake it");
  assert.notEqual(t.guest.cpu.regs[EAX], 0x1234);
  t.ram.setUint32(DATA + LGUEST_DATA.blockedInterrupts, 0, true);
  t.run(1_000);
  assert.equal(t.guest.halted, false);
});

// --- 5.7 the timer -------------------------------------------------------

test("SET_CLOCKEVENT(delta) makes irq 0 pending delta nanoseconds later, once", () => {
  let now = 1_000n;
  const t = traced([...boot, ...idtEntry(32, va(HANDLER)), ...hcall(LHCALL_SET_CLOCKEVENT, 500), ...jmpSelf], {
    hostOptions: { now: () => now }, memory: [[HANDLER, jmpSelf]],
  });
  t.run(2_000);
  assert.equal(t.guest.timerAt, 1_500n);
  now = 1_499n;
  t.run(1_000);
  assert.equal(t.guest.irqsPending, 0);
  now = 1_500n;
  t.run(1_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  assert.equal(t.guest.timerAt, undefined, "one-shot");
  assert.equal(t.events.filter((e) => e.type === "timer").length, 1);
});

test("SET_CLOCKEVENT(0) cancels the timer; a new delta replaces the old", () => {
  let now = 0n;
  const cancel = tinyGuest([...boot, ...hcall(LHCALL_SET_CLOCKEVENT, 500), ...hcall(LHCALL_SET_CLOCKEVENT, 0), ...jmpSelf], { hostOptions: { now: () => now } });
  cancel.run(2_000);
  assert.equal(cancel.guest.timerAt, undefined);
  const replace = tinyGuest([...boot, ...hcall(LHCALL_SET_CLOCKEVENT, 500), ...hcall(LHCALL_SET_CLOCKEVENT, 0xffffffff), ...jmpSelf], { hostOptions: { now: () => now } });
  replace.run(2_000);
  assert.equal(replace.guest.timerAt, 0xffffffffn);
});

test("a halted Guest's run says when its timer is due; once it is, the next run wakes it", () => {
  let now = 0n;
  const t = tinyGuest([...boot, ...idtEntry(32, va(HANDLER)), ...hcall(LHCALL_SET_CLOCKEVENT, 10_000), ...hcall(LHCALL_HALT), ...jmpSelf], {
    hostOptions: { now: () => now }, memory: [[HANDLER, jmpSelf]],
  });
  assert.deepEqual(t.run(), { kind: "timeslice", halted: true, timerAt: 10_000n });
  now = 10_000n;
  t.run(1_000);
  assert.equal(t.guest.halted, false);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
});

// --- 5.6 the kernel stack --------------------------------------------------

test("SET_STACK with a segment whose RPL is not 1 kills with 'bad stack segment'", () => {
  assert.deepEqual(tinyGuest([...boot, ...hcall(LHCALL_SET_STACK, 0x68, va(STACK_TOP), 2), ...jmpSelf]).run(), { kind: "dead", reason: "bad stack segment 104" });
});

test("SET_STACK with more than two pages kills with 'bad stack pages'", () => {
  assert.deepEqual(tinyGuest([...boot, ...hcall(LHCALL_SET_STACK, 0x69, va(STACK_TOP), 3), ...jmpSelf]).run(), { kind: "dead", reason: "bad stack pages 3" });
});

test("SET_STACK with a stack that is not mapped kills with 'bad stack page'", () => {
  assert.deepEqual(tinyGuest([...boot, ...hcall(LHCALL_SET_STACK, 0x69, 0xd0000000, 1), ...jmpSelf]).run(), { kind: "dead", reason: "bad stack page 0xcfffffff" });
});

test("SET_STACK pins both stack pages present and writable in the shadow, and the TSS gets ss1:esp1", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_SET_STACK, 0x69, va(STACK_TOP), 2), ...jmpSelf]);
  t.run(2_000);
  const directory = t.guest.pgdirs[t.guest.pgdidx]!;
  const table = t.guest.frames.words(directory.entries[PAGE_OFFSET >>> 22] >>> 12);
  for (const page of [(STACK_TOP >>> 12) - 1, (STACK_TOP >>> 12) - 2]) {
    assert.equal(table[page] & 3, 3, `stack page ${page.toString(16)} present and writable`);
    assert.equal(t.u32(KERNEL_PTES + page * 4) & 0x60, 0x60, "the Guest's entry is accessed and dirty");
  }
  assert.equal(table[STACK_TOP >>> 12] & 1, 0, "the page above the stack is not pinned");
  assert.equal(t.guest.switcher.view.getUint32(STATE_TSS + 12, true), va(STACK_TOP));
  assert.equal(t.guest.switcher.view.getUint16(STATE_TSS + 16, true), 0x69);
});

// --- 5.11 I/O emulation -------------------------------------------------

test("in $imm8, %al in the Guest kernel reads all ones in %ax (bits 8-15 too), and skips the instruction", () => {
  const t = tinyGuest([...boot, ...mov(EAX, 0x12340000), ...inImm8(0x70), ...mov(EBX, 1), ...jmpSelf]);
  t.run(2_000);
  assert.equal(t.guest.cpu.regs[EAX] >>> 0, 0x1234ffff);
  assert.equal(t.guest.cpu.regs[EBX], 1);
});

test("in (%dx), %eax reads 0xFFFFFFFF; with the 0x66 prefix too", () => {
  const t = tinyGuest([...boot, ...mov(EAX, 0), ...mov(EDX, 0x3f8), ...inDx32, ...mov(EBX, 0), ...inDx16, ...mov(ECX, 1), ...jmpSelf]);
  t.run(2_000);
  assert.equal(t.guest.cpu.regs[EAX], -1);
  assert.equal(t.guest.cpu.regs[ECX], 1);
});

test("a 0x66 prefix on a byte-sized in sets bits 16-31 instead (the quirk)", () => {
  const t = tinyGuest([...boot, ...mov(EAX, 0x00000012), ...[0x66, 0xe4, 0x70], ...mov(EBX, 1), ...jmpSelf]);
  t.run(2_000);
  assert.equal(t.guest.cpu.regs[EAX] >>> 0, 0xffff0012);
  assert.equal(t.guest.cpu.regs[EBX], 1);
});

test("out is discarded and skipped", () => {
  const t = traced([...boot, ...mov(EAX, 7), ...outImm8(0x80), ...mov(EDX, 0x3f8), ...outDx32, ...mov(EBX, 1), ...jmpSelf]);
  t.run(2_000);
  assert.equal(t.guest.cpu.regs[EAX], 7);
  assert.equal(t.guest.cpu.regs[EBX], 1);
  assert.deepEqual(t.events.flatMap((e) => (e.type === "io" ? [[e.opcode, e.port]] : [])), [[0xe6, 0x80], [0xef, 0x3f8]]);
});

test("an I/O instruction in a user program is a #GP(0) reflected to the Guest kernel", () => {
  const t = tinyGuest(userSetup([...idtEntry(13, va(HANDLER)), ...enterUser()]), { memory: userMemory([...inImm8(0x70), ...jmpSelf]) });
  t.run(10_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  assert.deepEqual(stackTop(t, 3), [0, USER_VA, USER_CS]);
});

test("a #GP(0) that is not an I/O instruction (cli) is reflected, not emulated", () => {
  const t = tinyGuest([...boot, ...idtEntry(13, va(HANDLER)), ...cli], { memory: [[HANDLER, jmpSelf]] });
  t.run(2_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  assert.equal(SCRATCH, 0x9000);
});
