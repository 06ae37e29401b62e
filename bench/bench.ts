// npm run bench: guest instructions per second on the CPU-bound workload
// (bench/workload/, see its README), run on the user-mode runner.
// Prints the median of several runs; the checksum line the workload prints
// must equal bench/workload/expected.txt, or the figure means nothing.
// It runs twice: with paging off, and through identity-mapped page tables,
// to show what the page walk and the TLB cost. A rep string instruction
// counts once per chunk of up to 4096 iterations, as the CPU counts it.
// Then, with paging on, plain runs in turn with runs that have a debugger
// breakpoint set but never hit (book/cpu-debug.md): one on an address the
// workload never reaches, one on a cold path in a page the workload runs
// through all the time (that page's instructions all take the slow fetch).
// Last, the time the book's Guest kernel takes from loading to its prompt.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadUserProgram, runUserProgram } from "../src/cpu/user-program.ts";
import { bootGuest } from "../test/helpers/guest-session.ts";
import { DEBUGGER, setDebuggerTraps } from "../src/cpu/debug.ts";
import type { CPU } from "../src/cpu/cpu.ts";

const folder = join(import.meta.dirname, "workload");
const elf = new Uint8Array(readFileSync(join(folder, "workload.elf")));
const expected = readFileSync(join(folder, "expected.txt"), "utf8");
const runs = Number(process.env.BENCH_RUNS ?? 5);

function runOnce(paging: boolean, prepare?: (cpu: CPU) => void): { seconds: number; instructions: number } {
  const program = loadUserProgram(elf, { paging });
  prepare?.(program.cpu);
  let output = "";
  const started = process.hrtime.bigint();
  const result = runUserProgram(program, (_fd, bytes) => (output += new TextDecoder().decode(bytes)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.exitStatus !== 0 || output !== expected) {
    console.error(`bench: the workload went wrong: ${result.death ?? `exit status ${result.exitStatus}`}`);
    console.error(`  printed:  ${JSON.stringify(output)}`);
    console.error(`  expected: ${JSON.stringify(expected)}`);
    process.exit(1);
  }
  return { seconds, instructions: result.instructions };
}

function measure(paging: boolean): void {
  const results = [];
  for (let run = 1; run <= runs; run++) {
    const result = runOnce(paging);
    results.push(result);
    console.log(`  run ${run}: ${(result.instructions / result.seconds / 1e6).toFixed(1)} MIPS (${result.seconds.toFixed(2)} s)`);
  }
  const median = [...results].sort((a, b) => a.seconds - b.seconds)[Math.floor(results.length / 2)];
  const mips = (median.instructions / median.seconds / 1e6).toFixed(1);
  console.log(`cpu, paging ${paging ? "on" : "off"}: ${mips} MIPS, median of ${runs} runs ` +
    `(${median.seconds.toFixed(2)} s, ${median.instructions} guest instructions, checksum verified)`);
}

/**
 * Boot time: from loading images/vmlinux to the Guest's first prompt, on
 * the real Host with the virtual clock, so the figure is the machine's
 * speed and not the Guest's timer.
 */
function measureBoot(): void {
  const kernel = new Uint8Array(readFileSync(join(import.meta.dirname, "..", "images", "vmlinux")));
  const results = [];
  for (let run = 1; run <= runs; run++) {
    const started = process.hrtime.bigint();
    const session = bootGuest(kernel, [], { memoryBytes: 64 * 1024 * 1024 });
    session.run(() => session.output.endsWith("guest> "));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (!session.output.endsWith("guest> ")) {
      console.error(`bench: the guest did not reach its prompt: ${session.dead ?? "still running"}`);
      process.exit(1);
    }
    results.push({ seconds, instructions: session.cpu.instructions });
    console.log(`  boot ${run}: ${(seconds * 1000).toFixed(0)} ms (${session.cpu.instructions} guest instructions)`);
  }
  const median = [...results].sort((a, b) => a.seconds - b.seconds)[Math.floor(results.length / 2)];
  console.log(`boot to the prompt: ${(median.seconds * 1000).toFixed(0)} ms, median of ${runs} boots of images/vmlinux in 64 MiB`);
}

/** A breakpoint of the debugger's at `address`, which the workload never executes. */
const breakpointAt = (address: number) => (cpu: CPU) =>
  setDebuggerTraps(cpu, [{ address, physical: false, owner: DEBUGGER }], []);

/** Plain runs and runs with a breakpoint set but not hit, in turn, so that the machine's drift hits both alike. */
function measureBreakpoints(): void {
  const variants = [
    { name: "plain", prepare: undefined },
    { name: "a breakpoint set, never reached (0x0badc0de)", prepare: breakpointAt(0x0badc0de) },
    { name: "a breakpoint set on a cold path (vm_run.cold) in a hot page", prepare: breakpointAt(0x080480a0) },
  ];
  const seconds = variants.map(() => [] as number[]);
  let instructions = 0;
  for (let run = 1; run <= runs; run++) {
    variants.forEach((variant, k) => {
      const result = runOnce(true, variant.prepare);
      seconds[k].push(result.seconds);
      instructions = result.instructions;
    });
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  variants.forEach((variant, k) => {
    const ratios = seconds[k].map((s, run) => seconds[0][run] / s);
    const mips = (instructions / median(seconds[k]) / 1e6).toFixed(1);
    console.log(`cpu, paging on, ${variant.name}: ${mips} MIPS` + (k === 0 ? "" : `, ${(median(ratios) * 100).toFixed(0)}% of plain (median of ${runs} paired runs)`));
  });
}

measure(false);
measure(true);
measureBreakpoints();
measureBoot();
