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
// Then the translator's memory; the translator plain, in turn with runs
// that have a debugger breakpoint set but never hit (book/cpu-debug.md):
// one on an address the workload never reaches, one on a cold path in a
// page the workload runs all the time (that page runs interpreted); the
// time the book's Guest kernel takes from loading to its prompt,
// interpreted and translated; and last the Guest's speed with the terminal
// UI attached. `npm run bench -- cpu|boot|tui` runs one part.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { translationSettings } from "../src/cpu/translator.ts";

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

/** The runs of a measurement: the first (cold), and the later half (steady). */
const cold = (m: Measurement) => m.runs[0];
const steadyRuns = (m: Measurement) => m.runs.slice(Math.max(1, Math.ceil(m.runs.length / 2)));
const steady = (m: Measurement, clock: "cpu" | "wall") => median(steadyRuns(m).map((r) => r[clock]));
const seconds = (m: Measurement, k: number, clock: "cpu" | "wall") => (k === 0 ? cold(m)[clock] : steady(m, clock));

function measureWorkload(): void {
  const engines = ["interpreter", "translator", "v86"] as const;
  const results: Record<string, Measurement[]> = { interpreter: [], translator: [], v86: [] };
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

}

/**
 * A debugger's breakpoint costs nothing while it is not hit, unless it is
 * on a page the program runs: that page is left to the interpreter. Plain
 * runs and runs with a breakpoint, in turn, translation on; the steady
 * runs (the first pays for compiling, as above).
 */
function measureBreakpoints(): void {
  const variants: [string, string][] = [
    ["plain", "translator"],
    ["a breakpoint set, never reached (0x0badc0de)", "translator-breakpoint-far"],
    ["a breakpoint set on a cold path (vm_run.cold) in a hot page", "translator-breakpoint-hot-page"],
  ];
  const results: Measurement[][] = variants.map(() => []);
  for (let run = 1; run <= runs; run++) variants.forEach(([, which], k) => results[k].push(measure(which)));
  const steadyMips = (k: number) => median(results[k].map((m) => instructions / steady(m, "cpu") / 1e6));
  console.log(`debugger breakpoints, translation on, steady runs, median of ${runs} processes each in turn:`);
  variants.forEach(([name], k) => {
    const m = steadyMips(k);
    console.log(`  ${name}: ${m.toFixed(1)} MIPS` + (k === 0 ? "" : `, ${((m / steadyMips(0)) * 100).toFixed(0)}% of plain`));
  });
}

/** Boot time, as above: from loading images/vmlinux to the Guest's first prompt, interpreted and translated in turn. */
function measureBoot(): void {
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
}

/**
 * The Guest's speed with the terminal UI attached. The book's Guest boots
 * and runs its `spin` program four times (about 40 million instructions,
 * mostly ring 3 with a system call per loop, and the timer), on the
 * virtual clock, in a loop shaped like the Launcher's: a slice of 200,000
 * instructions, then a turn of the event loop, where the TUI's refresh
 * timer runs. Three ways: plain; with the TUI attached to a 120x40
 * terminal (every pane drawn, five times a second, into a stream that
 * throws the bytes away, so what is measured is the TUI's work and not a
 * terminal's); and the same with a breakpoint set where the Guest never
 * goes. Paired runs, A B C A B C ..., medians. The time is the process's
 * CPU time (user and system), not the wall clock: on a shared machine the
 * wall clock measures the neighbours too.
 */
async function runGuestWith(mode: "plain" | "tui" | "breakpoint"): Promise<{ seconds: number; instructions: number }> {
  const { Host } = await import("../src/host/host.ts");
  const { PhysicalMemory, PAGE_SIZE } = await import("../src/cpu/memory.ts");
  const { layOutGuest } = await import("../src/launcher/layout.ts");
  const { ConsoleDevice } = await import("../src/devices/console.ts");
  const { DeviceBus } = await import("../src/devices/bus.ts");
  const { GuestLink } = await import("../src/devices/link.ts");
  const { Debugger } = await import("../src/debug/debugger.ts");
  const { readElfSymbols } = await import("../src/debug/symbols.ts");
  const { Tui } = await import("../src/tui/tui.ts");
  const { PassThrough, Writable } = await import("node:stream");
  const kernel = new Uint8Array(readFileSync(join(import.meta.dirname, "..", "images", "vmlinux")));
  const layout = layOutGuest({
    memoryBytes: 64 * 1024 * 1024, kernel, kernelName: "vmlinux",
    devices: [{ type: 1, features: 0, pages: 0, description: "console" }],
    kernelArguments: ["run=user spin;user spin;user spin;user spin;halt"],
  });
  const memory = new PhysicalMemory(layout.ram);
  memory.mapPage(layout.memoryBytes / PAGE_SIZE, layout.descriptorPage);
  let skipped = 0n, instructions = () => 0;
  const now = () => 1191888000n * 1_000_000_000n + BigInt(instructions()) * 10n + skipped;
  const host = new Host({ now, seed: 1 });
  const initialized = host.initialize({ memory, pfnLimit: layout.pfnLimit, pgdir: layout.pgdir, start: layout.entry, pageOffset: layout.pageOffset });
  if (!initialized.ok) throw new Error(initialized.message);
  const guest = initialized.guest;
  instructions = () => guest.cpu.instructions;
  let tui: InstanceType<typeof Tui> | undefined;
  let debug: InstanceType<typeof Debugger> | undefined;
  if (mode !== "plain") {
    debug = new Debugger({ cpu: guest.cpu, guest, symbols: readElfSymbols(kernel) });
    const output = Object.assign(new Writable({ write: (_chunk, _encoding, done) => done() }), { isTTY: true, columns: 120, rows: 40 });
    tui = new Tui({ debug, guest, typeToGuest: () => {}, onQuit: () => {}, input: new PassThrough(), output });
    if (mode === "breakpoint") debug.addBreakpoint({ address: debug.symbols.find("panic")!.address });
  }
  let output = "";
  const console_ = new ConsoleDevice((bytes) => {
    output += new TextDecoder().decode(bytes);
    tui?.write(bytes);
  });
  const bus = new DeviceBus([console_]);
  bus.attach(layout.devices, new GuestLink(host, guest, () => {}));
  const started = process.cpuUsage();
  for (;;) {
    const held = debug?.beforeRun();
    if (held !== undefined) await held;
    const result = host.run(guest, 200_000);
    if (result.kind === "paused") {
      debug!.cpuStopped();
      continue;
    }
    if (result.kind === "dma") {
      bus.handleDma(result.dmaGpa, result.key);
    } else if (result.kind === "dead") {
      break;
    } else if (result.kind === "timeslice" && result.halted && result.timerAt !== undefined && result.timerAt > now()) {
      skipped += result.timerAt - now();
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const used = process.cpuUsage(started);
  const seconds = (used.user + used.system) / 1e6;
  tui?.close();
  if (!guest.dead?.includes("Power down") || (output.match(/spun \d+ times/g) ?? []).length !== 4) {
    console.error(`bench: the spinning Guest went wrong (${mode}): ${guest.dead}\n${output.slice(-400)}`);
    process.exit(1);
  }
  return { seconds, instructions: guest.cpu.instructions };
}

async function measureTui(): Promise<void> {
  const modes = ["plain", "tui", "breakpoint"] as const;
  const results = new Map<string, { seconds: number; instructions: number }[]>(modes.map((mode) => [mode, []]));
  for (let run = 1; run <= runs; run++) {
    for (const mode of modes) {
      const result = await runGuestWith(mode);
      results.get(mode)!.push(result);
      console.log(`  ${mode} ${run}: ${(result.instructions / result.seconds / 1e6).toFixed(1)} MIPS (${result.seconds.toFixed(2)} s of CPU)`);
    }
  }
  const median = (mode: string) => {
    const sorted = [...results.get(mode)!].sort((a, b) => a.seconds - b.seconds);
    return sorted[Math.floor(sorted.length / 2)];
  };
  const plain = median("plain");
  const mips = (r: { seconds: number; instructions: number }) => r.instructions / r.seconds / 1e6;
  const describe = { plain: "the Guest alone", tui: "with the TUI attached (120x40, 5 redraws/s)", breakpoint: "with the TUI and a breakpoint set, not hit" };
  for (const mode of modes) {
    const result = median(mode);
    const paired = results.get(mode)!.map((r, run) => results.get("plain")![run].seconds / r.seconds).sort((a, b) => a - b);
    const ratio = mode === "plain" ? "" : `, ${(100 * paired[Math.floor(paired.length / 2)]).toFixed(0)}% of the Guest alone (median of the paired runs' ratios)`;
    console.log(`guest, ${describe[mode]}: ${mips(result).toFixed(1)} MIPS${ratio}; ${result.instructions} instructions, ${runs} runs`);
  }
}

// `npm run bench -- tui` runs one part; no argument runs them all.
const parts = new Set(process.argv.slice(2));
const wanted = (part: string) => parts.size === 0 || parts.has(part);
let instructions = 0;
if (wanted("cpu")) {
  measureWorkload();
  measureBreakpoints();
}
if (wanted("boot")) measureBoot();
if (wanted("tui")) {
  translationSettings.mode = "on";
  await measureTui();
}
