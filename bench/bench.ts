// npm run bench: guest instructions per second on the CPU-bound workload
// (bench/workload/, see its README), run on the user-mode runner.
// Prints the median of several runs; the checksum line the workload prints
// must equal bench/workload/expected.txt, or the figure means nothing.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadUserProgram, runUserProgram } from "../src/cpu/user-program.ts";

const folder = join(import.meta.dirname, "workload");
const elf = new Uint8Array(readFileSync(join(folder, "workload.elf")));
const expected = readFileSync(join(folder, "expected.txt"), "utf8");
const runs = Number(process.env.BENCH_RUNS ?? 5);

const results: { seconds: number; instructions: number }[] = [];
for (let run = 0; run < runs; run++) {
  const program = loadUserProgram(elf);
  let output = "";
  const started = process.hrtime.bigint();
  const result = runUserProgram(program, (_fd, bytes) => (output += new TextDecoder().decode(bytes)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.exitStatus !== 0 || output !== expected) {
    console.error(`bench: run ${run + 1} went wrong: ${result.death ?? `exit status ${result.exitStatus}`}`);
    console.error(`  printed:  ${JSON.stringify(output)}`);
    console.error(`  expected: ${JSON.stringify(expected)}`);
    process.exit(1);
  }
  results.push({ seconds, instructions: result.instructions });
  console.log(`run ${run + 1}: ${(result.instructions / seconds / 1e6).toFixed(1)} MIPS (${seconds.toFixed(2)} s)`);
}
const sorted = [...results].sort((a, b) => a.seconds - b.seconds);
const median = sorted[Math.floor(sorted.length / 2)];
console.log(`workload: checksum verified, ${median.instructions} guest instructions (rep counted once per chunk)`);
console.log(`cpu: ${(median.instructions / median.seconds / 1e6).toFixed(1)} MIPS median of ${runs} runs (${median.seconds.toFixed(2)} s)`);
