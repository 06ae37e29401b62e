// The x87: every reference vector recorded on the real processor
// (test/cpu/vectors/x87.jsonl.gz), and the rules the vectors cannot show
// (#NM, #MF, what the stack faults and the saved state look like), one rule
// per test, checked against what the Intel SDM says.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { STOP_BUDGET, STOP_EXCEPTION } from "../src/cpu/stop.ts";
import { EAX, EBX, EDX, ESP } from "../src/cpu/registers.ts";
import { C1, CR0_EM, CR0_MP, CR0_TS, isEmpty, readST, statusWord, tagWord } from "../src/cpu/x87.ts";
import { readX87Vectors, replayX87, x87Machine } from "./cpu/x87-vectors.ts";

const { vectors } = readX87Vectors();

function replayAll(select: (approx: boolean) => boolean): { count: number; failures: string[] } {
  const cpu = x87Machine();
  const failures: string[] = [];
  let count = 0;
  for (const vector of vectors) {
    if (!select(vector.approx === true)) continue;
    count++;
    const problems = replayX87(cpu, vector);
    if (problems.length && failures.length < 10) failures.push(`${vector.form} ${vector.code}: ${problems.join("; ")}`);
  }
  return { count, failures };
}

test("every basic x87 vector (arithmetic, conversions, compares, loads, stores, control) matches the processor bit for bit", () => {
  const { count, failures } = replayAll((approx) => !approx);
  assert.ok(count > 80000, `only ${count} vectors`);
  assert.deepEqual(failures, []);
});

test("transcendental results are within the book's error bound of the processor's, flags and stack exact", () => {
  const { count, failures } = replayAll((approx) => approx);
  assert.equal(count, 4000);
  assert.deepEqual(failures, []);
});

const CODE = 0x1000;
const DATA = 0x4000;

/** A CPU with `code` at 0x1000 in ring 3, CR0 as given. */
function machine(code: number[], cr0 = 0): CPU {
  const cpu = new CPU(new PhysicalMemory(0x10000));
  cpu.memory.ram.set(code, CODE);
  cpu.eip = CODE;
  cpu.regs[ESP] = 0x8000;
  cpu.setPrivilege(3);
  cpu.cr0 = cr0;
  return cpu;
}

const FLD1 = [0xd9, 0xe8], FLDZ = [0xd9, 0xee], FDIVP = [0xde, 0xf9], FWAIT = [0x9b];
const FNINIT = [0xdb, 0xe3], FNCLEX = [0xdb, 0xe2], FNSTSW_AX = [0xdf, 0xe0], FSTP_ST0 = [0xdd, 0xd8];
const FLDCW_EBX = [0xd9, 0x2b], FNSTENV_EBX = [0xd9, 0x33], FNSAVE_EBX = [0xdd, 0x33], FRSTOR_EBX = [0xdd, 0x23];
const FLD_M64_EDX = [0xdd, 0x02], FSTP_M64_EDX = [0xdd, 0x1a];

test("#NM: with CR0.TS set, an escape instruction faults before doing anything (lguest's lazy FPU switch)", () => {
  const cpu = machine(FLD1, CR0_TS);
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, 7);
  assert.equal(cpu.exceptionErrorCode, -1);
  assert.equal(cpu.eip, CODE);
  assert.equal(cpu.fpu.top, 0);
  assert.ok(isEmpty(cpu.fpu, 0));
  cpu.cr0 = 0; // the kernel restores the state and clears TS (clts); the instruction runs again
  assert.equal(cpu.run(1), STOP_BUDGET);
  assert.equal(cpu.fpu.top, 7);
});

test("#NM: with CR0.EM set, every escape instruction faults, the non-waiting ones included", () => {
  for (const code of [FLD1, FNINIT, FNSTSW_AX, FNCLEX, FNSTENV_EBX, FNSAVE_EBX, FDIVP]) {
    const cpu = machine(code, CR0_EM);
    cpu.regs[EBX] = DATA;
    assert.equal(cpu.run(1), STOP_EXCEPTION, code.join(","));
    assert.equal(cpu.exceptionVector, 7);
  }
});

test("#NM: fwait faults only when CR0.MP and CR0.TS are both set; EM does not matter to it", () => {
  const cases: [number, boolean][] = [[0, false], [CR0_TS, false], [CR0_MP, false], [CR0_EM, false],
    [CR0_MP | CR0_TS, true], [CR0_MP | CR0_TS | CR0_EM, true], [CR0_EM | CR0_TS, false]];
  for (const [cr0, faults] of cases) {
    const cpu = machine(FWAIT, cr0);
    assert.equal(cpu.run(1), faults ? STOP_EXCEPTION : STOP_BUDGET, `cr0 ${cr0}`);
    if (faults) assert.equal(cpu.exceptionVector, 7);
  }
});

test("CPUID leaf 1 reports the FPU in EDX bit 0", () => {
  const cpu = machine([0x0f, 0xa2]);
  cpu.regs[EAX] = 1;
  cpu.run(1);
  assert.equal(cpu.regs[EDX] & 1, 1);
});

/** Unmasks zero divide (control word 0x037B) and divides 1 by 0. */
const UNMASK_ZE_AND_DIVIDE = [...FLDCW_EBX, ...FLD1, ...FLDZ, ...FDIVP];

test("#MF: an unmasked exception faults at the next waiting x87 instruction, not at the one that caused it", () => {
  const cpu = machine([...UNMASK_ZE_AND_DIVIDE, ...FLD1]);
  cpu.regs[EBX] = DATA;
  cpu.memory.ram.set([0x7b, 0x03], DATA);
  assert.equal(cpu.run(4), STOP_BUDGET); // the division completes, with ZE, ES and B set
  const sw = statusWord(cpu.fpu);
  assert.equal(sw & 0x8084, 0x8084);
  assert.equal(cpu.run(1), STOP_EXCEPTION); // the following fld1
  assert.equal(cpu.exceptionVector, 16);
  assert.equal(cpu.eip, CODE + 8);
  assert.equal(statusWord(cpu.fpu), sw, "the faulting instruction did nothing");
});

test("#MF: fwait raises a pending exception; fnstsw and fnclex do not wait, and fnclex clears it", () => {
  const cpu = machine([...UNMASK_ZE_AND_DIVIDE, ...FNSTSW_AX, ...FWAIT, ...FNCLEX, ...FWAIT, ...FLD1]);
  cpu.regs[EBX] = DATA;
  cpu.memory.ram.set([0x7b, 0x03], DATA);
  assert.equal(cpu.run(5), STOP_BUDGET);
  assert.equal(cpu.regs[EAX] & 0xffff, statusWord(cpu.fpu));
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, 16);
  assert.equal(cpu.eip, CODE + 10);
  cpu.eip += 1; // an exception handler would fix things up and skip or retry; here we skip the fwait
  assert.equal(cpu.run(3), STOP_BUDGET);
  assert.equal(statusWord(cpu.fpu) & 0x80ff, 0);
});

test("#NM takes precedence over a pending #MF", () => {
  const cpu = machine([...UNMASK_ZE_AND_DIVIDE, ...FLD1]);
  cpu.regs[EBX] = DATA;
  cpu.memory.ram.set([0x7b, 0x03], DATA);
  cpu.run(4);
  cpu.cr0 = CR0_TS;
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, 7);
});

test("stack overflow: the ninth push sets IE, SF and C1 and, masked, pushes the real indefinite", () => {
  const cpu = machine(new Array(9).fill(FLD1).flat());
  assert.equal(cpu.run(8), STOP_BUDGET);
  assert.equal(statusWord(cpu.fpu) & 0x3f, 0);
  assert.equal(cpu.run(1), STOP_BUDGET);
  const sw = statusWord(cpu.fpu);
  assert.equal(sw & 0x41, 0x41, "IE and SF");
  assert.equal(sw & C1, C1, "C1 says overflow");
  assert.deepEqual(readST(cpu.fpu, 0), { se: 0xffff, sig: 0xc000000000000000n });
  assert.equal(cpu.fpu.top, 7);
});

test("stack underflow: using an empty register sets IE and SF with C1 clear, and stores the indefinite", () => {
  const cpu = machine([...FLD1, ...FSTP_ST0, ...FSTP_M64_EDX]);
  cpu.regs[EDX] = DATA;
  assert.equal(cpu.run(3), STOP_BUDGET);
  const sw = statusWord(cpu.fpu);
  assert.equal(sw & 0x41, 0x41);
  assert.equal(sw & C1, 0);
  assert.deepEqual([...cpu.memory.ram.subarray(DATA, DATA + 8)], [0, 0, 0, 0, 0, 0, 0xf8, 0xff]);
});

test("unmasked stack overflow leaves the stack as it was, and sets ES", () => {
  const cpu = machine([...FLDCW_EBX, ...new Array(9).fill(FLD1).flat()]);
  cpu.regs[EBX] = DATA;
  cpu.memory.ram.set([0x7e, 0x03], DATA); // IE unmasked
  assert.equal(cpu.run(10), STOP_BUDGET);
  assert.equal(cpu.fpu.top, 0);
  assert.deepEqual(readST(cpu.fpu, 0), { se: 0x3fff, sig: 0x8000000000000000n });
  assert.equal(statusWord(cpu.fpu) & 0x80c1, 0x80c1);
});

test("fnsave stores the whole state and reinitializes; frstor brings it back", () => {
  const cpu = machine([...FLD1, ...FLDZ, ...FLD_M64_EDX, ...FNSAVE_EBX, ...FRSTOR_EBX]);
  cpu.regs[EBX] = DATA;
  cpu.regs[EDX] = DATA + 0x200;
  cpu.memory.ram.set([0, 0, 0, 0, 0, 0, 0xf0, 0x7f], DATA + 0x200); // +infinity
  assert.equal(cpu.run(4), STOP_BUDGET);
  const image = cpu.memory.ram.subarray(DATA, DATA + 108);
  const word = (at: number) => image[at] | (image[at + 1] << 8);
  assert.equal(word(0), 0x037f);
  assert.equal(word(2), 0xffff, "reserved halves are written as ones");
  assert.equal((word(4) >> 11) & 7, 5, "TOP");
  assert.equal(word(8), 0x1bff, "tags: st(0) special, st(1) zero, st(2) valid, the rest empty");
  assert.deepEqual([...image.subarray(28, 38)], [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x7f], "st(0) is +infinity");
  assert.equal(cpu.fpu.control, 0x037f);
  assert.equal(tagWord(cpu.fpu), 0xffff, "fnsave leaves the FPU initialized");
  assert.equal(cpu.run(1), STOP_BUDGET);
  assert.equal(cpu.fpu.top, 5);
  assert.equal(tagWord(cpu.fpu), word(8));
  assert.deepEqual(readST(cpu.fpu, 2), { se: 0x3fff, sig: 0x8000000000000000n });
});

test("fnstenv records the last non-control instruction and its operand, then masks every exception", () => {
  const cpu = machine([...FLDCW_EBX, 0x3e, ...FLD_M64_EDX, ...FNSTENV_EBX]); // ds: prefix on the fld
  cpu.regs[EBX] = DATA;
  cpu.regs[EDX] = DATA + 0x200;
  cpu.segSelector[1] = 0x73;
  cpu.segSelector[3] = 0x7b;
  cpu.memory.ram.set([0x40, 0x03], DATA); // every exception unmasked
  assert.equal(cpu.run(3), STOP_BUDGET);
  const image = cpu.memory.ram.subarray(DATA, DATA + 28);
  const dword = (at: number) => (image[at] | (image[at + 1] << 8) | (image[at + 2] << 16) | (image[at + 3] << 24)) >>> 0;
  assert.equal(dword(0), 0xffff0340, "the control word as it was");
  assert.equal(dword(12), CODE + 2, "FIP: the fld, prefix included");
  assert.equal(dword(16), 0x73 | (0x502 << 16), "FCS and FOP (DD 02 as 5 02)");
  assert.equal(dword(20), DATA + 0x200, "FDP");
  assert.equal(dword(24), 0xffff007b, "FDS");
  assert.equal(cpu.fpu.control, 0x037f, "masked afterwards");
});

test("the 16-bit environment (66 prefix) is 14 bytes of words", () => {
  const cpu = machine([...FLD1, 0x66, ...FNSTENV_EBX]);
  cpu.regs[EBX] = DATA;
  cpu.memory.ram.fill(0xaa, DATA, DATA + 32);
  assert.equal(cpu.run(2), STOP_BUDGET);
  const image = [...cpu.memory.ram.subarray(DATA, DATA + 16)];
  assert.deepEqual(image.slice(0, 6), [0x7f, 0x03, 0x00, 0x38, 0xff, 0x3f]);
  assert.deepEqual(image.slice(14, 16), [0xaa, 0xaa], "nothing beyond 14 bytes");
});

test("#UD: a lock prefix on an x87 instruction, fisttp (SSE3), and a reserved register form (D9 D1; D9 D8 is fstp's alias)", () => {
  for (const code of [[0xf0, ...FLD1], [0xdb, 0x0b], [0xd9, 0xd1], [0xd9, 0x0b]]) {
    const cpu = machine(code);
    cpu.regs[EBX] = DATA;
    assert.equal(cpu.run(1), STOP_EXCEPTION, code.join(","));
    assert.equal(cpu.exceptionVector, 6);
  }
});
