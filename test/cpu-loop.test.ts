// The hot loop (book/cpu-loop.md): the handlers it calls by name must be the
// ones the decoder numbered, so that the `switch` and `hotHandlers` agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { decode } from "../src/cpu/decode.ts";
import { hotHandlers } from "../src/cpu/hot.ts";
import { Insn } from "../src/cpu/insn.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { EBX, ESI, ESP } from "../src/cpu/registers.ts";

const CODE = 0x1000;

/** One instruction for every hot handler. */
const samples: Record<string, number[]> = {
  "mov eax, ecx": [0x89, 0xc8],
  "add eax, ecx": [0x01, 0xc8],
  "jne +5": [0x75, 0x05],
  "mov eax, [ebx+4]": [0x8b, 0x43, 0x04],
  "mov [ebx+4], eax": [0x89, 0x43, 0x04],
  "movzx eax, bl": [0x0f, 0xb6, 0xc3],
  "movzx eax, byte [ebx+4]": [0x0f, 0xb6, 0x43, 0x04],
  "add ecx, 7": [0x83, 0xc1, 0x07],
  "inc eax": [0x40],
  "lea eax, [ebx+esi*2+4]": [0x8d, 0x44, 0x73, 0x04],
  "add eax, [ebx+4]": [0x03, 0x43, 0x04],
  "shr eax, 3": [0xc1, 0xe8, 0x03],
};

function machine(code: number[]): CPU {
  const cpu = new CPU(new PhysicalMemory(0x10000));
  cpu.memory.ram.set(code, CODE);
  for (let k = 0; k < 64; k++) cpu.memory.ram[0x3000 + k] = (k * 37 + 11) & 0xff;
  cpu.regs.set([0x12345678, 0x0badf00d, 7, 0x3000, 0x8000, 0, 5, 0]);
  cpu.eip = CODE;
  cpu.regs[ESP] = 0x8000;
  cpu.regs[EBX] = 0x3000;
  cpu.regs[ESI] = 5;
  return cpu;
}

function state(cpu: CPU) {
  return { regs: [...cpu.regs], eip: cpu.eip, eflags: cpu.eflags(), memory: [...cpu.memory.ram.subarray(0x3000, 0x3040)] };
}

test("every hot handler has a sample, and the decoder numbers it by its place in hotHandlers", () => {
  const covered = new Set<number>();
  for (const [name, bytes] of Object.entries(samples)) {
    const insn = decode((k) => bytes[k], new Insn(() => {}));
    assert.ok(insn.hot > 0, `${name} is not hot`);
    assert.equal(hotHandlers[insn.hot - 1], insn.exec, name);
    covered.add(insn.hot);
  }
  assert.equal(covered.size, hotHandlers.length);
});

test("the loop's switch runs the same handler as insn.exec for every hot number", () => {
  for (const [name, bytes] of Object.entries(samples)) {
    const looped = machine(bytes);
    looped.run(1);
    const direct = machine(bytes);
    const insn = decode((k) => bytes[k], new Insn(() => {}));
    direct.eip = (direct.eip + insn.length) | 0;
    insn.exec(direct, insn);
    assert.deepEqual(state(looped), state(direct), name);
  }
});
