// One measurement of `npm run bench`, in a process of its own (bench/bench.ts
// starts one per measurement, so that no run inherits another's compiled
// code, V8's included): prints one line of JSON.
//   interpreter | translator | translator-paged: the workload several times
//     in one machine (BENCH_REPEATS, 6 by default; the interpreter 3), each
//     run checked against bench/workload/expected.txt: the first run pays
//     for every compilation (cold), the later ones find the translations of
//     the first made and optimised (steady);
//   translator-breakpoint-far | translator-breakpoint-hot-page: the
//     translator with a debugger breakpoint set that is never hit, on an
//     address the workload never reaches, or in a page it runs all the time;
//   v86: the same, in v86 (its JIT warms up over several runs too);
//   boot-off | boot-on: the book's Guest from loading to its prompt.
// Times are CPU seconds of the whole process (every thread: V8's background
// compilers are part of the price) and wall seconds.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadUserProgram, runUserProgram, type UserProgram } from "../src/cpu/user-program.ts";
import { translationSettings } from "../src/cpu/translator.ts";
import { ESP } from "../src/cpu/registers.ts";
import { bootGuest } from "../test/helpers/guest-session.ts";
import { runOnV86, type Spent } from "./v86.ts";
import { DEBUGGER, setDebuggerTraps } from "../src/cpu/debug.ts";

const folder = join(import.meta.dirname, "workload");
const elf = new Uint8Array(readFileSync(join(folder, "workload.elf")));
const expected = readFileSync(join(folder, "expected.txt"), "utf8");
const REPEATS = Number(process.env.BENCH_REPEATS ?? 6);

const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

function spentOn(work: () => void): Spent {
  const cpu = cpuSeconds(), wall = process.hrtime.bigint();
  work();
  return { cpu: cpuSeconds() - cpu, wall: Number(process.hrtime.bigint() - wall) / 1e9 };
}

function fail(message: string): never {
  console.log(JSON.stringify({ error: message }));
  process.exit(1);
}

/** Puts the program back as it was loaded: .bss cleared, stack and eip reset (its code is untouched). */
function reset(program: UserProgram, stack: number): void {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const phoff = view.getUint32(28, true), phnum = view.getUint16(44, true);
  for (let k = 0; k < phnum; k++) {
    const at = phoff + 32 * k;
    if (view.getUint32(at, true) !== 1) continue;
    const vaddr = view.getUint32(at + 8, true), filesz = view.getUint32(at + 16, true), memsz = view.getUint32(at + 20, true);
    program.cpu.memory.ram.fill(0, vaddr + filesz, vaddr + memsz);
  }
  program.cpu.regs[ESP] = stack;
  program.cpu.eip = program.entry;
}

function ours(mode: "off" | "on", paging: boolean, repeats: number, breakpoint?: number): void {
  translationSettings.mode = mode;
  const program = loadUserProgram(elf, { paging });
  if (breakpoint !== undefined) setDebuggerTraps(program.cpu, [{ address: breakpoint, physical: false, owner: DEBUGGER }], []);
  const stack = program.cpu.regs[ESP];
  const runs: Spent[] = [];
  let instructions = 0;
  for (let run = 0; run < repeats; run++) {
    if (run > 0) reset(program, stack);
    let output = "";
    let result: ReturnType<typeof runUserProgram> | undefined;
    runs.push(spentOn(() => {
      result = runUserProgram(program, (_fd, bytes) => (output += new TextDecoder().decode(bytes)));
    }));
    if (result!.exitStatus !== 0 || output !== expected) {
      fail(`the workload went wrong (${mode}, run ${run + 1}): ${result!.death ?? `exit status ${result!.exitStatus}`}, printed ${JSON.stringify(output)}`);
    }
    instructions = result!.instructions;
  }
  const t = program.cpu.translator;
  const translator = t === undefined ? undefined : {
    regions: t.regionCount, codeBytes: t.codeBytes, translations: t.translations, invalidations: t.invalidations,
    flushes: t.flushes, compileMilliseconds: t.compileMilliseconds, entries: t.entries,
    translatedInstructions: t.translatedInstructions, fallbackCalls: t.fallbackCalls, repeats,
  };
  console.log(JSON.stringify({ instructions, runs, translator }));
}

async function v86(): Promise<void> {
  const { outputs, spent, counted } = await runOnV86(elf, REPEATS);
  for (const output of outputs) {
    if (output !== `${expected}exit 00\n`) fail(`v86 printed something else than our CPU: ${JSON.stringify(output)}`);
  }
  console.log(JSON.stringify({ runs: spent, v86Instructions: counted }));
}

function boot(mode: "off" | "on"): void {
  translationSettings.mode = mode;
  const kernel = new Uint8Array(readFileSync(join(import.meta.dirname, "..", "images", "vmlinux")));
  let session: ReturnType<typeof bootGuest> | undefined;
  const spent = spentOn(() => {
    session = bootGuest(kernel, [], { memoryBytes: 64 * 1024 * 1024 });
    session.run(() => session!.output.endsWith("guest> "));
  });
  if (!session!.output.endsWith("guest> ")) fail(`the guest did not reach its prompt: ${session!.dead ?? "still running"}`);
  const t = session!.cpu.translator;
  console.log(JSON.stringify({
    runs: [spent], instructions: session!.cpu.instructions,
    translator: t === undefined ? undefined : { regions: t.regionCount, translatedInstructions: t.translatedInstructions },
  }));
}

const which = process.argv[2];
switch (which) {
  case "interpreter": ours("off", false, Math.min(REPEATS, 3)); break;
  case "translator": ours("on", false, REPEATS); break;
  case "translator-paged": ours("on", true, 2); break;
  case "translator-breakpoint-far": ours("on", false, 3, 0x0badc0de); break;
  case "translator-breakpoint-hot-page": ours("on", false, 3, 0x080480a0); break;
  case "v86": await v86(); break;
  case "boot-off": boot("off"); break;
  case "boot-on": boot("on"); break;
  default: fail(`unknown measurement ${which}`);
}
