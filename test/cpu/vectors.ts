// Replays the reference test vectors (test/cpu/vectors/*.jsonl.gz, made by
// test/cpu/native/ on the real CPU and by test/cpu/qemu/ under qemu-i386) on
// our CPU. Shared by the test and by a command-line report:
// `npx tsx test/cpu/vectors.ts [group]` prints every mismatch.
import { readFileSync, readdirSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { CPU } from "../../src/cpu/cpu.ts";
import { PhysicalMemory } from "../../src/cpu/memory.ts";
import { setSegmentCache } from "../../src/cpu/segments.ts";
import { STOP_EXCEPTION } from "../../src/cpu/stop.ts";
import { hex } from "../../src/cpu/hex.ts";

export const vectorFolder = join(import.meta.dirname, "vectors");
const registers = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"] as const;
const FLAG_MASK = 0xcd7;
const IF = 0x200;
const segmentNames = ["es", "cs", "ss", "ds", "fs", "gs"] as const;

/** A segment register in a vector: the selector and, unless it is null, its descriptor cache. */
export interface Segment {
  sel: number;
  base?: number;
  limit?: number;
  size?: 16 | 32;
}

interface State {
  [register: string]: unknown;
  eflags: number;
  seg?: Partial<Record<(typeof segmentNames)[number], Segment>>;
  mem: [number, string][];
}

export interface Vector {
  form: string;
  code: string;
  in: State;
  out: State;
  eip: number;
  exception: null | { vector: number; error_code?: number };
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

/** One CPU with RAM up to the end of the vectors' buffers (64 KiB native,
 * 128 KiB for the QEMU files), reused for every vector. */
export function vectorMachine(): CPU {
  return new CPU(new PhysicalMemory(0x10000000 + 0x21000));
}

/** Where the replayer puts a file's descriptor tables (below the vectors' buffer). */
const GDT_AT = 0x1000, LDT_AT = 0x20000;

/**
 * Loads a file's descriptor tables (header "descriptor_tables", entries as
 * [index, 8 bytes in memory order]) so segment loads can be replayed.
 */
export function loadDescriptorTables(cpu: CPU, header: Record<string, unknown>): void {
  const tables = header.descriptor_tables as undefined | Record<"gdt" | "ldt", { limit: number; entries: [number, string][] }>;
  cpu.memory.ram.fill(0, GDT_AT, GDT_AT + 0x10000);
  cpu.memory.ram.fill(0, LDT_AT, LDT_AT + 0x10000);
  cpu.gdtBase = GDT_AT;
  cpu.gdtLimit = tables?.gdt.limit ?? 0xffff;
  cpu.ldtBase = LDT_AT;
  cpu.ldtLimit = tables?.ldt?.limit ?? 0;
  cpu.ldtSelector = tables?.ldt ? 0x08 : 0;
  for (const [index, bytes] of tables?.gdt.entries ?? []) cpu.memory.ram.set(Buffer.from(bytes, "hex"), GDT_AT + index * 8);
  for (const [index, bytes] of tables?.ldt?.entries ?? []) cpu.memory.ram.set(Buffer.from(bytes, "hex"), LDT_AT + index * 8);
}

/**
 * Flat segments (selector 0, base 0, limit 4 GiB, 32-bit stack), then the
 * vector's in.seg. A segment the vector names gets the access rights of
 * its descriptor in the loaded tables, as if loaded at the recording.
 */
function loadSegments(cpu: CPU, seg: State["seg"], cpl: number): void {
  const flatData = 0x00c09300 | (cpl << 13);
  const flatCode = 0x00c09b00 | (cpl << 13);
  for (let n = 0; n < 6; n++) {
    const s = seg?.[segmentNames[n]];
    if (s === undefined) {
      setSegmentCache(cpu, n, 0, 0, 0xffffffff, n === 1 ? flatCode : flatData);
      continue;
    }
    const selector = s.sel ?? 0;
    const table = selector & 4 ? cpu.ldtBase : cpu.gdtBase;
    const high = (selector & 0xfffc) === 0 ? 0 : cpu.memory.read32(table + (selector & ~7) + 4);
    const limit = s.base === undefined ? 0 : (s.limit ?? 0xffffffff);
    setSegmentCache(cpu, n, selector, s.base ?? 0, limit, high || (n === 1 ? flatCode : flatData));
  }
  cpu.stackMask = seg?.ss?.size === 16 ? 0xffff : -1;
}


/**
 * The vectors were recorded in 64-bit mode, where a CS segment override is
 * ignored. On the i386, cs is a code segment, and writing through it is a
 * #GP(0) (the SDM's rule, which is what our CPU must do): for those vectors
 * the recorded result is not the i386's, and #GP(0) is the right answer.
 */
export function writesThroughCs(vector: Vector): boolean {
  const bytes = Buffer.from(vector.code, "hex");
  let at = 0;
  let csOverride = false;
  while ([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3].includes(bytes[at])) {
    if (bytes[at] === 0x2e) csOverride = true;
    else if ([0x26, 0x36, 0x3e, 0x64, 0x65].includes(bytes[at])) csOverride = false;
    at++;
  }
  const memoryDestination = /^\S+ m\d+/.test(vector.form) && !/^(cmp|test|bt) /.test(vector.form);
  return csOverride && memoryDestination;
}

/** Runs one vector; returns what differed (empty when it matched).
 * `cpl` is the privilege level the vectors were recorded at (header "cpl", default 0). */
export function replay(cpu: CPU, vector: Vector, cpl = 0): Mismatch[] {
  const code = Buffer.from(vector.code, "hex");
  for (let k = 0; k < 16; k++) cpu.memory.ram[k] = k < code.length ? code[k] : 0xcc;
  cpu.forgetCode(0);
  for (const [address, bytes] of vector.in.mem) cpu.memory.ram.set(Buffer.from(bytes, "hex"), address);
  registers.forEach((name, n) => (cpu.regs[n] = vector.in[name] as number));
  cpu.setEflags(vector.in.eflags | IF, -1);
  cpu.setPrivilege(cpl);
  loadSegments(cpu, vector.in.seg, cpl);
  cpu.eip = 0;
  const stop = cpu.run(1);

  const problems: Mismatch[] = [];
  const note = (what: string, undefinedOnly = false) =>
    problems.push({ form: vector.form, code: vector.code, what, undefinedOnly });
  const skip = new Set(vector.undef_out ?? []);
  if (vector.exception) {
    if (stop !== STOP_EXCEPTION || cpu.exceptionVector !== vector.exception.vector) {
      note(`expected exception ${vector.exception.vector}, got stop ${stop} vector ${cpu.exceptionVector}`);
    } else if (vector.exception.error_code !== undefined && cpu.exceptionErrorCode !== vector.exception.error_code) {
      note(`error code ${hex(cpu.exceptionErrorCode)}, expected ${hex(vector.exception.error_code)}`);
    }
  } else if (stop === STOP_EXCEPTION) {
    if (writesThroughCs(vector) && cpu.exceptionVector === 13 && cpu.exceptionErrorCode === 0) return [];
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
  for (const [name, expected] of Object.entries(vector.out.seg ?? {})) {
    const n = segmentNames.indexOf(name as (typeof segmentNames)[number]);
    const what: string[] = [];
    if (cpu.segSelector[n] !== expected.sel) what.push(`selector ${hex(cpu.segSelector[n])}, expected ${hex(expected.sel)}`);
    if (expected.base !== undefined && (cpu.segBase[n] >>> 0) !== expected.base) what.push(`base ${hex(cpu.segBase[n])}, expected ${hex(expected.base)}`);
    if (expected.limit !== undefined && cpu.segLimit[n] !== expected.limit) what.push(`limit ${hex(cpu.segLimit[n])}, expected ${hex(expected.limit)}`);
    if (n === 2 && expected.size !== undefined && (cpu.stackMask === -1 ? 32 : 16) !== expected.size) what.push(`stack size ${expected.size} expected`);
    if (what.length) note(`${name} ${what.join(", ")}`);
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
    const { header, vectors } = readVectors(file);
    const cpl = typeof header.cpl === "number" ? header.cpl : 0;
    loadDescriptorTables(cpu, header);
    const byForm = new Map<string, { total: number; bad: number; undefinedOnly: number; first?: string }>();
    for (const vector of vectors) {
      const entry = byForm.get(vector.form) ?? { total: 0, bad: 0, undefinedOnly: 0 };
      byForm.set(vector.form, entry);
      entry.total++;
      let problems: Mismatch[];
      try {
        problems = replay(cpu, vector, cpl);
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
