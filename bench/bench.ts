// npm run bench: guest instructions per second on the CPU-bound workload
// (bench/workload/, see its README), run on the user-mode runner.
// Prints the median of several runs; the checksum line the workload prints
// must equal bench/workload/expected.txt, or the figure means nothing.
// It runs twice: with paging off, and through identity-mapped page tables,
// to show what the page walk and the TLB cost. A rep string instruction
// counts once per chunk of up to 4096 iterations, as the CPU counts it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadUserProgram, runUserProgram } from "../src/cpu/user-program.ts";

const folder = join(import.meta.dirname, "workload");
const elf = new Uint8Array(readFileSync(join(folder, "workload.elf")));
const expected = readFileSync(join(folder, "expected.txt"), "utf8");
const runs = Number(process.env.BENCH_RUNS ?? 5);

function runOnce(paging: boolean): { seconds: number; instructions: number } {
  const program = loadUserProgram(elf, { paging });
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

measure(false);
measure(true);
