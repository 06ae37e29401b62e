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
// interpreted and translated; and last the Guest's speed with the terminal
// UI attached. `npm run bench -- cpu|boot|tui` runs one part.
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

async function measureWorkload(): Promise<void> {
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
if (wanted("cpu")) {
  await measureWorkload();
  measureBreakpoints();
}
if (wanted("boot")) measureBoot();
if (wanted("tui")) {
  translationSettings.mode = "on";
  await measureTui();
}
