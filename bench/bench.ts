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
// Then the time the book's Guest kernel takes from loading to its prompt,
// and last the Guest's speed with the terminal UI attached.
// `npm run bench -- cpu|boot|tui` runs one part.
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
  measure(false);
  measure(true);
  measureBreakpoints();
}
if (wanted("boot")) measureBoot();
if (wanted("tui")) await measureTui();
