// Segments (spec 6): the GDT at the start, LOAD_GDT and LOAD_TLS with their
// fix-ups, GDT changes reaching loaded segment registers, and the tables
// the CPU really uses, in the Switcher's read-only page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EAX, GS } from "../src/cpu/registers.ts";
import { LHCALL_LOAD_GDT, LHCALL_LOAD_IDT_ENTRY, LHCALL_LOAD_TLS, LHCALL_SEND_DMA } from "../src/host/constants.ts";
import { LGUEST_DATA } from "../src/host/abi.ts";
import { STATE_GDT, STATE_TSS, SWITCHER_STATE } from "../src/host/switcher.ts";
import { boot, CODE, DATA, GDT_TABLE, HANDLER, linuxGdt, SCRATCH, stackTop, tinyGuest, va } from "./helpers/tiny-guest.ts";
import { descriptor, gate, hcall, imm32, jmpSelf, load, loadGs, mov, movEaxToGs, store } from "./helpers/x86.ts";

const entry = (t: ReturnType<typeof tinyGuest>, i: number) => [t.guest.gdt[i * 2] >>> 0, t.guest.gdt[i * 2 + 1] >>> 0];
const cpuEntry = (t: ReturnType<typeof tinyGuest>, i: number) =>
  [t.guest.switcher.view.getUint32(STATE_GDT + i * 8, true), t.guest.switcher.view.getUint32(STATE_GDT + i * 8 + 4, true)];

test("the GDT at the start: entries 12 and 13 flat with DPL 1, the Host's 10, 11 and 16, nothing else", () => {
  const t = tinyGuest(jmpSelf);
  for (let i = 0; i < 32; i++) {
    const expected = i === 12 ? [0xffff, 0x00cfbb00] : i === 13 ? [0xffff, 0x00cfb300] : [0, 0];
    assert.deepEqual(entry(t, i), expected, `Guest entry ${i}`);
  }
  assert.deepEqual(cpuEntry(t, 10), [0xffff, 0x00cf9b00]);
  assert.deepEqual(cpuEntry(t, 11), [0xffff, 0x00cf9300]);
  const tss = SWITCHER_STATE + STATE_TSS;
  assert.deepEqual(cpuEntry(t, 16), [(0x67 | (tss << 16)) >>> 0, (0x8900 | (tss & 0xff000000) | ((tss >>> 16) & 0xff)) >>> 0]);
  assert.deepEqual(cpuEntry(t, 31), [0, 0]);
  assert.deepEqual(cpuEntry(t, 12), [0xffff, 0x00cfbb00]);
});

test("LOAD_GDT raises DPL 0 to 1 and sets the accessed bit, except in entries 10, 11, 16 and 31", () => {
  const junk = descriptor(0x1234, 0xfff, 0x92);
  const t = tinyGuest([...boot, ...hcall(LHCALL_LOAD_GDT, GDT_TABLE, 32), ...jmpSelf], {
    memory: [linuxGdt({ 10: junk, 11: junk, 16: junk, 31: junk, 20: descriptor(0, 0xfffff, 0xd2) })],
  });
  t.run(2_000);
  assert.deepEqual(entry(t, 12), [0xffff, 0x00cfbb00], "kernel code: DPL 0 -> 1, accessed");
  assert.deepEqual(entry(t, 13), [0xffff, 0x00cfb300], "kernel data: DPL 0 -> 1, accessed");
  assert.deepEqual(entry(t, 14), [0xffff, 0x00cffb00], "user code keeps DPL 3, gets accessed");
  assert.equal(entry(t, 20)[1] & 0x6100, 0x4100, "DPL 2 stays 2");
  assert.equal(entry(t, 0)[1], 0x2100, "even the empty entry 0 gets DPL 1 and accessed");
  assert.deepEqual(entry(t, 10), junk, "the Guest's entry 10 is kept as sent (not fixed up)");
  assert.deepEqual(cpuEntry(t, 10), [0xffff, 0x00cf9b00], "but the CPU's entry 10 is the Host's");
  assert.deepEqual(cpuEntry(t, 31), [0, 0]);
  assert.deepEqual(cpuEntry(t, 14), [0xffff, 0x00cffb00]);
});

test("LOAD_GDT with more than 32 entries kills with 'too many gdt entries' and copies nothing", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_LOAD_GDT, GDT_TABLE, 33), ...jmpSelf], { memory: [linuxGdt()] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "too many gdt entries 33" });
  assert.deepEqual(entry(t, 14), [0, 0]);
});

test("LOAD_GDT fixes up all 32 entries even when it copies fewer", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_LOAD_GDT, GDT_TABLE, 13), ...jmpSelf], { memory: [linuxGdt()] });
  t.run(2_000);
  assert.deepEqual(entry(t, 12), [0xffff, 0x00cfbb00]);
  assert.deepEqual(entry(t, 13), [0xffff, 0x00cfb300], "entry 13 was not copied, and is still the initial one");
  assert.equal(entry(t, 25)[1], 0x2100);
});

const TLS = SCRATCH + 0x100;
const tlsTable = (base: number) => [...descriptor(va(base), 0xfff, 0xf2, 0x4), ...descriptor(0, 0, 0x92), ...descriptor(0, 0, 0, 0)].flatMap(imm32);

test("LOAD_TLS copies three descriptors into entries 6 to 8 and fixes them up", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_LOAD_TLS, TLS, 0), ...jmpSelf], { memory: [[TLS, tlsTable(0x20000)]] });
  t.run(2_000);
  assert.deepEqual(entry(t, 6), descriptor(va(0x20000), 0xfff, 0xf3, 0x4));
  assert.deepEqual(entry(t, 7), descriptor(0, 0, 0xb3));
  assert.deepEqual(entry(t, 8), [0, 0x2100]);
  assert.deepEqual(entry(t, 12), [0xffff, 0x00cfbb00]);
  assert.deepEqual(cpuEntry(t, 6), descriptor(va(0x20000), 0xfff, 0xf3, 0x4));
});

test("a changed TLS base reaches an already-loaded %gs when the Guest next runs (spec 6.4)", () => {
  const second = TLS + 0x40;
  const t = tinyGuest([
    ...boot, ...hcall(LHCALL_LOAD_TLS, TLS), ...mov(EAX, 0x33), ...movEaxToGs, ...loadGs(0), ...store(va(SCRATCH), EAX),
    ...hcall(LHCALL_LOAD_TLS, second), ...loadGs(0), ...store(va(SCRATCH + 4), EAX), ...jmpSelf,
  ], {
    memory: [[TLS, tlsTable(0x20000)], [second, tlsTable(0x21000)], [0x20000, imm32(0x11111111)], [0x21000, imm32(0x22222222)]],
  });
  t.run(5_000);
  assert.equal(t.guest.dead, undefined);
  assert.equal(t.u32(SCRATCH), 0x11111111);
  assert.equal(t.u32(SCRATCH + 4), 0x22222222, "%gs was not reloaded by the Guest, yet it sees the new base");
  assert.equal(t.guest.cpu.segSelector[GS], 0x33);
});

test("a loaded selector whose GDT entry has gone bad kills with 'unhandled trap 256' on the way in", () => {
  const t = tinyGuest([
    ...boot, ...hcall(LHCALL_LOAD_TLS, TLS), ...mov(EAX, 0x33), ...movEaxToGs, ...hcall(LHCALL_LOAD_TLS, TLS + 0x40), ...jmpSelf,
  ], { memory: [[TLS, tlsTable(0x20000)], [TLS + 0x40, new Array(24).fill(0)]] });
  const at = va(CODE + boot.length + 22 + 5 + 2 + 22);
  assert.deepEqual(t.run(), { kind: "dead", reason: `unhandled trap 256 at 0x${at.toString(16)} (0x0)` });
});

test("the Guest kernel can read its GDT at 0xFFC01000 but not write it: the write faults and is the Guest's", () => {
  const t = tinyGuest([
    ...boot, ...hcall(LHCALL_LOAD_IDT_ENTRY, 14, ...gate(va(HANDLER), 0xe, 0)),
    ...load(EAX, SWITCHER_STATE + 12 * 8 + 4), ...store(va(SCRATCH), EAX), ...store(SWITCHER_STATE, EAX), ...jmpSelf,
  ], { memory: [[HANDLER, [...hcall(LHCALL_SEND_DMA, 0, SCRATCH + 0x100), ...jmpSelf]]] });
  assert.deepEqual(t.run(), { kind: "dma", dmaGpa: SCRATCH + 0x100, key: 0 });
  assert.equal(t.u32(SCRATCH), 0x00cfbb00);
  assert.equal(t.u32(DATA + LGUEST_DATA.cr2), SWITCHER_STATE);
  assert.equal(stackTop(t, 1)[0], 3, "a protection fault on a write, from the kernel");
});

test("the TSS's I/O bitmap offset points past its end: every port is denied (spec 6.5)", () => {
  const t = tinyGuest(jmpSelf);
  assert.equal(t.guest.switcher.view.getUint16(STATE_TSS + 102, true), 0x68);
  assert.equal(t.guest.cpu.trLimit, 0x67);
});

test("a LOAD_GDT that breaks the loaded %ss kills with 'unhandled trap 256' (the Switcher's iret would fault)", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_LOAD_GDT, GDT_TABLE, 32), ...jmpSelf], { memory: [linuxGdt({ 13: [0, 0] })] });
  const at = va(CODE + boot.length + 22);
  assert.deepEqual(t.run(), { kind: "dead", reason: `unhandled trap 256 at 0x${at.toString(16)} (0x0)` });
});
