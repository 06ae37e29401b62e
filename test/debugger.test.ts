// The debugger core (book/debugger.md) on the book's Guest: every command
// stops where its definition says, the stops are invisible to the Guest
// (the trace, with its instruction counts, is the same as a run that never
// stopped), and the views agree with the spec and with the CPU.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { readElfSymbols } from "../src/debug/symbols.ts";
import { disassemble } from "../src/cpu/disassemble.ts";
import { EAX, ECX, EDI, EDX, ESP } from "../src/cpu/registers.ts";
import { LGUEST_TRAP_ENTRY, LHCALL_LGUEST_INIT, RESERVE_MEM } from "../src/host/constants.ts";
import {
  descriptorTable, dmaKeys, guestPageWalk, hypercallRing, interrupts, lguestData, registers, segments, shadowPageWalk,
  taskState, timer,
} from "../src/debug/views.ts";
import { formatEvent } from "../src/trace/print.ts";
import { debugSession, symbol, vmlinux } from "./helpers/debug-session.ts";

const PAGE_OFFSET = 0xc0000000;
const input = "echo hi\nhalt\n";

/** The whole run's trace with no debugger commands at all: the reference for "invisible". */
const undisturbed = (() => {
  const session = debugSession({ input });
  session.run();
  assert.equal(session.dead, "CRASH: Power down");
  return session.trace;
})();

test("the symbol table is the one readelf prints (name, address, size of every function and object)", () => {
  const readelf = spawnSync("readelf", ["-sW", join(import.meta.dirname, "..", "images", "vmlinux")], { encoding: "utf8" });
  assert.equal(readelf.status, 0, "readelf (binutils) runs");
  const expected = readelf.stdout.split("\n").flatMap((line) => {
    const f = line.trim().split(/\s+/);
    return f.length === 8 && (f[3] === "FUNC" || f[3] === "OBJECT") ? [`${f[7]} ${f[1]} ${f[2]}`] : [];
  }).sort();
  const ours = readElfSymbols(vmlinux).symbols.filter((s) => s.kind !== "label")
    .map((s) => `${s.name} ${s.address.toString(16).padStart(8, "0")} ${s.size}`).sort();
  assert.deepEqual(ours, expected);
  assert.equal(readElfSymbols(new Uint8Array([1, 2, 3])).symbols.length, 0, "not ELF: no symbols, no exception");
  assert.equal(readElfSymbols(vmlinux.slice(0, 0x2000)).symbols.length, 0, "truncated: no symbols, no exception");
});

test("a breakpoint on a symbol stops before its first instruction, and costs the Guest nothing", () => {
  const s = debugSession({ input });
  const target = s.debug.resolve("lguest_init");
  assert.ok(!("error" in target));
  const breakpoint = s.debug.addBreakpoint(target);
  const stop = s.run();
  assert.equal(stop?.reason.kind, "breakpoint");
  assert.equal(s.guest.cpu.eip >>> 0, symbol("lguest_init"));
  assert.equal(breakpoint.hits, 1);
  s.debug.remove(breakpoint.id);
  s.debug.continue();
  s.run();
  assert.deepEqual(s.trace, undisturbed);
});

test("run until LGUEST_INIT stops after it: eax = 1, edx = lguest_data's physical address (spec 3.3)", () => {
  const s = debugSession({ input });
  assert.equal(s.debug.runUntil({ kind: "hypercall", call: "LGUEST_INIT" }), undefined);
  const stop = s.run();
  assert.equal(stop?.reason.kind, "event");
  assert.equal(s.guest.cpu.regs[EAX], LHCALL_LGUEST_INIT);
  assert.equal(s.guest.cpu.regs[EDX] >>> 0, symbol("lguest_data") - PAGE_OFFSET);
  assert.match(s.trace.at(-1)!, /hcall LGUEST_INIT|pagetable flush-all/);
  assert.equal(lguestData(s.guest)?.reserveMem, RESERVE_MEM, "the Host has filled in lguest_data (spec 4)");
  assert.equal(lguestData(s.guest)?.guestId, 0);
});

test("step runs one instruction: eip moves past it by its disassembled length, the count by one", () => {
  const s = debugSession({ input });
  s.debug.addBreakpoint({ address: symbol("lguest_init") });
  s.run();
  const cpu = s.guest.cpu;
  for (let k = 0; k < 5; k++) {
    const before = { eip: cpu.eip >>> 0, count: cpu.instructions };
    const bytes = s.debug.readMemory(before.eip, 15);
    const length = disassemble(bytes, 0, before.eip).length;
    s.debug.step();
    const stop = s.run();
    assert.equal(stop?.reason.kind, "step");
    assert.equal(cpu.instructions, before.count + 1);
    const text = disassemble(bytes, 0, before.eip).text;
    if (!/^(call|jmp|j|ret|int)/.test(text)) assert.equal(cpu.eip >>> 0, before.eip + length, text);
  }
});

test("next over a call stops at the instruction after it, on the same stack; finish stops at the return address", () => {
  const s = debugSession({ input });
  s.debug.addBreakpoint({ address: symbol("echo") });
  s.run();
  const cpu = s.guest.cpu;
  const entry = { esp: cpu.regs[ESP] >>> 0, returnTo: new DataView(s.debug.readMemory(cpu.regs[ESP] >>> 0, 4).buffer).getUint32(0, true) };
  while (!disassemble(s.debug.readMemory(cpu.eip >>> 0, 15), 0, cpu.eip >>> 0).text.startsWith("call")) {
    s.debug.step();
    s.run();
  }
  const call = { eip: cpu.eip >>> 0, esp: cpu.regs[ESP] >>> 0, length: disassemble(s.debug.readMemory(cpu.eip >>> 0, 15), 0, 0).length };
  s.debug.next();
  assert.equal(s.run()?.reason.kind, "step");
  assert.equal(cpu.eip >>> 0, call.eip + call.length);
  assert.equal(cpu.regs[ESP] >>> 0, call.esp);
  s.debug.finish();
  assert.equal(s.run()?.reason.kind, "step");
  assert.equal(cpu.eip >>> 0, entry.returnTo, "back where echo's caller's call returns to");
  assert.equal(cpu.regs[ESP] >>> 0, entry.esp + 4, "with the return address popped");
  assert.equal(s.debug.symbols.locate(cpu.eip)?.symbol.name, "run_line");
  s.debug.continue();
  s.run();
  assert.deepEqual(s.trace, undisturbed);
});

test("run to instruction N stops with exactly N instructions retired, after the events stamped N", () => {
  const line = undisturbed.find((l) => l.includes("hcall SEND_DMA"))!;
  const n = Number(/@(\d+):/.exec(line)![1]);
  const s = debugSession({ input });
  assert.equal(s.debug.runToInstruction(n), undefined);
  const stop = s.run();
  assert.equal(stop?.reason.kind, "instruction");
  assert.equal(s.guest.cpu.instructions, n);
  assert.ok(s.trace.includes(line), "the hypercall stamped N has happened");
  assert.ok(s.trace.every((l) => Number(/@(\d+):/.exec(l)![1]) <= n));
  assert.match(s.debug.runToInstruction(n) ?? "", /not in the future/);
});

test("pausing and resuming anywhere, any number of times, leaves the Guest's run exactly as it was", () => {
  const s = debugSession({ input });
  const w = s.debug.addWatchpoint({ address: symbol("typed_head"), length: 4, access: "access" });
  for (let k = 0; k < 3; k++) {
    s.debug.continue();
    assert.equal(s.run()?.reason.kind, "watchpoint");
  }
  s.debug.remove(w.id);
  const counts = [1, 3, 1000, 20_836, 20_838, 199_999, 200_001, 200_003, 500_000, 725_754, 729_000];
  for (const n of counts.filter((count) => count > s.guest.cpu.instructions)) {
    assert.equal(s.debug.runToInstruction(n), undefined);
    assert.equal(s.run()?.reason.kind, "instruction");
    s.debug.step();
    s.run();
  }
  s.debug.continue();
  s.run();
  assert.equal(s.dead, "CRASH: Power down");
  assert.deepEqual(s.trace, undisturbed);
});

test("a write watchpoint stops after the instruction that wrote, with the new value in memory", () => {
  const s = debugSession({ input });
  const typedHead = symbol("typed_head");
  s.debug.addWatchpoint({ address: typedHead, length: 4, access: "write" });
  const cpu = s.guest.cpu;
  let stop = s.run();
  assert.ok(stop?.reason.kind === "watchpoint");
  assert.equal(s.debug.symbols.locate(cpu.eip)?.symbol.name, "lguest_start", "head.S clears .bss first");
  // The rep stosl either finished its chunk (eip just after it) or faulted
  // on a later page of the same chunk (eip at it, to be restarted, with
  // edi already past the word it wrote: book/cpu-debug.md).
  const at = [...s.debug.readMemory(cpu.eip, 2)], before = [...s.debug.readMemory(cpu.eip - 2, 2)];
  if (at[0] === 0xf3 && at[1] === 0xab) {
    assert.ok(cpu.regs[ECX] > 0, "iterations remain");
    assert.ok(cpu.regs[EDI] >>> 0 >= typedHead + 4, "the word is written");
  } else {
    assert.deepEqual(before, [0xf3, 0xab], "just after its rep stos, which wrote the word");
  }
  s.debug.continue();
  stop = s.run();
  assert.ok(stop?.reason.kind === "watchpoint");
  assert.equal(stop.reason.write, true);
  assert.equal(stop.reason.address, typedHead);
  assert.deepEqual([...s.debug.readMemory(typedHead, 4)], [1, 0, 0, 0], "the first typed byte is in");
  assert.equal(s.debug.symbols.locate(cpu.eip)?.symbol.name, "console_interrupt");
});

test("run until the next event of each kind stops just after that event", () => {
  const s = debugSession({ input });
  const kinds = [
    { condition: { kind: "trap" as const, vector: 14 }, line: /shadow fault|trap 14/ },
    { condition: { kind: "hypercall" as const, call: "SET_CLOCKEVENT" }, line: /hcall SET_CLOCKEVENT/ },
    { condition: { kind: "dma" as const, op: "bind" as const }, line: /dma bind key 0x0/ },
    { condition: { kind: "dma" as const, op: "send" as const, key: 0 }, line: /dma send key 0x0/ },
    { condition: { kind: "death" as const }, line: /died: CRASH: Power down/ },
  ];
  for (const { condition, line } of kinds) {
    assert.equal(s.debug.runUntil(condition), undefined);
    const stop = s.run();
    assert.ok(stop !== undefined);
    const stamped = s.trace.filter((l) => Number(/@(\d+):/.exec(l)![1]) === stop.instructions);
    if (condition.kind === "death") {
      assert.equal(stop.reason.kind, "exited");
    } else {
      assert.equal(stop.reason.kind, "event", JSON.stringify(condition));
      assert.ok(stamped.some((l) => line.test(l)), `${JSON.stringify(condition)}: ${stamped.join(" | ")}`);
    }
  }
  assert.match(s.debug.runUntil({ kind: "hypercall", call: "NO_SUCH_CALL" }) ?? "", /no hypercall/);
  const irq = debugSession({ input });
  irq.debug.runUntil({ kind: "interrupt", irq: 1 });
  const stop = irq.run()!;
  assert.equal(stop.reason.kind, "event");
  assert.ok(irq.trace.some((l) => l.includes(`@${stop.instructions}: irq 1 at`)));
  assert.equal(irq.debug.symbols.locate(irq.guest.cpu.eip)?.symbol.name, "stub_33", "about to run the Guest's stub for vector 33 (irq 1)");
});

test("views: registers and segments as the CPU has them, the Guest's and the shadow walk agree, the Host's state per spec", () => {
  const s = debugSession();
  s.debug.runUntil({ kind: "hypercall", call: "HALT" });
  s.run();
  const cpu = s.guest.cpu;
  const view = registers(cpu);
  assert.equal(view.eip, cpu.eip >>> 0);
  assert.equal(view.cpl, 1, "the Guest kernel runs in ring 1");
  const cs = segments(cpu).find((seg) => seg.name === "cs")!;
  assert.deepEqual([cs.selector, cs.type, cs.dpl], [0x61, "code", 1]);
  const guestWalk = guestPageWalk(s.guest, cpu.eip)!;
  const shadowWalk = shadowPageWalk(s.guest, cpu.eip);
  assert.equal(guestWalk.physical, shadowWalk.physical, "the shadow maps eip where the Guest's tables do");
  assert.equal(guestWalk.physical, (cpu.eip >>> 0) - PAGE_OFFSET);
  const idt = descriptorTable(cpu, "idt");
  assert.deepEqual([idt[LGUEST_TRAP_ENTRY]?.type, idt[LGUEST_TRAP_ENTRY]?.dpl], ["interrupt gate", 1], "the hypercall gate has DPL 1 (spec 3.1)");
  assert.equal(taskState(cpu)?.stacks[1].ss, 0x69, "SET_STACK's ring-1 stack is in the TSS");
  const keys = dmaKeys(s.guest);
  assert.deepEqual(keys.map((k) => [k.key, k.irq, k.shared, k.buffers.length]), [[0, 1, false, 1]], "the console's input buffer");
  assert.deepEqual(keys[0].buffers[0].pieces.map((p) => p.address), [symbol("input") - PAGE_OFFSET]);
  assert.equal(hypercallRing(s.guest)?.slots.length, 64);
  assert.equal(interrupts(s.guest).halted, true);
  assert.ok(timer(s.guest) !== undefined, "the Guest's 100 Hz timer is armed");
});

test("memory reads go through the Guest's own page tables and stop at the first unmapped byte; writes are all or nothing", () => {
  const s = debugSession({ input });
  s.debug.addBreakpoint({ address: symbol("lguest_init") });
  s.run();
  const at = symbol("lguest_init");
  const bytes = s.debug.readMemory(at, 4);
  assert.deepEqual([...bytes], [...vmlinux.subarray(0x2000 + at - 0xc0100000, 0x2000 + at - 0xc0100000 + 4)]);
  assert.equal(s.debug.readMemory(0x1000, 16).length, 0, "user space is not mapped");
  assert.equal(s.debug.writeMemory(0x1000, new Uint8Array([1])), false);
  const physical = s.debug.resolve("p:0x1000");
  assert.deepEqual(physical, { address: 0x1000, physical: true });
  assert.match(JSON.stringify(s.debug.resolve("no_such_symbol")), /no symbol/);
});

test("onEvent hands a front end the trace's events, in the trace's order, with the trace's counts", () => {
  const s = debugSession({ input });
  const lines: string[] = [];
  const stop = s.debug.onEvent((event, instructions) => lines.push(formatEvent(event, instructions)));
  s.debug.runToInstruction(100_000);
  s.run();
  stop();
  s.debug.continue();
  s.run();
  assert.deepEqual(lines, undisturbed.filter((line) => Number(/@(\d+):/.exec(line)![1]) <= 100_000));
  assert.deepEqual(s.trace, undisturbed, "the tracer went on hearing every event");
});
