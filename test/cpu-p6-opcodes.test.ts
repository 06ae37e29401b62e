// The opcodes the census (book/cpu-census.md) found missing, one rule per
// test, from the SDM: arpl, int1, rdpmc, the hint NOPs under lock, and the
// x87's register aliases. Their results are also checked against recorded
// vectors: hint.jsonl.gz (the real processor) and qemu-p6.jsonl.gz (arpl,
// salc), replayed by test/cpu-vectors.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { STOP_BUDGET, STOP_EXCEPTION, STOP_INTERRUPT } from "../src/cpu/stop.ts";
import { CF, DS, EAX, EBX, ECX, EDX, ESP, ZF } from "../src/cpu/registers.ts";
import { CR4_PCE } from "../src/cpu/paging.ts";
import { setSegmentCache } from "../src/cpu/segments.ts";

const CODE = 0x1000;

function machine(code: number[], cpl = 3): CPU {
  const cpu = new CPU(new PhysicalMemory(0x10000));
  cpu.memory.ram.set(code, CODE);
  cpu.eip = CODE;
  cpu.regs[ESP] = 0x8000;
  cpu.setPrivilege(cpl);
  return cpu;
}

test("arpl raises the destination's RPL to the source's and sets ZF; otherwise clears ZF and changes nothing", () => {
  const cpu = machine([0x63, 0xd8, 0x63, 0xd8]); // arpl ax, bx; arpl ax, bx
  cpu.regs[EAX] = 0x12340010; // RPL 0
  cpu.regs[EBX] = 0x0000ff73; // RPL 3
  cpu.setEflags(CF, CF | ZF);
  cpu.run(1);
  assert.equal(cpu.regs[EAX], 0x12340013, "RPL raised to 3, upper half kept");
  assert.equal(cpu.eflags() & (ZF | CF), ZF | CF, "ZF set, CF untouched");
  cpu.run(1);
  assert.equal(cpu.regs[EAX], 0x12340013);
  assert.equal(cpu.eflags() & (ZF | CF), CF, "equal RPLs: ZF clear");
});

test("arpl writes a memory destination only through a writable segment: read-only is #GP(0) even when nothing changes", () => {
  const cpu = machine([0x63, 0x18]); // arpl [eax], bx
  cpu.regs[EAX] = 0x2000;
  cpu.regs[EBX] = 0; // RPL 0: no adjustment
  cpu.memory.ram[0x2000] = 0x13;
  setSegmentCache(cpu, DS, 0x2b, 0, 0xffffffff, 0x00cff100); // present, DPL 3, read-only data
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.deepEqual([cpu.exceptionVector, cpu.exceptionErrorCode], [13, 0]);
  setSegmentCache(cpu, DS, 0x2b, 0, 0xffffffff, 0x00cff300); // writable
  cpu.eip = CODE;
  cpu.regs[EBX] = 3;
  cpu.memory.ram[0x2000] = 0x10;
  assert.equal(cpu.run(1), STOP_BUDGET);
  assert.equal(cpu.memory.ram[0x2000], 0x13);
});

test("int1 (F1) is a #DB trap after the instruction, with no DPL check; int 1 (CD 01) is a software interrupt and checks it", () => {
  const icebp = machine([0xf1, 0x90]);
  icebp.softwareDpl[1] = 0;
  assert.equal(icebp.run(1), STOP_EXCEPTION);
  assert.equal(icebp.exceptionVector, 1);
  assert.equal(icebp.exceptionErrorCode, -1);
  assert.equal(icebp.eip, CODE + 1, "a trap: eip is past it");
  assert.equal(icebp.debugRegisters[6] & 0xe00f, 0, "no DR6 status bit (B0-B3, BD, BS, BT) says why");
  const software = machine([0xcd, 0x01]);
  software.softwareDpl[1] = 0;
  assert.equal(software.run(1), STOP_EXCEPTION);
  assert.deepEqual([software.exceptionVector, software.exceptionErrorCode], [13, 1 * 8 + 2]);
  const allowed = machine([0xcd, 0x01]);
  assert.equal(allowed.run(1), STOP_INTERRUPT);
});

test("rdpmc: counters 0 and 1 read 0 in ring 0, or anywhere with CR4.PCE; another counter, or ring 3 without PCE, is #GP(0)", () => {
  const ring0 = machine([0x0f, 0x33], 0);
  ring0.regs[EAX] = -1;
  ring0.regs[EDX] = -1;
  ring0.regs[ECX] = 1;
  assert.equal(ring0.run(1), STOP_BUDGET);
  assert.deepEqual([ring0.regs[EAX], ring0.regs[EDX]], [0, 0]);
  const user = machine([0x0f, 0x33]);
  assert.equal(user.run(1), STOP_EXCEPTION);
  assert.deepEqual([user.exceptionVector, user.exceptionErrorCode], [13, 0]);
  const allowed = machine([0x0f, 0x33]);
  allowed.cr4 = CR4_PCE;
  assert.equal(allowed.run(1), STOP_BUDGET);
  const third = machine([0x0f, 0x33], 0);
  third.regs[ECX] = 2;
  assert.equal(third.run(1), STOP_EXCEPTION);
  assert.deepEqual([third.exceptionVector, third.exceptionErrorCode], [13, 0]);
});

test("a hint NOP is a NOP in every form, endbr32 included, but a lock prefix makes it #UD", () => {
  for (const code of [[0x0f, 0x18, 0x00], [0x0f, 0x1a, 0xc1], [0xf3, 0x0f, 0x1e, 0xfb], [0x66, 0x0f, 0x1c, 0x84, 0x24, 1, 2, 3, 4]]) {
    const cpu = machine(code);
    cpu.regs[EAX] = 0x7ffffff0; // far outside memory: it is never touched
    cpu.regs[ESP] = 0x7ffffff0;
    const before = [...cpu.regs];
    assert.equal(cpu.run(1), STOP_BUDGET, code.join(" "));
    assert.deepEqual([...cpu.regs], before);
    assert.equal(cpu.eip, CODE + code.length);
  }
  const locked = machine([0xf0, 0x0f, 0x1f, 0x00]);
  assert.equal(locked.run(1), STOP_EXCEPTION);
  assert.equal(locked.exceptionVector, 6);
});

/** The x87 state after fld1, fldpi, fldz and then `instruction`. */
function x87After(instruction: number[]) {
  const cpu = machine([0xd9, 0xe8, 0xd9, 0xeb, 0xd9, 0xee, ...instruction], 0);
  assert.equal(cpu.run(4), STOP_BUDGET, instruction.join(" "));
  const { top, status, empty, signExponent, significand } = cpu.fpu;
  return { top, status, empty: [...empty], signExponent: [...signExponent], significand: [...significand], eflags: cpu.eflags() };
}

test("the x87's register aliases do exactly what the instruction they alias does", () => {
  const aliases: [string, number[], number[]][] = [
    ["fstp1 (D9 D8+i) is fstp st(i)", [0xd9, 0xda], [0xdd, 0xda]],
    ["fcom2 (DC D0+i) is fcom st(i)", [0xdc, 0xd1], [0xd8, 0xd1]],
    ["fcomp3 (DC D8+i) is fcomp st(i)", [0xdc, 0xd9], [0xd8, 0xd9]],
    ["fxch4 (DD C8+i) is fxch st(i)", [0xdd, 0xca], [0xd9, 0xca]],
    ["fcomp5 (DE D0+i) is fcomp st(i)", [0xde, 0xd2], [0xd8, 0xda]],
    ["fxch7 (DF C8+i) is fxch st(i)", [0xdf, 0xc9], [0xd9, 0xc9]],
    ["fstp8 (DF D0+i) is fstp st(i)", [0xdf, 0xd1], [0xdd, 0xd9]],
    ["fstp9 (DF D8+i) is fstp st(i)", [0xdf, 0xdb], [0xdd, 0xdb]],
  ];
  for (const [rule, alias, documented] of aliases) assert.deepEqual(x87After(alias), x87After(documented), rule);
});
