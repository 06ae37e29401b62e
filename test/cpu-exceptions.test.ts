// Exceptions and the instructions a user process cannot observe exactly
// (int n, into, bound, ud2, cpuid, rdtsc), checked against what the Intel
// SDM says, one rule per test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { STOP_BUDGET, STOP_EXCEPTION, STOP_HALT, STOP_INTERRUPT } from "../src/cpu/stop.ts";
import { EAX, EBX, ECX, EDX, ESP, OF } from "../src/cpu/registers.ts";

const CODE = 0x1000;

/** A CPU with `code` at 0x1000, esp at 0x8000, in ring `cpl`. */
function machine(code: number[], cpl = 3): CPU {
  const cpu = new CPU(new PhysicalMemory(0x10000));
  cpu.memory.ram.set(code, CODE);
  cpu.eip = CODE;
  cpu.regs[ESP] = 0x8000;
  cpu.setPrivilege(cpl);
  return cpu;
}

function snapshot(cpu: CPU) {
  return { regs: [...cpu.regs], eflags: cpu.eflags() };
}

test("#DE: div by zero faults at the div, with every register and flag unchanged", () => {
  const cpu = machine([0xb8, 1, 0, 0, 0, 0x31, 0xdb, 0xf7, 0xf3]); // mov eax,1; xor ebx,ebx; div ebx
  assert.equal(cpu.run(2), STOP_BUDGET);
  const before = snapshot(cpu);
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, 0);
  assert.equal(cpu.exceptionErrorCode, -1);
  assert.equal(cpu.eip, CODE + 7);
  assert.deepEqual(snapshot(cpu), before);
});

test("#DE: idiv whose quotient does not fit (0x80000000 / -1) faults", () => {
  const cpu = machine([0xf7, 0xfb]); // idiv ebx
  cpu.regs[EAX] = 0x80000000 | 0;
  cpu.regs[EDX] = -1;
  cpu.regs[EBX] = -1;
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, 0);
  assert.equal(cpu.eip, CODE);
});

test("#UD: ud2 faults at itself", () => {
  const cpu = machine([0x0f, 0x0b]);
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, 6);
  assert.equal(cpu.eip, CODE);
});

test("#UD: lea with a register operand, and an opcode no table defines", () => {
  for (const code of [[0x8d, 0xc0], [0x0f, 0xff]]) {
    const cpu = machine(code);
    assert.equal(cpu.run(1), STOP_EXCEPTION);
    assert.equal(cpu.exceptionVector, 6, code.join(","));
  }
});

test("#UD: lock on an instruction that cannot be locked, or with a register destination", () => {
  for (const code of [[0xf0, 0x90], [0xf0, 0x8b, 0x03], [0xf0, 0x01, 0xc0]]) {
    const cpu = machine(code);
    assert.equal(cpu.run(1), STOP_EXCEPTION, code.join(","));
    assert.equal(cpu.exceptionVector, 6);
  }
  const locked = machine([0xf0, 0x01, 0x03]); // lock add [ebx], eax
  locked.regs[EBX] = 0x4000;
  assert.equal(locked.run(1), STOP_BUDGET);
});

test("#GP(0): an instruction longer than 15 bytes", () => {
  const cpu = machine([...new Array(15).fill(0x66), 0x90]);
  assert.equal(cpu.run(1), STOP_EXCEPTION);
  assert.equal(cpu.exceptionVector, 13);
  assert.equal(cpu.exceptionErrorCode, 0);
  assert.equal(cpu.eip, CODE);
  const fourteen = machine([...new Array(14).fill(0x66), 0x90]);
  assert.equal(fourteen.run(1), STOP_BUDGET, "15 bytes is allowed");
  assert.equal(fourteen.eip, CODE + 15);
});

test("#GP(0): hlt, cli and sti in ring 3 with IOPL 0; hlt in ring 0 halts", () => {
  for (const opcode of [0xf4, 0xfa, 0xfb]) {
    const cpu = machine([opcode]);
    assert.equal(cpu.run(1), STOP_EXCEPTION);
    assert.equal(cpu.exceptionVector, 13);
    assert.equal(cpu.exceptionErrorCode, 0);
    assert.equal(cpu.eip, CODE);
  }
  const ring0 = machine([0xf4], 0);
  assert.equal(ring0.run(5), STOP_HALT);
  assert.equal(ring0.eip, CODE + 1);
});

test("int n is a trap: it stops with eip after the instruction", () => {
  const cpu = machine([0xcd, 0x80]);
  assert.equal(cpu.run(10), STOP_INTERRUPT);
  assert.equal(cpu.exceptionVector, 0x80);
  assert.equal(cpu.eip, CODE + 2);
  const breakpoint = machine([0xcc]);
  assert.equal(breakpoint.run(1), STOP_INTERRUPT);
  assert.equal(breakpoint.exceptionVector, 3);
  assert.equal(breakpoint.eip, CODE + 1);
});

test("into raises #OF after itself only when OF is set", () => {
  const clear = machine([0xce, 0x90]);
  assert.equal(clear.run(2), STOP_BUDGET);
  const set = machine([0xce]);
  set.setEflags(OF, OF);
  assert.equal(set.run(1), STOP_INTERRUPT);
  assert.equal(set.exceptionVector, 4);
  assert.equal(set.eip, CODE + 1);
});

test("bound: #BR is a fault at the bound when the index is outside [low, high], signed", () => {
  const bounds = (cpu: CPU, low: number, high: number) => {
    const view = new DataView(cpu.memory.ram.buffer);
    view.setInt32(0x4000, low, true);
    view.setInt32(0x4004, high, true);
  };
  for (const [index, low, high, inside] of [[5, 0, 10, true], [10, 0, 10, true], [11, 0, 10, false], [-1, 0, 10, false], [-5, -10, -1, true]] as const) {
    const cpu = machine([0x62, 0x05, 0x00, 0x40, 0x00, 0x00]); // bound eax, [0x4000]
    bounds(cpu, low, high);
    cpu.regs[EAX] = index;
    const stop = cpu.run(1);
    if (inside) assert.equal(stop, STOP_BUDGET, `${index} in [${low}, ${high}]`);
    else {
      assert.equal(stop, STOP_EXCEPTION, `${index} outside [${low}, ${high}]`);
      assert.equal(cpu.exceptionVector, 5);
      assert.equal(cpu.eip, CODE);
    }
  }
  const register = machine([0x62, 0xc0]);
  assert.equal(register.run(1), STOP_EXCEPTION);
  assert.equal(register.exceptionVector, 6, "bound with a register operand is #UD");
});

test("cpuid leaf 0 says GenuineIntel with maximum leaf 1; leaf 1 has the signature and features", () => {
  const cpu = machine([0x0f, 0xa2, 0x0f, 0xa2, 0x0f, 0xa2]);
  cpu.regs[EAX] = 0;
  cpu.run(1);
  const text = [cpu.regs[EBX], cpu.regs[EDX], cpu.regs[ECX]]
    .map((word) => String.fromCharCode(word & 0xff, (word >> 8) & 0xff, (word >> 16) & 0xff, (word >>> 24) & 0xff)).join("");
  assert.equal(text, "GenuineIntel");
  assert.equal(cpu.regs[EAX], 1);
  cpu.regs[EAX] = 1;
  cpu.run(1);
  assert.equal(cpu.regs[EAX], 0x619, "family 6 model 1 stepping 9");
  const features = cpu.regs[EDX];
  assert.ok(features & (1 << 4), "TSC");
  assert.ok(features & (1 << 5), "MSR: rdmsr and wrmsr are here");
  assert.ok(features & (1 << 8), "CX8");
  assert.ok(features & (1 << 11), "SEP: sysenter and sysexit are here");
  assert.ok(features & (1 << 15), "CMOV");
  assert.equal(features & ((1 << 23) | (1 << 24) | (1 << 25)), 0, "no MMX, FXSR or SSE");
  cpu.regs[EAX] = 0x80000000 | 0;
  cpu.run(1);
  assert.equal(cpu.regs[EAX], 0x619, "a leaf above the maximum answers as the highest basic leaf");
});

test("rdtsc reads the virtual clock: one tick per instruction retired", () => {
  const cpu = machine([0x90, 0x90, 0x90, 0x0f, 0x31]);
  cpu.run(4);
  assert.equal(cpu.regs[EAX], 3);
  assert.equal(cpu.regs[EDX], 0);
  cpu.timestamp = () => 0x123456789abcdefn;
  cpu.eip = CODE + 3;
  cpu.run(1);
  assert.equal(cpu.regs[EAX] >>> 0, 0x89abcdef);
  assert.equal(cpu.regs[EDX], 0x1234567);
});

test("popf in ring 3 with IOPL 0 leaves IF and IOPL unchanged, silently", () => {
  const cpu = machine([0x9d]); // popf
  cpu.memory.ram.set([0xd7, 0x30, 0, 0], 0x8000); // CF PF AF ZF SF, IOPL 3, IF clear
  const before = cpu.eflags();
  assert.equal(cpu.run(1), STOP_BUDGET);
  const after = cpu.eflags();
  assert.equal(after & 0x200, before & 0x200, "IF unchanged");
  assert.equal(after & 0x3000, 0, "IOPL unchanged");
  assert.equal(after & 0xd5, 0xd5, "arithmetic flags loaded");
});

test("an instruction that crosses a page is re-decoded when its second page is written", () => {
  // mov eax, imm32 at 0x1ffd: the opcode and one byte on the first page, the rest on the next.
  const cpu = new CPU(new PhysicalMemory(0x10000));
  cpu.memory.ram.set([0xb8, 0x11, 0x22, 0x33, 0x44, 0xf4], 0x1ffd);
  cpu.setPrivilege(0);
  for (const expected of [0x44332211, 0x44332211]) {
    cpu.eip = 0x1ffd;
    cpu.run(1);
    assert.equal(cpu.regs[EAX], expected, "decoded once, then from the cache");
  }
  cpu.write8(0x2001, 0x55); // the top byte of the immediate, on the second page
  cpu.eip = 0x1ffd;
  cpu.run(1);
  assert.equal(cpu.regs[EAX], 0x55332211, "the write to the second page is seen");
});
