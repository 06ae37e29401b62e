// The decimal adjusts (book/cpu-bcd.md), checked against the pseudocode and
// examples of Intel's manual (SDM volume 2: DAA, DAS, AAA, AAS, AAM, AAD).
// There are no native vectors for them: the recording machine ran in 64-bit
// mode, where all six are invalid.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { DIVIDE_ERROR } from "../src/cpu/faults.ts";
import { AF, CF, OF, PF, SF, ZF } from "../src/cpu/registers.ts";
import { STOP_BUDGET, STOP_EXCEPTION } from "../src/cpu/stop.ts";

const START = 0x1000;
const cpu = new CPU(new PhysicalMemory(0x4000));

/** Runs one instruction at START with eax and the arithmetic flags given. */
function run(code: number[], eax: number, flags = 0): { cpu: CPU; stop: number } {
  cpu.memory.ram.set(code, START);
  cpu.forgetCode(START >>> 12);
  cpu.eip = START;
  cpu.regs[0] = eax;
  cpu.setEflags(flags, CF | PF | AF | ZF | SF | OF);
  const stop = cpu.run(1);
  return { cpu, stop };
}

const ax = (cpu: CPU) => cpu.regs16[0];
const al = (cpu: CPU) => cpu.regs8[0];
const flagsOf = (cpu: CPU) => cpu.eflags() & (CF | PF | AF | ZF | SF | OF);

const DAA = 0x27, DAS = 0x2f, AAA = 0x37, AAS = 0x3f, AAM = 0xd4, AAD = 0xd5;

test("daa of 0x9A gives 0x00 with CF and AF set (a decimal carry out of both digits)", () => {
  const { cpu } = run([DAA], 0x9a);
  assert.equal(al(cpu), 0x00);
  assert.equal(flagsOf(cpu), CF | AF | ZF | PF);
});

test("daa: the SDM's example, 0x79 + 0x35 = 0xAE adjusts to 0x14 with CF", () => {
  const { cpu } = run([DAA], 0xae);
  assert.equal(al(cpu), 0x14);
  assert.equal(flagsOf(cpu), CF | AF | PF);
});

test("daa: the second step is judged on the original al and carry (0x2E adjusts to 0x34, no CF)", () => {
  const { cpu } = run([DAA], 0x2e);
  assert.equal(al(cpu), 0x34);
  assert.equal(flagsOf(cpu) & (CF | AF), AF);
});

test("daa with AF set adjusts a digit that looks valid (0x12 + AF -> 0x18)", () => {
  const { cpu } = run([DAA], 0x12, AF);
  assert.equal(al(cpu), 0x18);
  assert.equal(flagsOf(cpu) & (CF | AF), AF);
});

test("daa leaves a valid packed byte alone and clears CF, AF and OF", () => {
  const { cpu } = run([DAA], 0x99, OF);
  assert.equal(al(cpu), 0x99);
  assert.equal(flagsOf(cpu), SF | PF);
});

test("das: the SDM's example, 0x35 - 0x47 = 0xEE adjusts to 0x88 with CF and AF", () => {
  const { cpu } = run([DAS], 0xee);
  assert.equal(al(cpu), 0x88);
  assert.equal(flagsOf(cpu), CF | AF | SF | PF);
});

test("das keeps the borrow of its first step (al 0x03 with AF -> 0xFD, CF set)", () => {
  const { cpu } = run([DAS], 0x03, AF);
  assert.equal(al(cpu), 0xfd);
  assert.equal(flagsOf(cpu) & (CF | AF), CF | AF);
});

test("aaa of al 0x0F carries into ah: ax 0x000F -> 0x0105, CF and AF set", () => {
  const { cpu } = run([AAA], 0x000f);
  assert.equal(ax(cpu), 0x0105);
  assert.equal(flagsOf(cpu) & (CF | AF), CF | AF);
});

test("aaa is ax + 0x106: al above 0xF9 carries twice into ah", () => {
  const { cpu } = run([AAA], 0x01fa);
  assert.equal(ax(cpu), 0x0300);
});

test("aaa without a decimal carry clears CF and AF, the top nibble of al, and leaves ah", () => {
  const { cpu } = run([AAA], 0x0735, CF);
  assert.equal(ax(cpu), 0x0705);
  assert.equal(flagsOf(cpu) & (CF | AF), 0);
});

test("aaa leaves OF, SF, ZF and PF as they were (undefined; our choice)", () => {
  const { cpu } = run([AAA], 0x000f, OF | SF | ZF | PF);
  assert.equal(flagsOf(cpu), OF | SF | ZF | PF | CF | AF);
});

test("aas with a decimal borrow: ax 0x0208 with AF -> 0x0102, CF and AF set", () => {
  const { cpu } = run([AAS], 0x0208, AF);
  assert.equal(ax(cpu), 0x0102);
  assert.equal(flagsOf(cpu) & (CF | AF), CF | AF);
});

test("aas is ax - 6 then ah - 1: al below 6 borrows from ah twice", () => {
  const { cpu } = run([AAS], 0x0003, AF);
  assert.equal(ax(cpu), 0xfe0d);
});

test("aam 10 of 0x3F gives ah 6, al 3, and flags from al", () => {
  const { cpu } = run([AAM, 0x0a], 0x3f, CF | OF | AF | ZF);
  assert.equal(ax(cpu), 0x0603);
  assert.equal(flagsOf(cpu), PF);
});

test("aam with another base: aam 16 splits a byte into nibbles", () => {
  const { cpu } = run([AAM, 0x10], 0xa7);
  assert.equal(ax(cpu), 0x0a07);
});

test("aam 0 raises #DE with eip at the instruction and nothing changed", () => {
  const { cpu, stop } = run([AAM, 0x00], 0x1234, CF);
  assert.equal(stop, STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, DIVIDE_ERROR);
  assert.equal(cpu.eip, START);
  assert.equal(ax(cpu), 0x1234);
  assert.equal(flagsOf(cpu), CF);
});

test("aad 10 joins two digits: ax 0x0703 -> 0x0049", () => {
  const { cpu } = run([AAD, 0x0a], 0x0703);
  assert.equal(ax(cpu), 0x0049);
  assert.equal(flagsOf(cpu), 0);
});

test("aad 16 joins two nibbles: ax 0x0A07 -> 0x00A7, SF from al, OF AF CF clear", () => {
  const { cpu, stop } = run([AAD, 0x10], 0x0a07, OF | AF | CF);
  assert.equal(stop, STOP_BUDGET);
  assert.equal(ax(cpu), 0x00a7);
  assert.equal(flagsOf(cpu), SF);
});

test("aad keeps only the low byte of ah * base + al, and zero sets ZF and PF", () => {
  const { cpu } = run([AAD, 0x10], 0x1000);
  assert.equal(ax(cpu), 0x0000);
  assert.equal(flagsOf(cpu), ZF | PF);
});

test("the adjusts leave the rest of eax alone", () => {
  const { cpu } = run([AAM, 0x0a], 0x12340063);
  assert.equal(cpu.regs[0] >>> 0, 0x12340909);
});
