// Replays the x87 reference vectors (test/cpu/vectors/x87.jsonl.gz, made by
// test/cpu/native/gen_x87.c; format in test/cpu/native/README.md, section
// "x87") on our CPU. Shared by test/cpu-x87.test.ts and by a command-line
// report: `npx tsx test/cpu/x87-vectors.ts [form prefix]` prints, per form,
// how many vectors disagree and the first disagreement in full.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { CPU } from "../../src/cpu/cpu.ts";
import { PhysicalMemory } from "../../src/cpu/memory.ts";
import { flushTlb } from "../../src/cpu/tlb.ts";
import { STOP_EXCEPTION } from "../../src/cpu/stop.ts";
import { hex } from "../../src/cpu/hex.ts";
import { readST, setStatusWord, setTagWord, statusWord, tagWord } from "../../src/cpu/x87.ts";
import type { Float80 } from "../../src/cpu/float80.ts";

export const x87VectorFile = join(import.meta.dirname, "vectors", "x87.jsonl.gz");

interface FpuState {
  cw: number;
  sw: number;
  tw: number;
  /** st(0) to st(7): sign and exponent (4 hex digits), then the significand (16). */
  st: string[];
}

interface State {
  eax: number;
  eflags: number;
  mem: [number, string][];
  fpu: FpuState;
}

export interface X87Vector {
  form: string;
  code: string;
  in: State;
  out: State;
  eip: number;
  /** Output byte ranges that hold the host's instruction and data pointers. */
  ignore?: [number, number][];
  /** Status word bits the vector does not pin down. */
  undef_sw?: number;
  /** A transcendental instruction: registers are compared within the book's error bound. */
  approx?: boolean;
}

export function readX87Vectors(): { header: Record<string, unknown>; vectors: X87Vector[] } {
  const lines = gunzipSync(readFileSync(x87VectorFile)).toString("utf8").trim().split("\n");
  return { header: JSON.parse(lines[0]), vectors: lines.slice(1).map((line) => JSON.parse(line)) };
}

/** RAM to the end of the vectors' memory (0x100000 + 0x2000). */
export function x87Machine(): CPU {
  return new CPU(new PhysicalMemory(0x103000));
}

const EFLAGS_MASK = 0x8d5;
const IF = 0x200;

export const parseRegister = (text: string): Float80 => ({
  se: parseInt(text.slice(0, 4), 16),
  sig: BigInt("0x" + text.slice(4)),
});
const formatRegister = (value: Float80) =>
  value.se.toString(16).padStart(4, "0") + value.sig.toString(16).padStart(16, "0");

/**
 * The error bound the book states for the transcendental instructions:
 * |ours - processor's| <= 2^-51 × |processor's| + 2^-16445 (one unit of the smallest denormal).
 * Special values (infinities, NaNs) must match exactly.
 */
export function withinBound(ours: Float80, theirs: Float80): boolean {
  if (ours.se === theirs.se && ours.sig === theirs.sig) return true;
  const finite = (x: Float80) => (x.se & 0x7fff) !== 0x7fff && (x.sig >> 63n === 1n || (x.se & 0x7fff) === 0);
  if (!finite(ours) || !finite(theirs)) return false;
  const lsb = (x: Float80) => Math.max(x.se & 0x7fff, 1) - 16383 - 63; // >= -16445
  const common = Math.min(lsb(ours), lsb(theirs));
  const value = (x: Float80) => (x.se & 0x8000 ? -1n : 1n) * (x.sig << BigInt(lsb(x) - common));
  const a = value(ours), b = value(theirs);
  const difference = a > b ? a - b : b - a;
  const magnitude = b < 0n ? -b : b;
  const smallestDenormal = 1n << BigInt(-16445 - common); // 2^-16445 in units of 2^common (common >= -16445)
  return difference << 51n <= (magnitude << 0n) + (smallestDenormal << 51n);
}

/** Runs one vector; returns what differed (empty when it matched). */
export function replayX87(cpu: CPU, vector: X87Vector): string[] {
  const code = Buffer.from(vector.code, "hex");
  cpu.memory.ram.fill(0xcc, 0, 32);
  cpu.memory.ram.set(code, 0);
  cpu.forgetCode(0);
  flushTlb(cpu); // keeps the TLB's list of filled pages short, which keeps forgetCode cheap
  for (const [address, bytes] of vector.in.mem) cpu.memory.ram.set(Buffer.from(bytes, "hex"), address);
  cpu.regs[0] = vector.in.eax;
  cpu.setEflags(vector.in.eflags | IF, -1);
  const fpu = cpu.fpu;
  fpu.control = (vector.in.fpu.cw & 0x1f3f) | 0x40;
  setStatusWord(fpu, vector.in.fpu.sw);
  setTagWord(fpu, vector.in.fpu.tw);
  vector.in.fpu.st.forEach((text, i) => {
    const value = parseRegister(text);
    const p = (fpu.top + i) & 7;
    fpu.signExponent[p] = value.se;
    fpu.significand[p] = value.sig;
  });
  cpu.eip = 0;
  const stop = cpu.run(1);

  const problems: string[] = [];
  if (stop === STOP_EXCEPTION) return [`unexpected exception ${cpu.exceptionVector}`];
  if (cpu.eip !== vector.eip) problems.push(`eip ${hex(cpu.eip)}, expected ${hex(vector.eip)}`);
  if ((cpu.regs[0] >>> 0) !== vector.out.eax) problems.push(`eax ${hex(cpu.regs[0])}, expected ${hex(vector.out.eax)}`);
  const flags = cpu.eflags() & EFLAGS_MASK, expectedFlags = vector.out.eflags & EFLAGS_MASK;
  if (flags !== expectedFlags) problems.push(`eflags ${hex(flags)}, expected ${hex(expectedFlags)}`);
  const out = vector.out.fpu;
  if (fpu.control !== out.cw) problems.push(`cw ${hex(fpu.control)}, expected ${hex(out.cw)}`);
  const loose = (vector.undef_sw ?? 0) | (vector.approx ? 0x200 : 0); // C1: "rounded up" is not comparable
  if ((statusWord(fpu) & ~loose) !== (out.sw & ~loose)) problems.push(`sw ${hex(statusWord(fpu))}, expected ${hex(out.sw)}`);
  if (tagWord(fpu) !== out.tw) problems.push(`tw ${hex(tagWord(fpu))}, expected ${hex(out.tw)}`);
  out.st.forEach((text, i) => {
    const ours = readST(fpu, i), theirs = parseRegister(text);
    const same = vector.approx ? withinBound(ours, theirs) : ours.se === theirs.se && ours.sig === theirs.sig;
    if (!same) problems.push(`st(${i}) ${formatRegister(ours)}, expected ${text}`);
  });
  const ignored = new Set<number>();
  for (const [address, length] of vector.ignore ?? []) for (let k = 0; k < length; k++) ignored.add(address + k);
  const expected = new Map<number, number>();
  for (const [address, bytes] of vector.in.mem) Buffer.from(bytes, "hex").forEach((b, k) => expected.set(address + k, b));
  for (const [address, bytes] of vector.out.mem) Buffer.from(bytes, "hex").forEach((b, k) => expected.set(address + k, b));
  for (const [address, value] of expected) {
    if (ignored.has(address) || cpu.memory.ram[address] === value) continue;
    problems.push(`memory ${hex(address)} = ${hex(cpu.memory.ram[address])}, expected ${hex(value)}`);
    break;
  }
  return problems;
}

if (process.argv[1] === import.meta.filename) {
  const only = process.argv[2];
  const cpu = x87Machine();
  const { vectors } = readX87Vectors();
  const byForm = new Map<string, { total: number; bad: number; first?: string }>();
  let bad = 0, total = 0;
  for (const vector of vectors) {
    if (only && !vector.form.startsWith(only)) continue;
    const entry = byForm.get(vector.form) ?? { total: 0, bad: 0 };
    byForm.set(vector.form, entry);
    entry.total++;
    total++;
    let problems: string[];
    try {
      problems = replayX87(cpu, vector);
    } catch (error) {
      problems = [`threw ${(error as Error).stack}`];
    }
    if (problems.length) {
      entry.bad++;
      bad++;
      entry.first ??= `${vector.code} in ${JSON.stringify(vector.in.fpu)} out ${JSON.stringify(vector.out.fpu)}: ${problems.join("; ")}`;
    }
  }
  for (const [form, entry] of byForm) {
    if (entry.bad) console.log(`${form}: ${entry.bad}/${entry.total} bad\n    ${entry.first}`);
  }
  console.log(`x87: ${total} vectors, ${bad} mismatches`);
}
