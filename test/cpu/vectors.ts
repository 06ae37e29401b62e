// Replays the native test vectors (test/cpu/vectors/*.jsonl.gz, made by
// test/cpu/native/) on our CPU. Shared by the test and by a command-line
// report: `npx tsx test/cpu/vectors.ts [group]` prints every mismatch.
import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { CPU } from "../../src/cpu/cpu.ts";
import { PhysicalMemory } from "../../src/cpu/memory.ts";
import { STOP_EXCEPTION } from "../../src/cpu/stop.ts";

export const vectorFolder = join(import.meta.dirname, "vectors");
const registers = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;
const FLAG_MASK = 0xcd7;
const IF = 0x200;

interface State {
  [register: string]: unknown;
  eflags: number;
  mem: [number, string][];
}

export interface Vector {
  form: string;
  code: string;
  in: State;
  out: State;
  eip: number;
  exception: null | { vector: number };
  undef?: number;
  undef_out?: string[];
}

export interface Mismatch {
  form: string;
  code: string;
  what: string;
  undefinedOnly: boolean;
}

export function readVectors(file: string): { header: Record<string, unknown>; vectors: Vector[] } {
  const lines = gunzipSync(readFileSync(join(vectorFolder, file))).toString("utf8").trim().split("\n");
  return { header: JSON.parse(lines[0]), vectors: lines.slice(1).map((line) => JSON.parse(line)) };
}

/** The integer vector files; x87.jsonl.gz has a format of its own, replayed by x87-vectors.ts. */
export function vectorFiles(): string[] {
  return readdirSync(vectorFolder).filter((name) => name.endsWith(".jsonl.gz") && name !== "x87.jsonl.gz").sort();
}

/** One CPU with RAM up to the end of the vectors' buffer, reused for every vector. */
export function vectorMachine(): CPU {
  return new CPU(new PhysicalMemory(0x10000000 + 0x11000));
}

const hex = (n: number) => "0x" + (n >>> 0).toString(16);

/** Runs one vector; returns what differed (empty when it matched). */
export function replay(cpu: CPU, vector: Vector): Mismatch[] {
  const code = Buffer.from(vector.code, "hex");
  for (let k = 0; k < 16; k++) cpu.memory.ram[k] = k < code.length ? code[k] : 0xcc;
  cpu.forgetCode(0);
  for (const [address, bytes] of vector.in.mem) cpu.memory.ram.set(Buffer.from(bytes, "hex"), address);
  registers.forEach((name, n) => (cpu.regs[n] = vector.in[name] as number));
  cpu.setEflags(vector.in.eflags | IF, -1);
  cpu.eip = 0;
  const stop = cpu.run(1);

  const problems: Mismatch[] = [];
  const note = (what: string, undefinedOnly = false) =>
    problems.push({ form: vector.form, code: vector.code, what, undefinedOnly });
  const skip = new Set(vector.undef_out ?? []);
  if (vector.exception) {
    if (stop !== STOP_EXCEPTION || cpu.exceptionVector !== vector.exception.vector) {
      note(`expected exception ${vector.exception.vector}, got stop ${stop} vector ${cpu.exceptionVector}`);
    }
  } else if (stop === STOP_EXCEPTION) {
    note(`unexpected exception ${cpu.exceptionVector} (error ${cpu.exceptionErrorCode})`);
    return problems;
  }
  if ((cpu.eip >>> 0) !== vector.eip) note(`eip ${hex(cpu.eip)}, expected ${hex(vector.eip)}`);
  registers.forEach((name, n) => {
    if (skip.has(name)) return;
    const expected = vector.out[name] as number;
    if ((cpu.regs[n] >>> 0) !== expected) note(`${name} ${hex(cpu.regs[n])}, expected ${hex(expected)}`);
  });
  const flags = cpu.eflags() & FLAG_MASK;
  const expectedFlags = vector.out.eflags & FLAG_MASK;
  const undefinedFlags = vector.undef ?? 0;
  if ((flags & ~undefinedFlags) !== (expectedFlags & ~undefinedFlags)) {
    note(`eflags ${hex(flags)}, expected ${hex(expectedFlags)}`);
  } else if (flags !== expectedFlags) {
    note(`undefined flags ${hex(flags & undefinedFlags)}, CPU gave ${hex(expectedFlags & undefinedFlags)}`, true);
  }
  if (!skip.has("mem")) {
    const expected = new Map<number, number>();
    for (const [address, bytes] of vector.in.mem) Buffer.from(bytes, "hex").forEach((b, k) => expected.set(address + k, b));
    for (const [address, bytes] of vector.out.mem) Buffer.from(bytes, "hex").forEach((b, k) => expected.set(address + k, b));
    for (const [address, value] of expected) {
      if (cpu.memory.ram[address] !== value) {
        note(`memory ${hex(address)} = ${hex(cpu.memory.ram[address])}, expected ${hex(value)}`);
        break;
      }
    }
  }
  return problems;
}

if (process.argv[1] === import.meta.filename) {
  const only = process.argv[2];
  const cpu = vectorMachine();
  for (const file of vectorFiles()) {
    if (only && !file.startsWith(only)) continue;
    const { vectors } = readVectors(file);
    const byForm = new Map<string, { total: number; bad: number; undefinedOnly: number; first?: string }>();
    for (const vector of vectors) {
      const entry = byForm.get(vector.form) ?? { total: 0, bad: 0, undefinedOnly: 0 };
      byForm.set(vector.form, entry);
      entry.total++;
      let problems: Mismatch[];
      try {
        problems = replay(cpu, vector);
      } catch (error) {
        problems = [{ form: vector.form, code: vector.code, what: `threw ${error}`, undefinedOnly: false }];
      }
      if (problems.some((p) => !p.undefinedOnly)) {
        entry.bad++;
        entry.first ??= `${vector.code}: ${problems.map((p) => p.what).join("; ")}`;
      } else if (problems.length) entry.undefinedOnly++;
    }
    for (const [form, entry] of byForm) {
      if (entry.bad || entry.undefinedOnly) {
        console.log(`${file} ${form}: ${entry.bad}/${entry.total} bad, ${entry.undefinedOnly} undefined-only${entry.first ? ` e.g. ${entry.first}` : ""}`);
      }
    }
    console.log(`${file}: ${vectors.length} vectors`);
  }
}
