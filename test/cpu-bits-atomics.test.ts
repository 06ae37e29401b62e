// Claims of book/cpu-shifts.md, cpu-bits.md and cpu-atomics.md that the
// native vectors cannot check: which encodings are invalid, where lock is
// allowed, and 16-bit addressing (the vectors were recorded in 64-bit mode).
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { INVALID_OPCODE } from "../src/cpu/faults.ts";
import { CF } from "../src/cpu/registers.ts";
import { STOP_BUDGET, STOP_EXCEPTION } from "../src/cpu/stop.ts";

const START = 0x1000;
const DATA = 0x2000;
const cpu = new CPU(new PhysicalMemory(0x20000));

/** Runs the instruction `code` at START with ebx pointing at DATA; returns why the run stopped. */
function run(code: number[], registers: Partial<Record<"eax" | "ecx" | "edx" | "ebx", number>> = {}): number {
  cpu.memory.ram.fill(0, 0, 0x20000);
  cpu.memory.ram.set(code, START);
  cpu.forgetCode(START >>> 12);
  cpu.eip = START;
  cpu.regs.fill(0);
  cpu.regs[3] = DATA;
  const names = ["eax", "ecx", "edx", "ebx"] as const;
  names.forEach((name, n) => {
    if (registers[name] !== undefined) cpu.regs[n] = registers[name]!;
  });
  cpu.setEflags(0, CF);
  return cpu.run(1);
}

const invalid = (code: number[]) => {
  assert.equal(run(code), STOP_EXCEPTION, code.map((b) => b.toString(16)).join(" "));
  assert.equal(cpu.exceptionVector, INVALID_OPCODE);
  assert.equal(cpu.eip, START);
};

test("lock is an invalid opcode on a shift, on bt, and on bts with a register destination", () => {
  invalid([0xf0, 0xd1, 0x23]); // lock shl dword [ebx], 1
  invalid([0xf0, 0x0f, 0xa3, 0x03]); // lock bt [ebx], eax
  invalid([0xf0, 0x0f, 0xba, 0x23, 0x05]); // lock bt [ebx], 5
  invalid([0xf0, 0x0f, 0xab, 0xc3]); // lock bts ebx, eax
  invalid([0xf0, 0x0f, 0xb1, 0xc3]); // lock cmpxchg ebx, eax
});

test("lock is allowed on bts, btr, btc, cmpxchg, xadd and cmpxchg8b with memory", () => {
  for (const code of [
    [0xf0, 0x0f, 0xab, 0x03], [0xf0, 0x0f, 0xb3, 0x03], [0xf0, 0x0f, 0xbb, 0x03],
    [0xf0, 0x0f, 0xba, 0x2b, 0x05], [0xf0, 0x0f, 0xba, 0x33, 0x05], [0xf0, 0x0f, 0xba, 0x3b, 0x05],
    [0xf0, 0x0f, 0xb0, 0x03], [0xf0, 0x0f, 0xb1, 0x03], [0xf0, 0x0f, 0xc0, 0x03], [0xf0, 0x0f, 0xc1, 0x03],
    [0xf0, 0x0f, 0xc7, 0x0b],
  ]) {
    assert.equal(run(code), STOP_BUDGET, code.map((b) => b.toString(16)).join(" "));
  }
});

test("cmpxchg8b with a register operand, and the empty slots of 0F C7 and 0F BA, are invalid opcodes", () => {
  invalid([0x0f, 0xc7, 0xc8]); // cmpxchg8b eax
  invalid([0x0f, 0xc7, 0x03]); // 0F C7 /0
  invalid([0x0f, 0xc7, 0x33]); // 0F C7 /6 (rdrand on later processors)
  invalid([0x0f, 0xba, 0x03, 0x01]); // 0F BA /0
});

test("cmpxchg8b stores ecx:ebx when edx:eax matches, and loads edx:eax when it does not", () => {
  const view = new DataView(cpu.memory.ram.buffer);
  const code = [0x0f, 0xc7, 0x0b]; // cmpxchg8b [ebx]
  assert.equal(run(code, { eax: 0, edx: 0, ebx: DATA, ecx: 0x22222222 }), STOP_BUDGET);
  assert.equal(view.getUint32(DATA, true), DATA);
  assert.equal(view.getUint32(DATA + 4, true), 0x22222222);
  assert.equal(cpu.zero(), 1);
  assert.equal(run(code, { eax: 1, edx: 0, ebx: DATA, ecx: 0x22222222 }), STOP_BUDGET);
  assert.equal(cpu.regs[0], 0);
  assert.equal(cpu.regs[2], 0);
  assert.equal(view.getUint32(DATA + 4, true), 0);
  assert.equal(cpu.zero(), 0);
});

test("bt with 16-bit addressing wraps the bit string's word address at 64 KiB", () => {
  // 67 0F A3 07: bt [bx], eax. bx = 0xFFFE and bit offset 32 select the doubleword
  // at 0xFFFE + 4, which wraps to 0x0002.
  cpu.memory.ram.fill(0, 0, 0x20000);
  const code = [0x67, 0x0f, 0xa3, 0x07];
  cpu.memory.ram.set(code, START);
  cpu.forgetCode(START >>> 12);
  cpu.eip = START;
  cpu.regs.fill(0);
  cpu.regs[0] = 32;
  cpu.regs[3] = 0xfffe;
  cpu.memory.ram[0x0002] = 0x01;
  cpu.setEflags(0, CF);
  assert.equal(cpu.run(1), STOP_BUDGET);
  assert.equal(cpu.carry(), 1);
});
