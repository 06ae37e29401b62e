// The Launcher's side of the Host (spec 2): LHREQ_INITIALIZE and its
// errors, running and what a run returns, BREAK, IRQ, GETDMA, death and
// release; and the CPU state of spec 1.6 at the first instruction.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { CS, DS, ES, FS, GS, SS, EAX, ECX } from "../src/cpu/registers.ts";
import { Host } from "../src/host/host.ts";
import { handleTrap } from "../src/host/run.ts";
import {
  LHCALL_BIND_DMA, LHCALL_HALT, LHCALL_LOAD_IDT_ENTRY, LHCALL_SEND_DMA, LHCALL_CRASH, } from "../src/host/constants.ts";
import { LGUEST_DATA } from "../src/host/abi.ts";
import { boot, CODE, DATA, HANDLER, PAGE_OFFSET, PGDIR, RAM_SIZE, SCRATCH, tinyGuest, va } from "./helpers/tiny-guest.ts";
import { gate, hcall, jmpSelf, load, store, ud2, mov } from "./helpers/x86.ts";

const idtEntry = (vector: number, handler: number, type = 0xe, dpl = 0) => hcall(LHCALL_LOAD_IDT_ENTRY, vector, ...gate(handler, type, dpl));
const stack = (t: ReturnType<typeof tinyGuest>, count: number) =>
  Array.from({ length: count }, (_, k) => t.u32(((t.guest.cpu.regs[4] >>> 0) - PAGE_OFFSET + 4 * k) >>> 0));

test("LHREQ_INITIALIZE: a page offset inside the Switcher's 4 MiB is -EINVAL", () => {
  const host = new Host();
  const result = host.initialize({ memory: new PhysicalMemory(0x10000), pfnLimit: 16, pgdir: 0, start: 0, pageOffset: 0xffc00000 });
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.error, "EINVAL");
  const below = host.initialize({ memory: new PhysicalMemory(0x10000), pfnLimit: 16, pgdir: 0, start: 0, pageOffset: 0xff800000 });
  assert.equal(below.ok, true);
});

test("LHREQ_INITIALIZE: at most 16 guests (-ENOSPC); a released slot is used again", () => {
  const host = new Host();
  const memory = new PhysicalMemory(0x10000);
  const guests = [];
  for (let k = 0; k < 16; k++) {
    const result = host.initialize({ memory, pfnLimit: 16, pgdir: 0, start: 0, pageOffset: PAGE_OFFSET });
    assert.ok(result.ok);
    assert.equal(result.guest.id, k);
    guests.push(result.guest);
  }
  const seventeenth = host.initialize({ memory, pfnLimit: 16, pgdir: 0, start: 0, pageOffset: PAGE_OFFSET });
  assert.equal(!seventeenth.ok && seventeenth.error, "ENOSPC");
  host.release(guests[5]);
  const again = host.initialize({ memory, pfnLimit: 16, pgdir: 0, start: 0, pageOffset: PAGE_OFFSET });
  assert.ok(again.ok);
  assert.equal(again.guest.id, 5);
});

test("LHREQ_INITIALIZE with the id a Launcher holds for the machine: the Guest is in that slot; Guests without one take the free slots around it", () => {
  const host = new Host();
  const memory = new PhysicalMemory(0x10000);
  const request = { memory, pfnLimit: 16, pgdir: 0, start: 0, pageOffset: PAGE_OFFSET };
  const held = host.initialize({ ...request, id: 1 });
  assert.ok(held.ok);
  assert.equal(held.guest.id, 1);
  assert.equal(host.guests[1], held.guest);
  const ids = [];
  for (let k = 0; k < 15; k++) {
    const result = host.initialize(request);
    assert.ok(result.ok);
    ids.push(result.guest.id);
  }
  assert.deepEqual(ids, [0, ...Array.from({ length: 14 }, (_, k) => k + 2)], "distinct ids from one Host, skipping the held one");
  const full = host.initialize(request);
  assert.equal(!full.ok && full.error, "ENOSPC");
});

test("LHREQ_INITIALIZE: an id outside 0..15, or one this Host already uses, is -EINVAL and makes no Guest", () => {
  const host = new Host();
  const request = { memory: new PhysicalMemory(0x10000), pfnLimit: 16, pgdir: 0, start: 0, pageOffset: PAGE_OFFSET };
  for (const id of [-1, 16, 1.5, NaN]) {
    const result = host.initialize({ ...request, id });
    assert.equal(!result.ok && result.error, "EINVAL", `id ${id}`);
  }
  assert.ok(host.initialize({ ...request, id: 7 }).ok);
  const again = host.initialize({ ...request, id: 7 });
  assert.equal(!again.ok && again.error, "EINVAL");
  assert.equal(!again.ok && again.message, "guest id 7 is already this Host's guest");
  assert.equal(host.guests.filter(Boolean).length, 1);
});

test("LHREQ_INITIALIZE: no room below 4 GiB for the Host's pages is -ENOMEM", () => {
  const result = new Host().initialize({ memory: new PhysicalMemory(0x10000), pfnLimit: 0xfff00, pgdir: 0, start: 0, pageOffset: PAGE_OFFSET });
  assert.equal(!result.ok && result.error, "ENOMEM");
});

test("the first instruction finds spec 1.6's state: ring 1, 0x61/0x69, fs and gs null, eflags 0x202, esi 0, paging on", () => {
  const t = tinyGuest(jmpSelf);
  const cpu = t.guest.cpu;
  assert.equal(cpu.cpl, 1);
  assert.equal(cpu.eip >>> 0, va(CODE));
  assert.equal(cpu.segSelector[CS], 0x61);
  for (const segment of [DS, ES, SS]) assert.equal(cpu.segSelector[segment], 0x69);
  assert.equal(cpu.segSelector[FS], 0);
  assert.equal(cpu.segSelector[GS], 0);
  assert.equal(cpu.eflags(), 0x202);
  assert.deepEqual([...cpu.regs], [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal((cpu.segAccess[CS] >> 13) & 3, 1, "kernel code segment has DPL 1");
  assert.equal((cpu.segAccess[SS] >> 13) & 3, 1, "kernel data segment has DPL 1");
  assert.ok(cpu.cr0 & 0x80000000 && cpu.cr0 & 0x10000, "paging and write protection on");
  assert.ok(cpu.cr3 >>> 12 >= t.guest.pfnLimit, "the shadow page directory is above pfn_limit");
  assert.equal(t.guest.pgdirs[0]!.cr3, PGDIR, "shadow slot 0 mirrors the Launcher's page directory");
  assert.equal(t.guest.lguestData, undefined, "lguest_data is not registered yet");
  assert.equal(t.guest.timerAt, undefined, "the timer is not armed");
});

test("run: a SEND_DMA to a private key returns {dmaGpa, key}; the Guest resumes after it", () => {
  const t = tinyGuest([
    ...boot, ...hcall(LHCALL_SEND_DMA, 0, SCRATCH),
    ...store(va(SCRATCH + 0x200), EAX), ...load(ECX, va(SCRATCH)), ...store(va(SCRATCH + 0x204), ECX), ...jmpSelf,
  ]);
  assert.deepEqual(t.run(), { kind: "dma", dmaGpa: SCRATCH, key: 0 });
  t.ram.setUint32(SCRATCH, 5, true); // the Launcher writes used_len
  assert.equal(t.run(10_000).kind, "timeslice");
  assert.equal(t.u32(SCRATCH + 0x200), LHCALL_SEND_DMA, "eax comes back holding the call number");
  assert.equal(t.u32(SCRATCH + 0x204), 5, "the Guest sees the Launcher's used_len");
});

test("run: the time slice ends after the instruction budget", () => {
  const t = tinyGuest([...boot, ...jmpSelf]);
  const result = t.run(5_000);
  assert.deepEqual(result, { kind: "timeslice", halted: false, timerAt: undefined });
  assert.ok(t.guest.cpu.instructions <= 5_000 && t.guest.cpu.instructions > 4_000);
});

test("run: a Guest that traps without retiring instructions still comes back at the end of its slice", () => {
  // The #UD handler is itself a ud2: every trip round the loop reflects the trap again.
  const handler = HANDLER;
  const t = tinyGuest([...boot, ...idtEntry(6, va(handler)), ...ud2], { memory: [[handler, ud2]] });
  const result = t.run(2_000);
  assert.equal(result.kind, "timeslice");
  assert.equal(t.guest.dead, undefined);
});

test("run: a dead Guest's run returns the reason, every time", () => {
  const t = tinyGuest([...boot, ...hcall(99), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "Bad hypercall 99" });
  assert.deepEqual(t.run(), { kind: "dead", reason: "Bad hypercall 99" });
});

test("a trap the Guest has no handler for kills with 'unhandled trap N at EIP (ERRCODE)'", () => {
  const t = tinyGuest([...boot, ...ud2]);
  const at = va(CODE + boot.length);
  assert.deepEqual(t.run(), { kind: "dead", reason: `unhandled trap 6 at 0x${at.toString(16)} (0x0)` });
});

test("a page fault the Guest cannot take kills with the faulting address; before LGUEST_INIT nothing is written", () => {
  const t = tinyGuest([...load(ECX, 0x12345678), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "unhandled trap 14 at 0xc0001000 (0x12345678)" });
});

test("LHREQ_BREAK: while on, run returns 'break'; off, the Guest runs again", () => {
  const t = tinyGuest([...boot, ...jmpSelf]);
  t.host.setBreak(true, t.guest);
  assert.deepEqual(t.run(), { kind: "break" });
  assert.deepEqual(t.run(), { kind: "break" });
  t.host.setBreak(false);
  assert.equal(t.run(1_000).kind, "timeslice");
});

test("LHREQ_IRQ: an irq of 32 or more is -EINVAL; a valid one is delivered on the next run", () => {
  const t = tinyGuest([...boot, ...idtEntry(33, va(HANDLER)), ...jmpSelf], { memory: [[HANDLER, jmpSelf]] });
  t.run(1_000);
  assert.deepEqual(t.host.irq(t.guest, 32), { ok: false, error: "EINVAL" });
  assert.deepEqual(t.host.irq(t.guest, -1), { ok: false, error: "EINVAL" });
  assert.deepEqual(t.host.irq(t.guest, 1), { ok: true });
  t.run(1_000);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
});

test("LHREQ_IRQ does not wake a halted Guest by itself; its next run delivers the irq and wakes it", () => {
  const t = tinyGuest([...boot, ...idtEntry(33, va(HANDLER)), ...hcall(LHCALL_HALT), ...jmpSelf], { memory: [[HANDLER, jmpSelf]] });
  t.ram.setUint32(DATA + LGUEST_DATA.irqEnabled, 0, true); // a Linux Guest halts with interrupts off
  assert.deepEqual(t.run(), { kind: "timeslice", halted: true, timerAt: undefined });
  t.host.irq(t.guest, 1);
  assert.equal(t.guest.halted, true);
  t.run(1_000);
  assert.equal(t.guest.halted, false);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER));
  const [eip, cs, eflags] = stack(t, 3);
  assert.equal(eip, va(CODE + boot.length + 2 * hcall(0).length), "the frame returns after the HALT hypercall");
  assert.equal(cs, 0x61);
  assert.equal(eflags & 0x200, 0x200, "waking turned interrupts on, so the frame's IF is set");
  assert.equal(t.u32(DATA + LGUEST_DATA.irqEnabled), 0, "the interrupt gate turned them off again");
});

test("LHREQ_GETDMA: the first free buffer of this Guest's binding, with the irq written into used_len", () => {
  const key = 0x100;
  const t = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, key, SCRATCH, (3 << 8) | 5), ...jmpSelf]);
  t.ram.setUint32(SCRATCH, 7, true); // entry 0 in use
  t.run(1_000);
  assert.deepEqual(t.host.getDma(t.guest, key), { ok: true, dma: SCRATCH + 100 });
  assert.equal(t.u32(SCRATCH + 100), 5);
});

test("LHREQ_GETDMA: when every buffer is in use it still returns the last one (the quirk)", () => {
  const key = 0x100;
  const t = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, key, SCRATCH, (3 << 8) | 5), ...jmpSelf]);
  for (let k = 0; k < 3; k++) t.ram.setUint32(SCRATCH + 100 * k, 9, true);
  t.run(1_000);
  assert.deepEqual(t.host.getDma(t.guest, key), { ok: true, dma: SCRATCH + 200 });
  assert.equal(t.u32(SCRATCH + 200), 5);
});

test("LHREQ_GETDMA: no binding of this Guest's is -ENOENT, even if another Guest bound the same number", () => {
  const host = new Host();
  const other = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, 0x100, SCRATCH, (1 << 8) | 5), ...jmpSelf], { host });
  other.run(1_000);
  const t = tinyGuest([...boot, ...jmpSelf], { host });
  t.run(1_000);
  assert.deepEqual(host.getDma(t.guest, 0x100), { ok: false, error: "ENOENT" });
  assert.deepEqual(host.getDma(other.guest, 0x100), { ok: true, dma: SCRATCH });
});

test("LHREQ_GETDMA: an invalid key kills the Guest with 'bad registered DMA buffer'", () => {
  const t = tinyGuest([...boot, ...jmpSelf]);
  t.run(1_000);
  assert.deepEqual(t.host.getDma(t.guest, 0x101), { ok: false, error: "ENOENT" });
  assert.equal(t.guest.dead, "bad registered DMA buffer");
});

test("once the Guest is dead, LHREQ_IRQ and LHREQ_GETDMA are -ENOENT", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_CRASH, SCRATCH)]);
  t.run();
  assert.deepEqual(t.host.irq(t.guest, 1), { ok: false, error: "ENOENT" });
  assert.deepEqual(t.host.getDma(t.guest, 0), { ok: false, error: "ENOENT" });
});

test("a bug inside the Host kills only the Guest it was running, and keeps the error", () => {
  const host = new Host();
  const broken = tinyGuest([...boot, ...jmpSelf], { host });
  const healthy = tinyGuest([...boot, ...mov(EAX, 0), ...jmpSelf], { host });
  broken.guest.cpu.run = () => {
    throw new Error("boom");
  };
  assert.deepEqual(broken.run(), { kind: "dead", reason: "lguest.ts internal error: boom" });
  assert.equal((broken.guest.internalError as Error).message, "boom");
  assert.equal(healthy.run(1_000).kind, "timeslice");
});

test("a released Guest is dead, and its slot and memory limits are the next Guest's business", () => {
  const host = new Host();
  const first = tinyGuest([...boot, ...jmpSelf], { host });
  host.release(first.guest);
  assert.equal(first.run().kind, "dead");
  const second = tinyGuest([...boot, ...jmpSelf], { host });
  assert.equal(second.guest.id, 0);
  assert.equal(second.run(1_000).kind, "timeslice");
  assert.equal(RAM_SIZE, 0x100000);
});

test("the trap dispatch: #NM goes on to the Guest only when its TS flag is set (spec 5.9)", () => {
  const t = tinyGuest([...boot, ...idtEntry(7, va(HANDLER)), ...jmpSelf]);
  t.run(1_000);
  const eip = t.guest.cpu.eip;
  t.guest.trapnum = 7;
  t.guest.ts = false;
  handleTrap(t.guest);
  assert.equal(t.guest.cpu.eip, eip, "TS clear: the Host restored the FPU and the Guest carries on");
  t.guest.ts = true;
  handleTrap(t.guest);
  assert.equal(t.guest.cpu.eip >>> 0, va(HANDLER), "TS set: the trap is the Guest's");
});
