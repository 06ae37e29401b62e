// The opcode census (book/cpu-census.md): a table, written from the SDM's
// opcode maps, of what a P6-family processor with exactly our CPUID
// features does with every one-byte and every 0F xx opcode, execute or #UD.
// This test is generated from that table: it reads the rows out of the
// chapter and runs every opcode, in every form its row distinguishes, on
// our CPU, one instruction at a time from the same state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { STOP_EXCEPTION } from "../src/cpu/stop.ts";
import { EAX, EDX, ESP } from "../src/cpu/registers.ts";
import { loadState, saveState } from "../src/cpu/state.ts";

const chapter = readFileSync(new URL("../book/cpu-census.md", import.meta.url), "utf8");

/** The rows of the table that follows `heading`: each row's cells, without the backquotes. */
function table(heading: string): string[][] {
  const start = chapter.indexOf(heading);
  assert.ok(start >= 0, `the chapter has a section "${heading}"`);
  const rows: string[][] = [];
  for (const line of chapter.slice(start).split("\n").slice(1)) {
    if (line.startsWith("## ")) break;
    if (!line.startsWith("| `") && !/^\| \d/.test(line)) continue;
    rows.push(line.slice(2, -2).split(" | ").map((cell) => cell.replaceAll("`", "").trim()));
  }
  return rows;
}

const bytesOf = (text: string) => text.split(" ").map((byte) => parseInt(byte, 16));

// --- running one instruction -----------------------------------------------------------

const CODE = 0x1000;
const cpu = new CPU(new PhysicalMemory(0x10000));
// Every register points into RAM (and a value with PE set, for mov cr0), the stack in the middle.
for (let r = 0; r < 8; r++) cpu.regs[r] = 0x3001;
cpu.regs[ESP] = 0x8000;
cpu.eip = CODE;
const start = saveState(cpu);
const pristine = cpu.memory.ram.slice();

/** Runs one instruction made of `bytes` (zeros after it) in ring 0; true if it raised #UD. */
function raisesUd(bytes: number[]): boolean {
  cpu.memory.ram.set(pristine);
  cpu.memory.ram.set(bytes, CODE);
  for (let page = 0; page < cpu.codePages.length; page++) if (cpu.codePages[page]) cpu.forgetCode(page);
  loadState(cpu, start);
  cpu.singleStepPending = false;
  cpu.interruptShadow = false;
  cpu.pendingInterrupt = -1;
  cpu.attention = 0;
  cpu.exceptionVector = -1;
  return cpu.run(1) === STOP_EXCEPTION && cpu.exceptionVector === 6;
}

// --- the "Raises #UD for" column ---------------------------------------------------------

type Forms = { kind: "prefix" } | { kind: "escape" } | { kind: "modrm"; ud: (modrm: number) => boolean };

function forms(cell: string): Forms {
  if (cell === "prefix") return { kind: "prefix" };
  if (cell === "escape") return { kind: "escape" };
  if (cell === "none") return { kind: "modrm", ud: () => false };
  if (cell === "all") return { kind: "modrm", ud: () => true };
  const tests = cell.split(", ").map((token) => {
    const form = /^(?:(mem|reg) ?)?(?:\/(\d)(?:-\/(\d))?|([0-9A-F]{2})(?:-([0-9A-F]{2}))?)?$/.exec(token);
    assert.ok(form, `"${token}" is a form the census knows`);
    const [, mode, reg, regTo, byte, byteTo] = form;
    return (modrm: number) => {
      const register = modrm >= 0xc0;
      if (mode === "mem" && register) return false;
      if (mode === "reg" && !register) return false;
      if (reg !== undefined) {
        const field = (modrm >> 3) & 7;
        return field >= Number(reg) && field <= Number(regTo ?? reg);
      }
      if (byte !== undefined) return modrm >= parseInt(byte, 16) && modrm <= parseInt(byteTo ?? byte, 16);
      return true; // a bare mem or reg
    };
  });
  return { kind: "modrm", ud: (modrm) => tests.some((t) => t(modrm)) };
}

/** The ModRM bytes worth trying: one memory and one register form per reg value; for the x87, every register form. */
function modrmsFor(opcode: number[]): number[] {
  const x87 = opcode.length === 1 && opcode[0] >= 0xd8 && opcode[0] <= 0xdf;
  const memory = Array.from({ length: 8 }, (_, reg) => reg << 3);
  const register = x87 ? Array.from({ length: 64 }, (_, k) => 0xc0 + k) : memory.map((m) => m | 0xc0);
  return [...memory, ...register];
}

function census(heading: string, prefix: number[]): { disagreements: string[]; rows: number } {
  const rows = table(heading);
  const disagreements: string[] = [];
  rows.forEach((cells, k) => {
    const opcode = bytesOf(cells[0]);
    assert.deepEqual(opcode, [...prefix, k], `row ${k} of "${heading}" is for opcode ${k.toString(16)}`);
    const row = forms(cells[2]);
    if (row.kind === "escape") return;
    if (row.kind === "prefix") {
      if (raisesUd([...opcode, 0x01, 0x00])) disagreements.push(`${cells[0]} (${cells[1]}) before add [eax], eax: #UD`);
      return;
    }
    for (const modrm of modrmsFor(opcode)) {
      const expected = row.ud(modrm);
      if (raisesUd([...opcode, modrm]) !== expected) {
        disagreements.push(`${cells[0]} ${modrm.toString(16)} (${cells[1]}): the census says ${expected ? "#UD" : "executes"}`);
      }
    }
  });
  return { disagreements, rows: rows.length };
}

test("every one-byte opcode executes, or raises #UD, in the forms the census says", () => {
  const { disagreements, rows } = census("## One-byte opcodes", []);
  assert.equal(rows, 256);
  assert.deepEqual(disagreements, []);
});

test("every two-byte opcode (0F xx) executes, or raises #UD, in the forms the census says", () => {
  const { disagreements, rows } = census("## Two-byte opcodes", [0x0f]);
  assert.equal(rows, 256);
  assert.deepEqual(disagreements, []);
});

test("CPUID advertises a feature exactly when its instructions execute, and advertises nothing else", () => {
  const features = table("## What \"a P6 with our CPUID\" means");
  assert.ok(features.length >= 10);
  let advertised = 0;
  for (const [bit, name, claimed, sample] of features) {
    const executes = !raisesUd(bytesOf(sample));
    assert.equal(executes, claimed === "yes", `${name}: its sample ${sample} ${executes ? "executes" : "raises #UD"}`);
    if (claimed === "yes") advertised |= 1 << Number(bit);
  }
  loadState(cpu, start);
  cpu.memory.ram.set([0x0f, 0xa2], CODE);
  for (let page = 0; page < cpu.codePages.length; page++) if (cpu.codePages[page]) cpu.forgetCode(page);
  cpu.regs[EAX] = 1;
  cpu.run(1);
  assert.equal(cpu.regs[EDX] >>> 0, advertised >>> 0, "leaf 1 edx is exactly the advertised bits");
});
