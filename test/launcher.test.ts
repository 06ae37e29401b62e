// The launcher's command line (lguest.ts.md, "The command line") and what
// `main` prints and returns for each kind of mistake.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArguments, type GuestCommand } from "../src/launcher/arguments.ts";
import { LaunchError } from "../src/launcher/launch-error.ts";
import { main } from "../lguest.ts";
import { buildElf, kernelText } from "./helpers/images.ts";

const MiB = 1024 * 1024;

function guest(argv: string[]): GuestCommand {
  const command = parseArguments(argv);
  assert.equal(command.mode, "guest");
  return command as GuestCommand;
}

/** Runs main() in-process, for the paths that end before a guest runs, and captures what it prints. */
function run(argv: string[]): { status: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (text: string) => out.push(...String(text).split("\n"));
  console.error = (text: string) => err.push(...String(text).split("\n"));
  try {
    const status = main(argv);
    assert.equal(typeof status, "number", "this path must end without running a guest");
    return { status: status as number, out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

test("MEM is a number of MiB, or has an m/M/g/G suffix", () => {
  assert.equal(guest(["64", "k"]).memoryBytes, 64 * MiB);
  assert.equal(guest(["64m", "k"]).memoryBytes, 64 * MiB);
  assert.equal(guest(["128M", "k"]).memoryBytes, 128 * MiB);
  assert.equal(guest(["1g", "k"]).memoryBytes, 1024 * MiB);
  assert.equal(guest(["1G", "k"]).memoryBytes, 1024 * MiB);
  assert.equal(guest(["16", "k"]).memoryBytes, 16 * MiB);
});

test("the first non-option argument is MEM, the next KERNEL, the rest kernel arguments", () => {
  const command = guest(["--verbose", "64m", "vmlinux", "root=/dev/lgba", "-s", "--", "init=/bin/sh"]);
  assert.equal(command.kernel, "vmlinux");
  assert.deepEqual(command.kernelArguments, ["root=/dev/lgba", "-s", "--", "init=/bin/sh"]);
  assert.equal(command.verbose, true);
});

test("an option after MEM is an error that names it and says options go before MEM", () => {
  const cases: [string[], string][] = [
    [["64m", "vmlinux", "--block=disk.img"], "--block=disk.img comes after MEM (64m): options go before MEM, as in lguest --block=disk.img 64m KERNEL"],
    [["64m", "--verbose", "vmlinux"], "--verbose comes after MEM (64m): options go before MEM, as in lguest --verbose 64m KERNEL"],
    [["64m", "vmlinux", "root=/dev/lgba", "--trace"], "--trace comes after MEM (64m): options go before MEM, as in lguest --trace 64m KERNEL"],
    [["64m", "-x", "k"], "-x comes after MEM (64m): options go before MEM, as in lguest -x 64m KERNEL"],
  ];
  for (const [argv, message] of cases) {
    assert.throws(() => parseArguments(argv), (error: unknown) => error instanceof LaunchError && error.message === message && error.showUsage);
  }
});

test("devices keep their command-line order; options repeat", () => {
  const command = guest(["--block=a.img", "--tunnet=192.168.19.1", "--sharenet=net", "--block=b.img",
    "--tunnet=bridge:br0", "--initrd=initrd.img", "64", "k"]);
  assert.deepEqual(command.devices, [
    { kind: "block", file: "a.img" },
    { kind: "tunnet", ip: "192.168.19.1" },
    { kind: "sharenet", file: "net" },
    { kind: "block", file: "b.img" },
    { kind: "tunnet", bridge: "br0" },
  ]);
  assert.equal(command.initrd, "initrd.img");
});

test("--trace selects categories; plain --trace is all but insn", () => {
  assert.deepEqual([...guest(["--trace", "64", "k"]).trace], ["hcall", "trap", "irq", "dma", "pgtable"]);
  assert.deepEqual([...guest(["--trace=insn,dma", "64", "k"]).trace], ["insn", "dma"]);
  assert.equal(guest(["--trace=all", "64", "k"]).trace.size, 6);
  assert.equal(guest(["64", "k"]).trace.size, 0);
  assert.equal(guest(["--trace=dma,count", "64", "k"]).traceCount, true);
  assert.deepEqual([...guest(["--trace=dma,count", "64", "k"]).trace], ["dma"]);
  assert.deepEqual([...guest(["--trace=count", "64", "k"]).trace], ["hcall", "trap", "irq", "dma", "pgtable"]);
  assert.equal(guest(["--trace", "64", "k"]).traceCount, false);
  assert.equal(guest(["--gdb=1234", "64", "k"]).gdbPort, 1234);
  assert.equal(guest(["64", "k"]).gdbPort, undefined);
  assert.equal(guest(["--trace-file=t.log", "64", "k"]).traceFile, "t.log");
  assert.equal(guest(["--clock=virtual", "64", "k"]).clock, "virtual");
  assert.equal(guest(["64", "k"]).clock, "real");
});

test("--bare takes an optional MEM, 128 MiB by default", () => {
  assert.deepEqual(parseArguments(["--bare", "t.elf"]), {
    mode: "bare", verbose: false, trace: new Set(), traceCount: false, clock: "real", traceFile: undefined, gdbPort: undefined, tui: undefined,
    memoryBytes: 128 * MiB, kernel: "t.elf",
  });
  const sized = parseArguments(["--bare", "--clock=virtual", "32m", "t.elf"]);
  assert.equal(sized.mode === "bare" && sized.memoryBytes, 32 * MiB);
});

test("--help and -h ask for help wherever they are among the options", () => {
  assert.deepEqual(parseArguments(["--help"]), { mode: "help" });
  assert.deepEqual(parseArguments(["--verbose", "-h", "64", "k"]), { mode: "help" });
});

test("every bad argument is a one-line LaunchError that asks for the usage", () => {
  const cases: [string[], RegExp][] = [
    [[], /missing MEM and KERNEL/],
    [["64"], /missing KERNEL/],
    [["15", "k"], /out of range/],
    [["2g", "k"], /out of range/],
    [["1025m", "k"], /out of range/],
    [["64k", "k"], /not a number of MiB/],
    [["sixty", "k"], /not a number of MiB/],
    [["--frobnicate", "64", "k"], /unknown option --frobnicate/],
    [["-v", "64", "k"], /unknown option -v/],
    [["--verbose=yes", "64", "k"], /--verbose takes no value/],
    [["--bare=1", "k"], /--bare takes no value/],
    [["--block", "64", "k"], /--block needs a value: write --block=FILE/],
    [["--block=", "64", "k"], /--block= needs a FILE/],
    [["--sharenet", "64", "k"], /--sharenet needs a value/],
    [["--initrd", "64", "k"], /--initrd needs a value/],
    [["--initrd=a", "--initrd=b", "64", "k"], /only once/],
    [["--trace-file", "64", "k"], /--trace-file needs a value/],
    [["--gdb", "64", "k"], /--gdb needs a value/],
    [["--gdb=70000", "64", "k"], /a port is a number from 0 to 65535/],
    [["--gdb=:1234", "64", "k"], /a port is a number/],
    [["--trace=hcall,bogus", "64", "k"], /"bogus" is not one of/],
    [["--clock=fast", "64", "k"], /real or virtual/],
    [["--clock", "64", "k"], /--clock needs a value/],
    [["--tunnet=10.0.0", "64", "k"], /IPv4 address/],
    [["--tunnet=10.0.0.256", "64", "k"], /IPv4 address/],
    [["--tunnet=bridge:", "64", "k"], /bridge name/],
    [["--tunnet=bridge:a-very-long-bridge-name", "64", "k"], /bridge name/],
    [["--bare"], /--bare needs a KERNEL.elf/],
    [["--bare", "1", "2", "3"], /not 3 arguments/],
    [["--bare", "--block=x", "k"], /devices and --initrd do not apply/],
    [["--bare", "8m", "k"], /out of range/],
  ];
  for (const [argv, pattern] of cases) {
    assert.throws(() => parseArguments(argv), (error: unknown) => {
      assert.ok(error instanceof LaunchError, `${argv.join(" ")}: ${error}`);
      assert.match(error.message, pattern, argv.join(" "));
      assert.equal(error.showUsage, true);
      assert.ok(!error.message.includes("\n"));
      return true;
    });
  }
});

test("main: a bad argument prints one error line and the usage line, status 1", () => {
  const { status, out, err } = run(["--block", "64", "k"]);
  assert.equal(status, 1);
  assert.deepEqual(out, []);
  assert.equal(err.length, 2);
  assert.match(err[0], /^lguest: --block needs a value/);
  assert.match(err[1], /^usage: lguest \[options\] MEM KERNEL/);
});

test("main: --help prints the usage and succeeds", () => {
  const { status, out, err } = run(["--help"]);
  assert.equal(status, 0);
  assert.deepEqual(err, []);
  assert.match(out[0], /^Usage: lguest \[--verbose\]/);
  assert.ok(out.some((line) => line.includes("--bare")));
});

test("main: a missing, unreadable or malformed kernel is one line, status 1", () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-main-"));
  try {
    writeFileSync(join(dir, "junk"), "not a kernel at all");
    const cases: [string[], RegExp][] = [
      [["64", join(dir, "missing")], /kernel .*missing does not exist/],
      [["64", dir], /is a directory/],
      [["64", join(dir, "junk")], /neither an ELF file nor a bzImage/],
      [["--initrd=" + join(dir, "nope"), "64", join(dir, "junk")], /initrd .*nope does not exist|neither an ELF/],
      [["--block=" + join(dir, "nodisk"), "64", join(dir, "junk")], /--block=.*nodisk: no such file/],
    ];
    for (const [argv, pattern] of cases) {
      const { status, err } = run(argv);
      assert.equal(status, 1);
      assert.equal(err.length, 1, err.join("\n"));
      assert.match(err[0], pattern);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("main: a good kernel loads, --verbose prints the layout with the devices in order, the console last", () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-main-"));
  try {
    const kernel = join(dir, "vmlinux");
    const disk = join(dir, "disk.img");
    writeFileSync(kernel, buildElf({ segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(4096, 16) }] }));
    writeFileSync(disk, new Uint8Array(8192));
    // The kernel runs off the end of its nops into a page fault: it dies at once, which is all we need.
    const run = spawnSync("npx", ["tsx", "lguest", "--verbose", `--block=${disk}`, "64m", kernel, "console=hvc0"], { encoding: "utf8", input: "" });
    assert.deepEqual(run.stdout.trimEnd().split("\n"), [
      `device 0: block ${disk} (irq 1, 1 page(s) at 0x4001000)`,
      "device 1: console (irq 2)",
      "Section 0: size 4096 addr 0x100000",
      "Linear mapping of 16384 pages in 16 pte pages at 0x3fef000",
      "ELF vmlinux: page offset 0xc0000000, entry 0xc010001d",
      `Command line at 0x1000: "console=hvc0 "`,
      "Page directory at 0x3fff000, pfn limit 0x4002",
    ]);
    assert.match(run.stderr, /^lguest: the guest died: unhandled trap 14 at /m);
    assert.equal(run.status, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("npx tsx lguest runs the launcher as a program", () => {
  const help = spawnSync("npx", ["tsx", "lguest", "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: lguest/);
  const bad = spawnSync("npx", ["tsx", "lguest", "64", "/nonexistent/vmlinux"], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^lguest: kernel \/nonexistent\/vmlinux does not exist$/m);
  assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/, "no stack trace");
});
