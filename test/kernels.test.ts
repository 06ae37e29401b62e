// The protected-mode test kernels (test/kernels/, see its README) run on
// our bare machine must print what QEMU printed for them
// (test/kernels/expected/), except where QEMU departs from the Intel SDM
// (test/kernels/sdm-differences.txt, each line with its reason).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { makeBareMachine, runBareMachine } from "../src/launcher/bare.ts";

const folder = join(import.meta.dirname, "kernels");
const differences = readFileSync(join(folder, "sdm-differences.txt"), "utf8").split("\n")
  .filter((line) => line && !line.startsWith("#")).map((line) => line.split("\t"));

for (const name of readdirSync(join(folder, "bin")).filter((f) => f.endsWith(".elf")).sort()) {
  const kernel = name.replace(/\.elf$/, "");
  test(`${kernel}.elf prints what QEMU printed (SDM where QEMU differs)`, () => {
    let output = "";
    const machine = makeBareMachine(new Uint8Array(readFileSync(join(folder, "bin", name))), name, 128 * 1024 * 1024,
      (bytes) => (output += Buffer.from(bytes).toString("latin1")));
    runBareMachine(machine, 200_000_000);
    let expected = readFileSync(join(folder, "expected", `${kernel}.txt`), "latin1");
    for (const [which, qemu, sdm] of differences) {
      if (which !== kernel) continue;
      assert.ok(expected.includes(qemu + "\n"), `sdm-differences.txt names a line not in ${kernel}.txt: ${qemu}`);
      expected = expected.replace(qemu + "\n", sdm + "\n");
    }
    assert.equal(machine.ending, undefined, machine.ending);
    assert.equal(output, expected);
    assert.equal(machine.exitStatus, Number(readFileSync(join(folder, "expected", `${kernel}.status`), "utf8").trim()));
  });
}
