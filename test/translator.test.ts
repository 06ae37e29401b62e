// The translator's own rules (book/cpu-translator.md): self-modifying and
// cross-modifying code, a page written constantly, precise exceptions in
// the middle of a translated loop, and exact budgets. Each program runs
// three ways: interpreted, translated once hot, and translated from its
// first instruction; the expected results come from what the program
// computes on a real CPU (which honours a store into code it is about to
// run), written out as a model in the test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { EBX, ECX, EDI, ESI, ESP } from "../src/cpu/registers.ts";
import { STOP_BUDGET, STOP_DEBUG, STOP_EXCEPTION, STOP_HALT } from "../src/cpu/stop.ts";
import { DEBUGGER, setDebuggerTraps } from "../src/cpu/debug.ts";
import { CR0_PG } from "../src/cpu/paging.ts";
import { saveState } from "../src/cpu/state.ts";
import { writeCr0 } from "../src/cpu/system.ts";
import { REWRITE_LIMIT, translationSettings, type TranslationMode } from "../src/cpu/translator.ts";

const modes: TranslationMode[] = ["off", "on", "forced"];
const CODE = 0x1000, FUNCTION = 0x3000;

/** A flat ring-0 machine with `code` at 0x1000, made with translation `mode`. */
function machine(mode: TranslationMode, code: number[]): CPU {
  const saved = { ...translationSettings };
  translationSettings.mode = mode;
  translationSettings.hotEntry = 16; // "on": these loops of a few hundred iterations get hot
  translationSettings.warmUp = 0; // ... and are translated from the start
  const cpu = new CPU(new PhysicalMemory(0x800000));
  Object.assign(translationSettings, saved);
  cpu.memory.ram.set(code, CODE);
  cpu.eip = CODE;
  cpu.regs[ESP] = 0x80000;
  return cpu;
}

/** ebx after 300 iterations of "every 64th, patch the added immediate to ecx; ebx += immediate". */
function patchedSum(every: number): number {
  let immediate = 0x11, sum = 0;
  for (let ecx = 300; ecx > 0; ecx--) {
    if ((ecx & every) === 0) immediate = ecx;
    sum += immediate;
  }
  return sum;
}

// mov ecx, 300; xor ebx, ebx
// loop: test ecx, 63; jnz go; mov [patch+2], ecx
// go: patch: add ebx, 0x11 (imm32); dec ecx; jnz loop; hlt      (nasm, checked with ndisasm)
const sameBlock = [0xb9, 0x2c, 0x01, 0x00, 0x00, 0x31, 0xdb, 0xf7, 0xc1, 0x3f, 0x00, 0x00, 0x00, 0x75, 0x06, 0x89,
  0x0d, 0x17, 0x10, 0x00, 0x00, 0x81, 0xc3, 0x11, 0x00, 0x00, 0x00, 0x49, 0x75, 0xe9, 0xf4];
// as above, but the patched add is two jumps later: jmp mid; mid: nop; jmp patch
const laterBlock = [0xb9, 0x2c, 0x01, 0x00, 0x00, 0x31, 0xdb, 0xf7, 0xc1, 0x3f, 0x00, 0x00, 0x00, 0x75, 0x06, 0x89,
  0x0d, 0x1c, 0x10, 0x00, 0x00, 0xeb, 0x00, 0x90, 0xeb, 0x00, 0x81, 0xc3, 0x11, 0x00, 0x00, 0x00, 0x49, 0x75, 0xe4,
  0xf4];
// mov ecx, 300; xor ebx, ebx; loop: test ecx, 63; jnz call; mov [edi+2], ecx; call: call 0x3000; dec ecx; jnz loop; hlt
const otherPage = [0xb9, 0x2c, 0x01, 0x00, 0x00, 0x31, 0xdb, 0xf7, 0xc1, 0x3f, 0x00, 0x00, 0x00, 0x75, 0x03, 0x89,
  0x4f, 0x02, 0xe8, 0xe9, 0x1f, 0x00, 0x00, 0x49, 0x75, 0xed, 0xf4];
// at 0x3000: add ebx, 0x11 (imm32); ret
const addFunction = [0x81, 0xc3, 0x11, 0x00, 0x00, 0x00, 0xc3];

function runToHalt(cpu: CPU): void {
  assert.equal(cpu.run(1_000_000), STOP_HALT);
}

for (const mode of modes) {
  test(`${mode}: a store into the block being run changes the very next instruction`, () => {
    const cpu = machine(mode, sameBlock);
    runToHalt(cpu);
    assert.equal(cpu.regs[EBX], patchedSum(63));
    if (mode !== "off") assert.ok(cpu.translator!.invalidations >= 4, "the translation was thrown away by each store");
  });

  test(`${mode}: a store into a later block of the same region is seen when that block runs`, () => {
    const cpu = machine(mode, laterBlock);
    runToHalt(cpu);
    assert.equal(cpu.regs[EBX], patchedSum(63));
  });

  test(`${mode}: a store into another page's translated code is seen at its next call`, () => {
    const cpu = machine(mode, otherPage);
    cpu.memory.ram.set(addFunction, FUNCTION);
    cpu.regs[EDI] = FUNCTION;
    runToHalt(cpu);
    assert.equal(cpu.regs[EBX], patchedSum(63));
    if (mode !== "off") assert.ok(cpu.translator!.translations > 1 && cpu.translator!.invalidations >= 4);
  });

  test(`${mode}: a store through an alias mapping of the code's physical page is seen`, () => {
    const cpu = machine(mode, otherPage);
    cpu.memory.ram.set(addFunction, FUNCTION);
    const view = new DataView(cpu.memory.ram.buffer);
    const directory = 0x10000, identity = 0x11000, alias = 0x12000;
    for (let page = 0; page < 1024; page++) view.setUint32(identity + page * 4, (page << 12) | 3, true);
    view.setUint32(directory, identity | 3, true);
    view.setUint32(directory + 4, alias | 3, true);
    view.setUint32(alias, FUNCTION | 3, true); // linear 0x400000 is the function's page too
    cpu.cr3 = directory;
    writeCr0(cpu, cpu.cr0 | CR0_PG);
    cpu.regs[EDI] = 0x400000;
    runToHalt(cpu);
    assert.equal(cpu.regs[EBX], patchedSum(63));
  });

  test(`${mode}: the Host's DMA into translated code is seen (Guest.wroteTo's forgetCode)`, () => {
    const cpu = machine(mode, otherPage);
    cpu.memory.ram.set(addFunction, FUNCTION);
    cpu.regs[EDI] = 0x5000; // the program's own stores go to data
    assert.equal(cpu.run(1000), STOP_BUDGET);
    const before = cpu.regs[EBX];
    cpu.memory.ram.set([0x00, 0x01, 0x00, 0x00], FUNCTION + 2); // add ebx, 0x100 from now on
    cpu.forgetCode(FUNCTION >>> 12);
    runToHalt(cpu);
    assert.equal(cpu.regs[ECX], 0);
    // 1000 instructions: 2 before the loop, then 7 per iteration (8 for the one that stores
    // at ecx = 256): 141 iterations make 990, and the 142nd reaches its add at 994.
    assert.equal(before, 142 * 0x11);
    assert.equal(cpu.regs[EBX], 142 * 0x11 + (300 - 142) * 0x100);
  });

  test(`${mode}: a page whose code is written on every iteration is left to the interpreter`, () => {
    const code = [...sameBlock];
    code[9] = 0; // test ecx, 0: store on every iteration
    const cpu = machine(mode, code);
    runToHalt(cpu);
    assert.equal(cpu.regs[EBX], (300 * 301) / 2);
    // Forced, the page is translated again after each store until the limit; once hot, a
    // store every iteration never lets it become hot at all.
    if (mode === "forced") assert.equal(cpu.translator!.rewrites[CODE >>> 12], REWRITE_LIMIT);
    if (mode !== "off") assert.equal(cpu.translator!.regionsOf(CODE >>> 12), 0, "no region is left for the page");
  });
}

test("over the memory bound every translation is thrown away, and the program runs on unchanged", () => {
  const cpu = machine("forced", otherPage);
  cpu.memory.ram.set(addFunction, FUNCTION);
  cpu.regs[EDI] = FUNCTION;
  cpu.translator!.maxRegions = 1;
  runToHalt(cpu);
  assert.equal(cpu.regs[EBX], patchedSum(63));
  assert.ok(cpu.translator!.flushes > 10, `${cpu.translator!.flushes} flushes`);
  assert.ok(cpu.translator!.regionCount <= 2);
});

// add eax, [esi]; add esi, 0x1000; inc edx; jmp loop, over mapped pages until one that is not
const walkPages = [0x03, 0x06, 0x81, 0xc6, 0x00, 0x10, 0x00, 0x00, 0x42, 0xeb, 0xf5];

test("a page fault in the middle of a translated loop leaves the state the interpreter leaves", () => {
  const states = modes.map((mode) => {
    const cpu = machine(mode, walkPages);
    const view = new DataView(cpu.memory.ram.buffer);
    const directory = 0x10000, table = 0x11000;
    for (let page = 0; page < 0x140; page++) view.setUint32(table + page * 4, (page << 12) | 3, true);
    for (let k = 0; k < 0x100000; k += 4) view.setUint32(0x100000 + k, k * 2654435761, true);
    view.setUint32(directory, table | 3, true);
    cpu.cr3 = directory;
    writeCr0(cpu, cpu.cr0 | CR0_PG);
    cpu.regs[ESI] = 0x100000;
    assert.equal(cpu.run(1_000_000), STOP_EXCEPTION);
    assert.equal(cpu.exceptionVector, 14);
    assert.equal(cpu.cr2, 0x140000);
    assert.equal(cpu.eip, CODE, "eip is the faulting add");
    if (mode !== "off") assert.ok(cpu.translator!.translations > 0);
    return { state: saveState(cpu), instructions: cpu.instructions };
  });
  assert.deepEqual(states[1], states[0]);
  assert.deepEqual(states[2], states[0]);
});

test("a budget of k instructions runs exactly k, translated or not", () => {
  for (let k = 1; k <= 40; k++) {
    const states = modes.map((mode) => {
      const cpu = machine(mode, sameBlock);
      assert.equal(cpu.run(k), STOP_BUDGET);
      return { state: saveState(cpu), instructions: cpu.instructions };
    });
    assert.deepEqual(states[2], states[0], `after ${k} instructions`);
  }
  const slices = modes.map((mode) => {
    const cpu = machine(mode, laterBlock);
    let runs = 1;
    while (cpu.run(7) === STOP_BUDGET) runs++;
    return { runs, state: saveState(cpu), instructions: cpu.instructions };
  });
  assert.deepEqual(slices[1], slices[0]);
  assert.deepEqual(slices[2], slices[0]);
});

// mov ecx, 300; xor ebx, ebx; loop: mov eax, [edi]; push eax; pop eax; test ecx, 1; jz skip; call 0x3000;
// skip: dec ecx; jnz loop; hlt (ndisasm). The load and the push put the function's page and the stack
// into the TLB, and an iteration without the call lets the loop's region be entered before the next
// call, so that translated code could chain straight into the function.
const readAndCall = [0xb9, 0x2c, 0x01, 0x00, 0x00, 0x31, 0xdb, 0x8b, 0x07, 0x50, 0x58, 0xf7, 0xc1, 0x01, 0x00, 0x00, 0x00,
  0x74, 0x05, 0xe8, 0xe8, 0x1f, 0x00, 0x00, 0x49, 0x75, 0xec, 0xf4];

for (const physical of [false, true]) {
  test(`a debugger breakpoint (${physical ? "physical" : "linear"} address) on a page that translated code chains into stops there, as in the interpreter`, () => {
    const states = modes.map((mode) => {
      const cpu = machine(mode, readAndCall);
      cpu.memory.ram.set(addFunction, FUNCTION);
      cpu.regs[EDI] = FUNCTION;
      // Long enough for the loop and the function to be translated and chained (forced, and once hot).
      assert.equal(cpu.run(1000), STOP_BUDGET);
      cpu.eip = CODE + 7; // the loop, on an iteration that skips the call
      cpu.regs[ECX] = 100;
      setDebuggerTraps(cpu, [{ address: FUNCTION, physical, owner: DEBUGGER }], []);
      assert.equal(cpu.run(1_000_000), STOP_DEBUG);
      assert.equal(cpu.eip, FUNCTION, "stopped before the breakpoint's instruction");
      if (mode !== "off") assert.ok(cpu.translator!.translatedInstructions > 0, "translated code ran");
      return { state: saveState(cpu), instructions: cpu.instructions };
    });
    assert.deepEqual(states[1], states[0]);
    assert.deepEqual(states[2], states[0]);
  });
}

test("an instruction hook (the tracer) sees every instruction, translated before or not", () => {
  const states = modes.map((mode) => {
    const cpu = machine(mode, sameBlock);
    assert.equal(cpu.run(500), STOP_BUDGET); // translated by now, forced and once hot
    const seen: number[] = [];
    cpu.setInstructionHook((c) => seen.push(c.eip));
    assert.equal(cpu.run(100), STOP_BUDGET);
    assert.equal(seen.length, 100, "the hook ran before each of the 100 instructions");
    cpu.setInstructionHook(undefined);
    return { seen, state: saveState(cpu), instructions: cpu.instructions };
  });
  assert.deepEqual(states[1], states[0]);
  assert.deepEqual(states[2], states[0]);
});
