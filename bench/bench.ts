// npm run bench: guest instructions per second on the CPU-bound workload
// (bench/workload/, see its README), three ways, interleaved so that the
// machine's drift hits all three alike:
//   * the interpreter alone (translation off),
//   * the translator (book/cpu-translator.md), as the launcher runs it,
//   * v86 (the npm package) running the same workload bytes behind a
//     multiboot stub (bench/v86.ts); its output must equal ours.
// Each measurement is a process of its own (bench/measure.ts), so that none
// inherits another's compiled code: V8 keeps compiled WebAssembly for
// identical bytes, and a second translator in one process would find its
// regions already optimised. In each, the workload runs several times in one
// machine: "cold" is the first run, everything compiled on the way, as a
// user meets it; "steady" the median of the later half of the runs, which
// find the translations (ours and v86's) made and optimised. v86 compiles
// in the background and needs several runs to get there, so each engine
// gets the same six. The figures are CPU time of the whole process (V8's
// background compilers included), steadier than wall time on a shared
// machine; wall time is shown too. MIPS use our instruction count for all
// three (a rep string instruction counts once per chunk of up to 4096
// iterations, as our CPU counts it).
// Then the translator's memory, and the time the book's Guest kernel takes
// from loading to its prompt, interpreted and translated.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const runs = Number(process.env.BENCH_RUNS ?? 3);
const root = join(import.meta.dirname, "..");

interface Spent { cpu: number; wall: number }
interface Measurement {
  runs: Spent[];
  instructions?: number;
  error?: string;
  translator?: Record<string, number>;
}

function measure(which: string): Measurement {
  const child = spawnSync(process.execPath, ["--import", "tsx", join("bench", "measure.ts"), which], {
    cwd: root, encoding: "utf8", maxBuffer: 1 << 20,
  });
  const line = child.stdout.trim().split("\n").pop() ?? "";
  let result: Measurement;
  try {
    result = JSON.parse(line) as Measurement;
  } catch {
    console.error(`bench: ${which} failed (status ${child.status}):\n${child.stdout}${child.stderr}`);
    process.exit(1);
  }
  if (result.error !== undefined) {
    console.error(`bench: ${which}: ${result.error}`);
    process.exit(1);
  }
  return result;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const engines = ["interpreter", "translator", "v86"] as const;
const results: Record<string, Measurement[]> = { interpreter: [], translator: [], v86: [] };
let instructions = 0;
/** The runs of a measurement: the first (cold), and the later half (steady). */
const cold = (m: Measurement) => m.runs[0];
const steadyRuns = (m: Measurement) => m.runs.slice(Math.max(1, Math.ceil(m.runs.length / 2)));
const steady = (m: Measurement, clock: "cpu" | "wall") => median(steadyRuns(m).map((r) => r[clock]));
const seconds = (m: Measurement, k: number, clock: "cpu" | "wall") => (k === 0 ? cold(m)[clock] : steady(m, clock));
for (let run = 1; run <= runs; run++) {
  for (const engine of engines) {
    const m = measure(engine);
    if (m.instructions !== undefined) instructions = m.instructions;
    results[engine].push(m);
  }
  console.log(`  round ${run}: ` + engines.map((engine) => {
    const m = results[engine][results[engine].length - 1];
    return `${engine} ${m.runs.map((r) => (instructions / r.cpu / 1e6).toFixed(0)).join(" ")}`;
  }).join("; ") + " MIPS (each run in turn, CPU time)");
}

/** Median MIPS of run `k` (0 cold, 1 steady) by CPU time or wall time. */
const mips = (engine: string, k: number, clock: "cpu" | "wall") =>
  median(results[engine].map((m) => instructions / seconds(m, k, clock) / 1e6));

console.log(`workload, ${instructions} guest instructions a run, output verified on every run; medians of ${runs} processes each:`);
console.log("                  cold (first run)            steady (later runs in the same machine)");
console.log("                  MIPS   x interp.  wall MIPS  MIPS   x interp.  wall MIPS");
for (const engine of engines) {
  const row = [0, 1].map((k) =>
    `${mips(engine, k, "cpu").toFixed(1).padStart(6)} ${(mips(engine, k, "cpu") / mips("interpreter", k, "cpu")).toFixed(2).padStart(8)}x ` +
    `${mips(engine, k, "wall").toFixed(1).padStart(9)}`).join("  ");
  console.log(`  ${engine.padEnd(14)} ${row}`);
}
for (const k of [0, 1]) {
  const ratio = median(results.translator.map((m, n) => seconds(results.v86[n], k, "cpu") / seconds(m, k, "cpu")));
  const interpreted = median(results.translator.map((m, n) => seconds(results.interpreter[n], k, "cpu") / seconds(m, k, "cpu")));
  console.log(`  ${k === 0 ? "cold" : "steady"}: translator / interpreter ${interpreted.toFixed(2)}, translator / v86 ${ratio.toFixed(2)} ` +
    "(medians of the ratios within each round)");
}
const last = results.translator[results.translator.length - 1];
const t = last.translator!;
console.log(`  translator memory: ${t.regions} regions, ${(t.codeBytes / 1024).toFixed(0)} KiB of WebAssembly ` +
  `(${t.translations} made, ${t.invalidations} invalidated, ${t.flushes} flushes; ` +
  `${t.compileMilliseconds.toFixed(0)} ms generating and compiling), plus the machine area after guest RAM`);
console.log(`  translator: ${(100 * t.translatedInstructions / (t.repeats * instructions)).toFixed(1)} % of instructions in translated code, ` +
  `${(t.translatedInstructions / t.entries).toFixed(0)} per entry from the interpreter's loop, ${t.fallbackCalls} handler calls from regions`);
const paged = measure("translator-paged");
console.log(`  translator with paging on (identity-mapped): ${(instructions / paged.runs[0].cpu / 1e6).toFixed(1)} MIPS cold, ` +
  `${(instructions / paged.runs[1].cpu / 1e6).toFixed(1)} on the second run`);

const boots: Record<string, Measurement[]> = { "boot-off": [], "boot-on": [] };
for (let run = 1; run <= runs; run++) for (const mode of ["boot-off", "boot-on"]) boots[mode].push(measure(mode));
for (const mode of ["boot-off", "boot-on"]) {
  const m = boots[mode];
  console.log(`boot to the prompt, translation ${mode.slice(5)}: ${(median(m.map((b) => b.runs[0].cpu)) * 1000).toFixed(0)} ms CPU, ` +
    `${(median(m.map((b) => b.runs[0].wall)) * 1000).toFixed(0)} ms wall, median of ${runs} boots of images/vmlinux in 64 MiB ` +
    `(${m[0].instructions} guest instructions)`);
}
const bootRatio = median(boots["boot-on"].map((m, n) => m.runs[0].cpu / boots["boot-off"][n].runs[0].cpu));
console.log(`  boot, translation on / off: ${bootRatio.toFixed(2)} (median of the per-pair CPU-time ratios)`);
