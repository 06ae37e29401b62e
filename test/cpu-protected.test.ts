// Protected-mode rules that QEMU's TCG does not model (data-segment limits
// and rights) or that are easiest to pin down in isolation (TLB flushing,
// frames, double faults, the sti shadow), each checked against the rule
// the Intel SDM states.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CPU } from "../src/cpu/cpu.ts";
import { PhysicalMemory } from "../src/cpu/memory.ts";
import { STOP_BUDGET, STOP_EXCEPTION, STOP_HALT } from "../src/cpu/stop.ts";
import { CS, DS, EAX, EBX, ES, ESP, SS } from "../src/cpu/registers.ts";
import { loadCodeSegment, loadSegment } from "../src/cpu/segments.ts";
import { writeCr0 } from "../src/cpu/system.ts";
import { flushTlb } from "../src/cpu/tlb.ts";
import { loadState, saveState } from "../src/cpu/state.ts";

const GDT = 0x1000, IDT = 0x2000, TSS = 0x3000, CODE = 0x10000, PAGE_DIRECTORY = 0x20000;

/** A descriptor's two words. */
function descriptor(base: number, limit: number, access: number, flags = 0xc): [number, number] {
  const low = ((base & 0xffff) << 16) | (limit & 0xffff);
  const high = (base & 0xff000000) | ((flags & 0xf) << 20) | (limit & 0xf0000) | ((access & 0xff) << 8) | ((base >>> 16) & 0xff);
  return [low | 0, high | 0];
}

const entries: Record<number, [number, number]> = {
  1: descriptor(0, 0xfffff, 0x9b), // 0x08 ring 0 code
  2: descriptor(0, 0xfffff, 0x93), // 0x10 ring 0 data
  3: descriptor(0, 0xfffff, 0xbb), // 0x18 ring 1 code
  4: descriptor(0, 0xfffff, 0xb3), // 0x20 ring 1 data
  5: descriptor(0, 0xfffff, 0xfb), // 0x28 ring 3 code
  6: descriptor(0, 0xfffff, 0xf3), // 0x30 ring 3 data
  7: descriptor(TSS, 0x67, 0x89, 0), // 0x38 TSS
  8: descriptor(0x40000, 0xfff, 0x93, 0x4), // 0x40 data, byte limit 0xfff
  9: descriptor(0, 0xfffff, 0x91), // 0x48 read-only data
  10: descriptor(0, 0xfffff, 0x99), // 0x50 execute-only code
  11: descriptor(0, 0xfffff, 0x9b), // 0x58 readable code
  12: descriptor(0x40000, 0x0fff, 0x97, 0x4), // 0x60 expand-down data, limit 0xfff, B set
  13: descriptor(0x40000, 0x0fff, 0x97, 0x0), // 0x68 expand-down data, B clear (64 KiB)
  14: descriptor(0, 0xfffff, 0x13), // 0x70 data, not present
  15: descriptor(0, 0xfffff, 0x93), // 0x78 ring 0 data (for DPL checks from ring 1)
};

function machine(code: number[], cpl = 0): CPU {
  const cpu = new CPU(new PhysicalMemory(0x100000));
  const view = new DataView(cpu.memory.ram.buffer);
  for (const [index, [low, high]] of Object.entries(entries)) {
    view.setInt32(GDT + Number(index) * 8, low, true);
    view.setInt32(GDT + Number(index) * 8 + 4, high, true);
  }
  cpu.gdtBase = GDT;
  cpu.gdtLimit = 16 * 8 - 1;
  cpu.idtBase = IDT;
  cpu.idtLimit = 256 * 8 - 1;
  view.setUint32(TSS + 4, 0x9000, true); // esp0
  view.setUint32(TSS + 8, 0x10, true); // ss0
  view.setUint32(TSS + 12, 0xa000, true); // esp1
  view.setUint32(TSS + 16, 0x21, true); // ss1
  cpu.trSelector = 0x38;
  cpu.trBase = TSS;
  cpu.trLimit = 0x67;
  cpu.trType = 0xb;
  cpu.memory.ram.set(code, CODE);
  cpu.eip = CODE;
  const [codeSelector, dataSelector] = [[0x08, 0x10], [0x19, 0x21], [0x2b, 0x33], [0x2b, 0x33]][cpl];
  cpu.setPrivilege(cpl);
  for (const segment of [DS, ES, SS]) loadSegment(cpu, segment, dataSelector);
  const [low, high] = entries[[1, 3, 5, 5][cpl]];
  cpu.descriptorLow = low;
  cpu.descriptorHigh = high;
  loadCodeSegment(cpu, codeSelector, GDT + (codeSelector >> 3) * 8, cpl);
  cpu.regs[ESP] = 0x8000;
  cpu.stopOnVector.fill(1);
  return cpu;
}

function gate(cpu: CPU, vector: number, offset: number, type: number, dpl: number, selector = 0x08): void {
  const view = new DataView(cpu.memory.ram.buffer);
  view.setUint32(IDT + vector * 8, ((selector << 16) | (offset & 0xffff)) >>> 0, true);
  view.setUint32(IDT + vector * 8 + 4, ((offset & 0xffff0000) | 0x8000 | (dpl << 13) | (type << 8)) >>> 0, true);
}

function expectFault(cpu: CPU, vector: number, errorCode: number, what: string): void {
  assert.equal(cpu.run(10), STOP_EXCEPTION, what);
  assert.equal(cpu.exceptionVector, vector, what);
  assert.equal(cpu.exceptionErrorCode, errorCode, what);
}

test("a data access beyond the segment limit is #GP(0); through ss it is #SS(0)", () => {
  const inside = machine([0x8e, 0xd8, 0x8b, 0x1d, 0xfc, 0x0f, 0, 0]); // mov ds,ax; mov ebx,[0xffc]
  inside.regs[EAX] = 0x40;
  assert.equal(inside.run(2), STOP_BUDGET);
  const beyond = machine([0x8e, 0xd8, 0x8b, 0x1d, 0xfd, 0x0f, 0, 0]); // mov ebx,[0xffd]: last byte 0x1000
  beyond.regs[EAX] = 0x40;
  beyond.run(1);
  expectFault(beyond, 13, 0, "ds limit");
  assert.equal(beyond.eip, CODE + 2);
  const stack = machine([0x8e, 0xd0, 0xbc, 0x00, 0x20, 0, 0, 0x50]); // mov ss,ax; mov esp,0x2000; push eax
  stack.regs[EAX] = 0x40;
  stack.run(2);
  expectFault(stack, 12, 0, "ss limit");
});

test("writing a read-only data segment, or through a code segment, is #GP(0)", () => {
  const readOnly = machine([0x8e, 0xd8, 0x8b, 0x1d, 0, 0x50, 0, 0, 0x89, 0x1d, 0, 0x50, 0, 0]);
  readOnly.regs[EAX] = 0x48;
  assert.equal(readOnly.run(2), STOP_BUDGET, "reading is fine");
  expectFault(readOnly, 13, 0, "write to read-only data");
  const throughCs = machine([0x2e, 0x89, 0x1d, 0, 0x50, 0, 0]); // mov cs:[0x5000], ebx
  expectFault(throughCs, 13, 0, "write through cs");
});

test("reading an execute-only code segment is #GP(0); a readable one is fine", () => {
  const executeOnly = machine([0x8e, 0xd8, 0x8b, 0x1d, 0, 0x50, 0, 0]);
  executeOnly.regs[EAX] = 0x58;
  assert.equal(executeOnly.run(2), STOP_BUDGET, "readable code may be loaded into ds and read");
  const view = machine([0x8e, 0xd8]);
  view.regs[EAX] = 0x50;
  expectFault(view, 13, 0x50, "an execute-only code segment cannot be loaded into ds");
});

test("expand-down segments allow offsets above the limit, up to 4 GiB or 64 KiB by the B bit", () => {
  const big = machine([0x8e, 0xd8, 0x8b, 0x1d, 0x00, 0x10, 0, 0, 0x8b, 0x1d, 0xfc, 0x0f, 0, 0]);
  big.regs[EAX] = 0x60;
  assert.equal(big.run(2), STOP_BUDGET, "offset 0x1000 is above the limit: valid");
  expectFault(big, 13, 0, "offset 0xffc is at or below the limit: invalid");
  const small = machine([0x8e, 0xd8, 0x8b, 0x1d, 0xfc, 0xff, 0, 0, 0x8b, 0x1d, 0xfd, 0xff, 0, 0]);
  small.regs[EAX] = 0x68;
  assert.equal(small.run(2), STOP_BUDGET, "0xfffc..0xffff is inside a 64 KiB expand-down segment");
  expectFault(small, 13, 0, "0xfffd..0x10000 crosses the 64 KiB upper bound");
});

test("a null ds loads but any access through it is #GP(0)", () => {
  const cpu = machine([0x8e, 0xd8, 0x8b, 0x1d, 0, 0x50, 0, 0]);
  cpu.regs[EAX] = 0;
  assert.equal(cpu.run(1), STOP_BUDGET);
  expectFault(cpu, 13, 0, "access through null ds");
});

test("segment loads: null ss, DPL and RPL rules, not-present segments, and ring 1's RPL-0 loads", () => {
  const cases: [number, number, number, number, number, string][] = [
    // cpl, segment (mov opcode modrm), selector, vector, error
    [0, 0xd0, 0x00, 13, 0, "null into ss"],
    [0, 0xd0, 0x21, 13, 0x20, "ss with RPL != CPL"],
    [0, 0xd0, 0x70, 13, 0x70, "not-present ss is checked for type first: data, writable, present? no: #SS"],
    [0, 0xd8, 0x70, 11, 0x70, "not-present ds: #NP"],
    [1, 0xd8, 0x78, 13, 0x78, "ring 1 loading a DPL 0 data segment"],
    [0, 0xd8, 0x80, 13, 0x80, "beyond the GDT limit"],
  ];
  for (const [cpl, modrm, selector, vector, error, what] of cases) {
    const cpu = machine([0x8e, modrm], cpl);
    cpu.regs[EAX] = selector;
    if (what.startsWith("not-present ss")) {
      expectFault(cpu, 12, 0x70, what);
      continue;
    }
    expectFault(cpu, vector, error, what);
  }
  const ringOne = machine([0x8e, 0xe0], 1); // mov fs, ax
  ringOne.regs[EAX] = 0x20; // RPL 0, DPL 1: allowed at CPL 1, as lguest's guest does with 0x68
  assert.equal(ringOne.run(1), STOP_BUDGET);
  assert.equal(ringOne.segSelector[4], 0x20);
});

/** Identity-maps the first 1 MiB with `flags`, page tables at PAGE_DIRECTORY. */
function page(cpu: CPU, flags: number): DataView {
  const view = new DataView(cpu.memory.ram.buffer);
  view.setUint32(PAGE_DIRECTORY, (PAGE_DIRECTORY + 0x1000) | 7, true);
  for (let i = 0; i < 256; i++) view.setUint32(PAGE_DIRECTORY + 0x1000 + i * 4, (i << 12) | flags, true);
  cpu.cr3 = PAGE_DIRECTORY;
  writeCr0(cpu, cpu.cr0 | 0x80000000);
  return view;
}

test("page faults: error codes for not-present, user, write and WP", () => {
  const notPresent = machine([0x8b, 0x1d, 0, 0x50, 0, 0], 3);
  const view = page(notPresent, 7);
  view.setUint32(PAGE_DIRECTORY + 0x1000 + 5 * 4, 0, true);
  expectFault(notPresent, 14, 4, "user read of a not-present page");
  assert.equal(notPresent.cr2, 0x5000);

  const supervisorPage = machine([0x8b, 0x1d, 0, 0x50, 0, 0], 3);
  page(supervisorPage, 7).setUint32(PAGE_DIRECTORY + 0x1000 + 5 * 4, 0x5000 | 3, true);
  expectFault(supervisorPage, 14, 5, "user read of a supervisor page");

  const readOnly = machine([0x89, 0x1d, 0, 0x50, 0, 0], 3);
  page(readOnly, 7).setUint32(PAGE_DIRECTORY + 0x1000 + 5 * 4, 0x5000 | 5, true);
  expectFault(readOnly, 14, 7, "user write to a read-only page");

  for (const wp of [true, false]) {
    const cpu = machine([0x89, 0x1d, 0, 0x50, 0, 0], 1);
    page(cpu, 7).setUint32(PAGE_DIRECTORY + 0x1000 + 5 * 4, 0x5000 | 1, true);
    if (wp) writeCr0(cpu, cpu.cr0 | 0x10000);
    if (wp) expectFault(cpu, 14, 3, "ring 1 write to a read-only page with WP set");
    else assert.equal(cpu.run(1), STOP_BUDGET, "with WP clear, ring 1 may write it");
  }
});

test("accessed and dirty bits are set in memory by reads and writes", () => {
  const cpu = machine([0x8b, 0x1d, 0, 0x50, 0, 0, 0x89, 0x1d, 0, 0x60, 0, 0]);
  const view = page(cpu, 7);
  assert.equal(cpu.run(2), STOP_BUDGET);
  const pte = (n: number) => view.getUint32(PAGE_DIRECTORY + 0x1000 + n * 4, true);
  assert.equal(pte(5) & 0x60, 0x20, "read: accessed, not dirty");
  assert.equal(pte(6) & 0x60, 0x60, "write: accessed and dirty");
  assert.equal(view.getUint32(PAGE_DIRECTORY, true) & 0x20, 0x20, "directory entry accessed");
});

test("the TLB: a changed PTE is visible after invlpg and after a CR3 write, not before", () => {
  // mov ebx,[0x5000]; (harness changes PTE) mov ebx,[0x5000]; invlpg [0x5000]; mov ebx,[0x5000]
  const cpu = machine([0x8b, 0x1d, 0, 0x50, 0, 0, 0x8b, 0x1d, 0, 0x50, 0, 0, 0x0f, 0x01, 0x3d, 0, 0x50, 0, 0, 0x8b, 0x1d, 0, 0x50, 0, 0]);
  const view = page(cpu, 7);
  view.setUint32(0x5000, 0x11111111, true);
  view.setUint32(0x7000, 0x77777777, true);
  cpu.run(1);
  assert.equal(cpu.regs[EBX], 0x11111111);
  view.setUint32(PAGE_DIRECTORY + 0x1000 + 5 * 4, 0x7000 | 7, true);
  cpu.run(1);
  assert.equal(cpu.regs[EBX], 0x11111111, "the old translation is still cached, as on hardware");
  cpu.run(2);
  assert.equal(cpu.regs[EBX], 0x77777777, "after invlpg the new one is used");
  view.setUint32(PAGE_DIRECTORY + 0x1000 + 5 * 4, 0x5000 | 7, true);
  cpu.cr3 = PAGE_DIRECTORY;
  flushTlb(cpu);
  cpu.eip = CODE;
  cpu.run(1);
  assert.equal(cpu.regs[EBX], 0x11111111, "after a CR3 write the page tables are read again");
});

test("an interrupt from ring 3 switches to the TSS stack and pushes ss, esp, eflags, cs, eip", () => {
  const cpu = machine([0xcd, 0x40], 3);
  cpu.stopOnVector.fill(0);
  gate(cpu, 0x40, 0x11000, 0xe, 3);
  cpu.memory.ram[0x11000] = 0xf4; // hlt
  const flagsBefore = cpu.eflags();
  assert.equal(cpu.run(5), STOP_HALT);
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.segSelector[CS], 0x08);
  assert.equal(cpu.segSelector[SS], 0x10);
  assert.equal(cpu.regs[ESP], 0x9000 - 20);
  const view = new DataView(cpu.memory.ram.buffer);
  assert.deepEqual([0, 4, 8, 12, 16].map((k) => view.getUint32(0x9000 - 20 + k, true)),
    [CODE + 2, 0x2b, flagsBefore, 0x8000, 0x33]);
  assert.equal(cpu.eflags() & 0x200, 0, "an interrupt gate clears IF");
});

test("iret returns to ring 3 and reloads ss:esp", () => {
  const cpu = machine([0xcd, 0x40, 0xf4], 3);
  cpu.stopOnVector.fill(0);
  gate(cpu, 0x40, 0x11000, 0xf, 3);
  cpu.memory.ram[0x11000] = 0xcf; // iret
  cpu.run(3);
  assert.equal(cpu.cpl, 3);
  assert.equal(cpu.eip, CODE + 2);
  assert.equal(cpu.regs[ESP], 0x8000);
  assert.equal(cpu.segSelector[SS], 0x33);
});

test("int n through a gate whose DPL is below CPL is #GP(n*8+2)", () => {
  const cpu = machine([0xcd, 0x40], 3);
  cpu.stopOnVector.fill(0);
  cpu.stopOnVector[13] = 1;
  gate(cpu, 0x40, 0x11000, 0xe, 0);
  expectFault(cpu, 13, 0x40 * 8 + 2, "int to a DPL 0 gate from ring 3");
  assert.equal(cpu.eip, CODE);
});

test("a #GP while delivering a #GP becomes a double fault with error code 0", () => {
  const cpu = machine([0x8e, 0xd8]); // mov ds, ax with a bad selector: #GP
  cpu.regs[EAX] = 0x80;
  cpu.stopOnVector.fill(0);
  cpu.stopOnVector[8] = 1;
  gate(cpu, 13, 0x11000, 0xe, 0, 0x50 | 0x100); // the gate names a selector beyond the GDT: #GP again
  expectFault(cpu, 8, 0, "double fault");
});

test("sti holds off a pending interrupt until after the next instruction", () => {
  const cpu = machine([0xfb, 0x40, 0x40, 0xf4]); // sti; inc eax; inc eax; hlt
  cpu.stopOnVector.fill(0);
  cpu.setEflags(0, 0x200);
  gate(cpu, 0x30, 0x11000, 0xe, 0);
  cpu.memory.ram[0x11000] = 0xf4;
  cpu.regs[EAX] = 0;
  cpu.requestInterrupt(0x30);
  assert.equal(cpu.run(10), STOP_HALT);
  assert.equal(cpu.regs[EAX], 1, "exactly one instruction ran after sti");
  assert.equal(cpu.eip, 0x11001, "then the interrupt was taken");
});

test("the TSS I/O bitmap: at CPL > IOPL, each port of the access needs its bit clear", () => {
  const run = (code: number[]) => {
    const cpu = machine(code, 3);
    const view = new DataView(cpu.memory.ram.buffer);
    view.setUint16(TSS + 102, 0x68, true);
    for (let k = 0; k < 33; k++) cpu.memory.ram[TSS + 0x68 + k] = 0xff;
    cpu.memory.ram[TSS + 0x68 + 0x80 / 8] = 0xfe; // port 0x80 allowed, 0x81-0x87 denied
    cpu.trLimit = 0x68 + 32;
    const ports: number[] = [];
    (cpu as unknown as { io: unknown }).io = { portIn: () => 0, portOut: (port: number) => ports.push(port) };
    return { cpu, ports };
  };
  const allowed = run([0xe6, 0x80]); // out 0x80, al
  assert.equal(allowed.cpu.run(1), STOP_BUDGET);
  assert.deepEqual(allowed.ports, [0x80]);
  const denied = run([0xe6, 0x81]);
  expectFault(denied.cpu, 13, 0, "port 0x81's bit is set");
  const wide = run([0x66, 0xe7, 0x80]); // out 0x80, ax: ports 0x80 and 0x81
  expectFault(wide.cpu, 13, 0, "a word access also needs port 0x81");
  const beyond = run([0xe6, 0xff]);
  beyond.cpu.trLimit = 0x68 + 16;
  expectFault(beyond.cpu, 13, 0, "ports beyond the bitmap's end are denied");
});

test("a read-modify-write to a read-only page faults as a write with the flags untouched", () => {
  const cpu = machine([0x11, 0x1d, 0, 0x50, 0, 0], 3); // adc [0x5000], ebx
  page(cpu, 7).setUint32(PAGE_DIRECTORY + 0x1000 + 5 * 4, 0x5000 | 5, true);
  cpu.setEflags(0x1, 0x8d5); // CF set, others clear
  const before = cpu.eflags();
  expectFault(cpu, 14, 7, "user write to a read-only page");
  assert.equal(cpu.eflags(), before, "flags unchanged, so the restarted adc adds the same carry");
});

test("saveState and loadState carry the whole architectural state to another CPU", () => {
  const cpu = machine([0xcd, 0x40, 0x40], 3);
  cpu.stopOnVector.fill(0);
  gate(cpu, 0x40, 0x11000, 0xe, 3);
  cpu.memory.ram.set([0x40, 0x40, 0xf4], 0x11000); // inc eax; inc eax; hlt
  cpu.run(2);
  const state = saveState(cpu);
  const copy = new CPU(cpu.memory);
  loadState(copy, state);
  copy.stopOnVector.fill(0);
  assert.deepEqual(saveState(copy), state);
  assert.equal(copy.run(10), STOP_HALT);
  assert.equal(cpu.run(10), STOP_HALT);
  assert.deepEqual(saveState(copy), saveState(cpu));
});
