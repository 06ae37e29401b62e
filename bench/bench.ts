// npm run bench: guest instructions per second on the CPU-bound workload
// (bench/workload/, see its README), in one run, three ways, interleaved so
// that the machine's drift hits all three alike:
//   * the interpreter alone (translation off),
//   * the translator (book/cpu-translator.md), as the launcher runs it,
//   * v86 (the npm package) running the same workload bytes behind a
//     multiboot stub (bench/v86.ts); its output must equal ours.
// Every run's checksum line must equal bench/workload/expected.txt, or the
// figure means nothing. A rep string instruction counts once per chunk of
// up to 4096 iterations, as our CPU counts it; v86's MIPS use our count.
// Then the translator's memory; the translator plain, in turn with runs
// that have a debugger breakpoint set but never hit (book/cpu-debug.md):
// one on an address the workload never reaches, one on a cold path in a
// page the workload runs all the time (that page runs interpreted); and the
// time the book's Guest kernel takes from loading to its prompt,
// interpreted and translated.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadUserProgram, runUserProgram } from "../src/cpu/user-program.ts";
import { translationSettings, type TranslationMode } from "../src/cpu/translator.ts";
import { bootGuest } from "../test/helpers/guest-session.ts";
import { runOnV86 } from "./v86.ts";
import { DEBUGGER, setDebuggerTraps } from "../src/cpu/debug.ts";

const folder = join(import.meta.dirname, "workload");
const elf = new Uint8Array(readFileSync(join(folder, "workload.elf")));
const expected = readFileSync(join(folder, "expected.txt"), "utf8");
const runs = Number(process.env.BENCH_RUNS ?? 3);

interface Result { seconds: number; instructions: number; memory?: string }

function fail(message: string, printed: string): never {
  console.error(`bench: ${message}`);
  console.error(`  printed:  ${JSON.stringify(printed)}`);
  console.error(`  expected: ${JSON.stringify(expected)}`);
  process.exit(1);
}

function runOurs(mode: TranslationMode, paging = false, breakpoint?: number): Result {
  translationSettings.mode = mode;
  const program = loadUserProgram(elf, { paging });
  if (breakpoint !== undefined) setDebuggerTraps(program.cpu, [{ address: breakpoint, physical: false, owner: DEBUGGER }], []);
  let output = "";
  const started = process.hrtime.bigint();
  const result = runUserProgram(program, (_fd, bytes) => (output += new TextDecoder().decode(bytes)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.exitStatus !== 0 || output !== expected) {
    fail(`the workload went wrong (${mode}): ${result.death ?? `exit status ${result.exitStatus}`}`, output);
  }
  const translator = program.cpu.translator;
  const memory = translator === undefined ? undefined :
    `${translator.regionCount} regions, ${(translator.sourceBytes / 1024).toFixed(0)} KiB of generated JavaScript ` +
    `(${translator.compilations} compiled, ${translator.invalidations} invalidated, ${translator.flushes} flushes)`;
  return { seconds, instructions: result.instructions, memory };
}

let ourCount = 0;
async function runV86(): Promise<Result> {
  const { output, seconds } = await runOnV86(elf);
  if (output !== `${expected}exit 00\n`) fail("v86 printed something else than our CPU", output);
  return { seconds, instructions: ourCount };
}

const median = (results: Result[]) => [...results].sort((a, b) => a.seconds - b.seconds)[Math.floor(results.length / 2)];
const mips = (r: Result) => r.instructions / r.seconds / 1e6;

async function main(): Promise<void> {
  const table: Record<string, Result[]> = { interpreter: [], translator: [], v86: [] };
  for (let run = 1; run <= runs; run++) {
    const interpreted = runOurs("off");
    ourCount = interpreted.instructions;
    table.interpreter.push(interpreted);
    table.translator.push(runOurs("on"));
    table.v86.push(await runV86());
    console.log(`  run ${run}: ` + Object.entries(table).map(([name, results]) =>
      `${name} ${mips(results[results.length - 1]).toFixed(1)} MIPS`).join(", "));
  }
  const interpreter = mips(median(table.interpreter));
  console.log(`workload, ${ourCount} guest instructions, checksum verified on every run; median of ${runs}:`);
  for (const [name, results] of Object.entries(table)) {
    const m = median(results);
    console.log(`  ${name.padEnd(12)} ${mips(m).toFixed(1).padStart(7)} MIPS  ${m.seconds.toFixed(2).padStart(6)} s  ` +
      `${(mips(m) / interpreter).toFixed(2)}x the interpreter`);
  }
  const translator = mips(median(table.translator)), v86 = mips(median(table.v86));
  console.log(`  translator / v86: ${(translator / v86).toFixed(2)}`);
  console.log(`  translator memory: ${median(table.translator).memory}`);
  const paged = runOurs("on", true);
  console.log(`  translator with paging on (identity-mapped): ${mips(paged).toFixed(1)} MIPS`);
  measureBreakpoints();
  measureBoot();
}

/**
 * A debugger's breakpoint costs nothing while it is not hit, unless it is
 * on a page the program runs: that page is left to the interpreter.
 * Plain runs and runs with a breakpoint, in turn, translation on.
 */
function measureBreakpoints(): void {
  const variants: [string, number | undefined][] = [
    ["plain", undefined],
    ["a breakpoint set, never reached (0x0badc0de)", 0x0badc0de],
    ["a breakpoint set on a cold path (vm_run.cold) in a hot page", 0x080480a0],
  ];
  const results: Result[][] = variants.map(() => []);
  for (let run = 1; run <= runs; run++) variants.forEach(([, at], k) => results[k].push(runOurs("on", false, at)));
  const plain = mips(median(results[0]));
  console.log(`debugger breakpoints, translation on, median of ${runs} runs in turn:`);
  variants.forEach(([name], k) => {
    const m = mips(median(results[k]));
    console.log(`  ${name}: ${m.toFixed(1)} MIPS` + (k === 0 ? "" : `, ${((m / plain) * 100).toFixed(0)}% of plain`));
  });
}

/**
 * Boot time: from loading images/vmlinux to the Guest's first prompt, on
 * the real Host with the virtual clock, so the figure is the machine's
 * speed and not the Guest's timer; interpreted and translated in turn.
 */
function measureBoot(): void {
  const kernel = new Uint8Array(readFileSync(join(import.meta.dirname, "..", "images", "vmlinux")));
  const results: Record<string, Result[]> = { off: [], on: [] };
  for (let run = 1; run <= runs; run++) {
    for (const mode of ["off", "on"] as const) {
      translationSettings.mode = mode;
      const started = process.hrtime.bigint();
      const session = bootGuest(kernel, [], { memoryBytes: 64 * 1024 * 1024 });
      session.run(() => session.output.endsWith("guest> "));
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (!session.output.endsWith("guest> ")) {
        console.error(`bench: the guest did not reach its prompt: ${session.dead ?? "still running"}`);
        process.exit(1);
      }
      results[mode].push({ seconds, instructions: session.cpu.instructions });
    }
  }
  for (const mode of ["off", "on"] as const) {
    const m = median(results[mode]);
    console.log(`boot to the prompt, translation ${mode}: ${(m.seconds * 1000).toFixed(0)} ms, ` +
      `median of ${runs} boots of images/vmlinux in 64 MiB (${m.instructions} guest instructions)`);
  }
}

void main();
