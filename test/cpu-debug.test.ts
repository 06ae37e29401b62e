// The CPU's debug machinery for the debugger (book/cpu-debug.md): code
// breakpoints stop before the instruction at their address, data watches
// after the instruction that touched their range, stopAtInstruction at an
// exact count; none of them is in the way while nothing is set. (DR0-DR7
// themselves are checked against QEMU by test/kernels/debug.c.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { writeCr0 } from "../src/cpu/system.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { DEBUGGER, requestStop, setDebuggerTraps, WATCH_READ, WATCH_WRITE } from "../src/cpu/debug.ts";
import { STOP_BUDGET, STOP_DEBUG } from "../src/cpu/stop.ts";
import { EAX } from "../src/cpu/registers.ts";
import { imm32, jmpSelf, load, mov, nop, store } from "./helpers/x86.ts";

const CODE = 0x1000, DATA = 0x3000;

function machine(code: number[]): CPU {
  const cpu = new CPU(new PhysicalMemory(0x100000));
  cpu.memory.ram.set(code, CODE);
  cpu.eip = CODE;
  return cpu;
}

/** Four instructions, then a loop: at CODE, +5, +10, +16 (the store), +22. */
const program = [...mov(EAX, 1), ...mov(EAX, 2), ...store(DATA, EAX), ...load(EAX, DATA + 8), ...jmpSelf];

test("a code breakpoint stops before the instruction at its address, with eip there and the instruction not counted", () => {
  const cpu = machine(program);
  setDebuggerTraps(cpu, [{ address: CODE + 5, physical: false, owner: DEBUGGER }], []);
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.eip, CODE + 5);
  assert.equal(cpu.instructions, 1);
  assert.equal(cpu.regs[EAX], 1);
  assert.equal(cpu.debugHit?.kind, "code");
});

test("resuming from a breakpoint runs the instruction there once; the breakpoint stops the next visit", () => {
  const cpu = machine([...mov(EAX, 1), ...nop, 0xeb, 0xf8]); // mov; nop; jmp back to the mov
  setDebuggerTraps(cpu, [{ address: CODE, physical: false, owner: DEBUGGER }], []);
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.instructions, 0);
  cpu.debuggerResumeAt = cpu.instructions;
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.eip, CODE);
  assert.equal(cpu.instructions, 3);
});

test("a breakpoint on a physical address stops at every linear address that maps to it", () => {
  const cpu = machine([]);
  const directory = 0x8000, table = 0x9000;
  cpu.memory.write32(directory, table | 3);
  cpu.memory.write32(directory + 4, table | 3); // 0x400000 and up map the same table
  for (let page = 0; page < 256; page++) cpu.memory.write32(table + 4 * page, (page << 12) | 3);
  cpu.cr3 = directory;
  writeCr0(cpu, cpu.cr0 | 0x80000000);
  cpu.memory.ram.set([...mov(EAX, 7), 0xe9, ...imm32(0x400000 - 10)], CODE); // mov eax, 7; jmp to the same code 4 MiB up
  setDebuggerTraps(cpu, [{ address: CODE, physical: true, owner: DEBUGGER }], []);
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.eip, CODE);
  cpu.debuggerResumeAt = cpu.instructions;
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.eip >>> 0, 0x400000 + CODE);
  assert.equal(cpu.instructions, 2);
});

test("a breakpoint conditional on CPL stops only at that privilege level", () => {
  const cpu = machine(program);
  setDebuggerTraps(cpu, [{ address: CODE + 5, physical: false, owner: DEBUGGER, cpl: 3 }], []);
  assert.equal(cpu.run(10), STOP_BUDGET);
  assert.equal(cpu.eip, CODE + 22);
});

test("a write watch stops after the instruction that wrote, with what it wrote in memory", () => {
  const cpu = machine(program);
  setDebuggerTraps(cpu, [], [{ address: DATA + 2, length: 1, physical: false, access: WATCH_WRITE, owner: DEBUGGER }]);
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.eip, CODE + 16);
  assert.equal(cpu.instructions, 3);
  assert.equal(cpu.memory.read32(DATA), 2);
  const hit = cpu.debugHit;
  assert.ok(hit?.kind === "data");
  assert.deepEqual([hit.linear, hit.size, hit.write], [DATA, 4, true]);
});

test("a read watch sees data reads but not instruction fetches from its page", () => {
  const cpu = machine(program);
  setDebuggerTraps(cpu, [], [{ address: CODE, length: 0x1000, physical: false, access: WATCH_READ, owner: DEBUGGER }]);
  assert.equal(cpu.run(100), STOP_BUDGET);
  setDebuggerTraps(cpu, [], [{ address: DATA + 8, length: 4, physical: false, access: WATCH_READ, owner: DEBUGGER }]);
  cpu.eip = CODE;
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.eip, CODE + 22);
});

test("stopAtInstruction stops the loop at exactly that count, whatever the budget", () => {
  const cpu = machine([0xeb, 0xfe]);
  cpu.stopAtInstruction = 1234;
  assert.equal(cpu.run(1000), STOP_BUDGET);
  assert.equal(cpu.run(1000), STOP_DEBUG);
  assert.equal(cpu.instructions, 1234);
  assert.equal(cpu.run(1000), STOP_DEBUG, "and stays stopped there");
  assert.equal(cpu.instructions, 1234);
});

test("requestStop from inside the loop (a delivery hook) stops after the current instruction", () => {
  const cpu = machine([0xcd, 0x40, ...jmpSelf]); // int $0x40 through an IDT gate to a loop
  cpu.stopOnVector.fill(0);
  cpu.gdtBase = 0x6000;
  cpu.memory.write32(0x6008, 0x0000ffff);
  cpu.memory.write32(0x600c, 0x00cf9a00);
  cpu.idtBase = 0x5000;
  cpu.memory.write32(0x5000 + 0x40 * 8, (0x08 << 16) | 0x2000);
  cpu.memory.write32(0x5000 + 0x40 * 8 + 4, 0x8e00);
  cpu.memory.ram.set(jmpSelf, 0x2000);
  cpu.regs[4] = 0x9000;
  cpu.onDeliver = () => requestStop(cpu);
  assert.equal(cpu.run(100), STOP_DEBUG);
  assert.equal(cpu.eip, 0x2000);
  assert.equal(cpu.instructions, 1);
});

test("with nothing set there is no table, and watched pages get their TLB entries back when the watch goes", () => {
  const cpu = machine(program);
  assert.equal(cpu.debugTraps, undefined);
  setDebuggerTraps(cpu, [], [{ address: DATA, length: 4, physical: false, access: WATCH_WRITE, owner: DEBUGGER }]);
  cpu.write32(DATA + 0x100, 5);
  assert.equal(cpu.tlbWrite[DATA >>> 12], -1, "a watched page gets no write entry");
  setDebuggerTraps(cpu, [], []);
  assert.equal(cpu.debugTraps, undefined);
  cpu.write32(DATA + 0x100, 5);
  assert.notEqual(cpu.tlbWrite[DATA >>> 12], -1);
});

test("the translator must interpret a page with a code breakpoint on it, and only that page", () => {
  const cpu = machine(program);
  assert.equal(cpu.mustInterpret(CODE >>> 12, CODE >>> 12), false);
  setDebuggerTraps(cpu, [{ address: CODE + 5, physical: false, owner: DEBUGGER }], []);
  assert.equal(cpu.mustInterpret(CODE >>> 12, 0x99), true, "by its linear page");
  assert.equal(cpu.mustInterpret(0x99, 0x98), false);
  setDebuggerTraps(cpu, [{ address: 0x5000, physical: true, owner: DEBUGGER }], []);
  assert.equal(cpu.mustInterpret(0x99, 5), true, "by its physical page");
  setDebuggerTraps(cpu, [], [{ address: CODE, length: 4, physical: false, access: WATCH_WRITE, owner: DEBUGGER }]);
  assert.equal(cpu.mustInterpret(CODE >>> 12, CODE >>> 12), false, "a watch leaves regions alone: its page has no TLB entry");
});
