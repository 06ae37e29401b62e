// First boot: the book's Guest kernel (images/) run by the launcher as a
// child process, as a person runs it, with scripted console input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { symbols } from "./helpers/elf.ts";
import "./helpers/machine.ts"; // a machine of this file's own: its Guests are guest 0 (L:138)

function lguest(args: string[], input: string) {
  const result = spawnSync("npx", ["tsx", "lguest", ...args], { input, encoding: "utf8", timeout: 120_000 });
  const stderr = result.stderr.split("\n").filter((line) => line && !line.startsWith("npm warn")).join("\n");
  return { status: result.status, stdout: result.stdout, stderr };
}

for (const image of ["vmlinux", "bzImage"]) {
  test(`images/${image} boots to the prompt, runs commands, and powers off with status 0`, () => {
    const run = lguest(["--clock=virtual", "64m", `images/${image}`], "echo hi there\nuptime\nuser hello\nhalt\n");
    assert.equal(run.stderr, "");
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^lguest\.ts guest kernel: guest 0, 64 MiB/m);
    assert.match(run.stdout, /lguest bus: device 0: console, irq 1: driver ok/);
    assert.match(run.stdout, /guest> echo hi there\r?\nhi there\r?\n/);
    assert.match(run.stdout, /guest> uptime\r?\nup \d+\.\d\d s: \d+ ticks at 100 Hz; host time 1191888\d+\.\d+ \(2007-10-09/);
    assert.match(run.stdout, /Hello from ring 3! cs is 0x73/);
    assert.match(run.stdout, /guest> halt\r?\nPower down\.\r?\n$/);
  });
}

test("printf 'echo hi\\nhalt\\n' | npx tsx lguest 64m images/vmlinux prints hi and exits 0", () => {
  const run = lguest(["64m", "images/vmlinux"], "echo hi\nhalt\n");
  assert.equal(run.status, 0);
  assert.match(run.stdout, /^hi\r?$/m);
});

test("the uptime advances with the timer", () => {
  const run = lguest(["--clock=virtual", "64m", "images/vmlinux"], "uptime\nspaces 20\nuptime\nhalt\n");
  const ticks = [...run.stdout.matchAll(/: (\d+) ticks at 100 Hz/g)].map((m) => Number(m[1]));
  assert.equal(ticks.length, 2);
  assert.ok(ticks[1] > ticks[0], `ticks ${ticks.join(" then ")}`);
});

test("a whole boot traced with --clock=virtual is the same every run, and matches the golden trace", () => {
  const args = ["--clock=virtual", "--trace=hcall,trap,irq,dma,pgtable,count", "64m", "images/vmlinux"];
  const first = lguest(args, "echo hi\nhalt\n");
  const second = lguest(args, "echo hi\nhalt\n");
  assert.equal(first.status, 0);
  assert.equal(first.stderr, second.stderr, "two runs, two different traces");
  const golden = readFileSync(join(import.meta.dirname, "golden", "boot-trace.txt"), "utf8");
  assert.equal(first.stderr + "\n", golden, "the trace changed: if on purpose, run test/golden/update.sh");
});

test("--trace=insn prints every instruction disassembled, and the registers it changed", () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-insn-"));
  try {
    const file = join(dir, "trace.txt");
    const run = lguest(["--clock=virtual", "--trace=insn", `--trace-file=${file}`, "64m", "images/vmlinux"], "halt\n");
    assert.equal(run.status, 0);
    const lines = readFileSync(file, "utf8").split("\n");
    const start = lines.indexOf("guest 0: c010000d  cld");
    assert.ok(start >= 0, lines.slice(0, 3).join("\n"));
    const bssStart = symbols(new Uint8Array(readFileSync("images/vmlinux"))).get("__bss_start")!.value.toString(16);
    assert.equal(lines[start + 1], `guest 0: c010000e  mov    $0x${bssStart},%edi`, "head.S zeroes the BSS first");
    assert.equal(lines[start + 2], `guest 0:     edi=0x${bssStart}`);
    assert.ok(lines.some((line) => /^guest 0: [0-9a-f]{8}  int    \$0x1f$/.test(line)), "hypercalls appear as int $0x1f");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a hostile guest ends the launcher with one line on stderr and status 1", () => {
  const run = lguest(["--clock=virtual", "64m", "images/vmlinux", "hostile=badcall"], "");
  assert.equal(run.status, 1);
  assert.equal(run.stderr, "lguest: the guest died: Bad hypercall 11");
});
