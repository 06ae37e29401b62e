// The gdb stub (book/debugger-gdb.md) driven by the real gdb (Debian's,
// installed by .ci/run), on the book's Guest and on a bare test kernel,
// and by hand over a socket for what gdb never sends (bad packets). The
// references: gdb's own symbol resolution and disassembler for where a
// stop must be; the golden trace for "the Guest cannot tell it was
// debugged"; QEMU's recorded output for the bare kernel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");

interface Launched {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/** Starts the launcher with --gdb=0 and waits for the port it prints. */
function launch(args: string[], input?: string): Promise<Launched> {
  // The launcher itself, not through npx: no wrapper process shares its
  // stdin pipe (or misses the signals sent to it).
  const child = spawn(process.execPath, ["--import", "tsx", "lguest.ts", "--gdb=0", ...args], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("latin1")));
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  if (input !== undefined) child.stdin!.end(input);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no gdb port after 60 s: ${stderr}`)), 60_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const port = /waiting for gdb: target remote 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (port) {
        clearTimeout(timer);
        resolve({ child, port: Number(port[1]), stdout: () => stdout, stderr: () => stderr, exit });
      }
    });
  });
}

/** Runs gdb in batch mode on `file` with the commands; resolves to what it printed. */
function gdb(port: number, file: string, commands: string[], options: { interruptAfter?: number } = {}): Promise<string> {
  const args = ["-batch", "-nx", "-ex", `target remote 127.0.0.1:${port}`, ...commands.flatMap((c) => ["-ex", c]), file];
  const child = spawn("gdb", args, { cwd: root });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  if (options.interruptAfter !== undefined) setTimeout(() => child.kill("SIGINT"), options.interruptAfter);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => reject(new Error(`gdb could not run (apt-get install gdb): ${error.message}`)));
    child.on("exit", () => resolve(output));
  });
}

test("gdb on the book's Guest: breaks on symbols, steps, watches, runs to the end; the trace is the golden one", { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-gdb-"));
  try {
    const traceFile = join(dir, "trace.txt");
    const machine = await launch(["--clock=virtual", "--trace=hcall,trap,irq,dma,pgtable,count", `--trace-file=${traceFile}`,
      "64m", "images/vmlinux"], "echo hi\nhalt\n");
    const out = await gdb(machine.port, "images/vmlinux", [
      "break lguest_init", "continue", "info registers eip", "x/2i $pc", "stepi", "info registers eip", "delete",
      "watch *(int*)&typed_head", "continue", "delete",
      "hbreak echo", "continue", "info registers eip", "delete",
      "continue",
    ]);
    const init = /Breakpoint 1 at (0x[0-9a-f]+)/.exec(out)?.[1];
    assert.ok(init, out);
    assert.match(out, new RegExp(`Breakpoint 1, ${init} in lguest_init \\(\\)`));
    assert.match(out, new RegExp(`eip\\s+${init}\\s+${init} <lguest_init>`));
    const second = new RegExp(`=> ${init} <lguest_init>:.*\\n\\s+(0x[0-9a-f]+) <lguest_init\\+\\d+>:`).exec(out)?.[1];
    assert.ok(second, "gdb disassembled two instructions");
    assert.match(out, new RegExp(`eip\\s+${second}\\s+${second} <lguest_init\\+\\d+>`), "stepi moved eip to the next instruction");
    assert.match(out, /Hardware watchpoint 2: \*\(int\*\)&typed_head\s+Old value = 0\s+New value = 1\s+0x[0-9a-f]+ in console_interrupt \(\)/);
    const echo = /Hardware assisted breakpoint 3 at (0x[0-9a-f]+)/.exec(out)?.[1];
    assert.ok(echo, out);
    assert.match(out, new RegExp(`eip\\s+${echo}\\s+${echo} <echo>`));
    // gdb prints the stub's console message and the end of the target on
    // two different streams, so their order here is the pipes' race.
    assert.match(out, /lguest: CRASH: Power down/);
    assert.match(out, /\[Inferior 1 \(Remote target\) exited normally\]/);
    assert.equal(await machine.exit, 0);
    assert.match(machine.stdout(), /guest> echo hi\r?\nhi\r?\n/);
    const golden = readFileSync(join(root, "test", "golden", "boot-trace.txt"), "utf8");
    assert.equal(readFileSync(traceFile, "utf8"), golden, "with gdb stopping it five times, the Guest did exactly what it does alone");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("gdb on a bare test kernel: software and hardware breakpoints and a watchpoint beside the kernel's own DR0-DR3", { timeout: 180_000 }, async () => {
  const machine = await launch(["--bare", "test/kernels/bin/debug.elf"]);
  const out = await gdb(machine.port, "test/kernels/bin/debug.elf", [
    "break x_bp", "hbreak x_mid", "continue", "info registers eip cs", "delete 1", "continue", "info registers eip", "delete",
    "watch *(int*)((char*)&dbg_area + 964)", "continue", "info registers eip",
    "delete", "continue",
  ]);
  const bp = /Breakpoint 1 at 0x([0-9a-f]+)/.exec(out)?.[1];
  const mid = /Hardware assisted breakpoint 2 at 0x([0-9a-f]+)/.exec(out)?.[1];
  assert.ok(bp && mid, out);
  assert.match(out, new RegExp(`Breakpoint 1, 0x0*${bp} in x_bp \\(\\)\\s+eip\\s+0x${bp}\\s+0x${bp} <x_bp>\\s+cs\\s+0x8\\s`));
  assert.match(out, new RegExp(`Breakpoint 2, 0x0*${mid} in x_mid \\(\\)\\s+eip\\s+0x${mid}\\s`));
  assert.match(out, /Hardware watchpoint 3: .*\s+Old value = 0\s+New value = 286331153\s+0x[0-9a-f]+ in d_write4 \(\)/,
    "0x11111111, written by the first snippet that writes the word");
  assert.match(out, /\[Inferior 1 \(Remote target\) exited with code 01\]/);
  assert.equal(await machine.exit, 1, "the kernel's own exit status: (0 << 1) | 1");
  let expected = readFileSync(join(root, "test/kernels/expected/debug.txt"), "latin1");
  for (const line of readFileSync(join(root, "test/kernels/sdm-differences.txt"), "utf8").split("\n")) {
    const [kernel, qemu, sdm] = line.split("\t");
    if (kernel === "debug") expected = expected.replace(qemu + "\n", sdm + "\n");
  }
  assert.equal(machine.stdout(), expected, `the kernel's breakpoints and watchpoints behave as without gdb (stderr: ${machine.stderr()})`);
});

/** A packet with its checksum. */
function packet(data: string): string {
  let sum = 0;
  for (const c of data) sum = (sum + c.charCodeAt(0)) & 0xff;
  return `$${data}#${sum.toString(16).padStart(2, "0")}`;
}

test("bad packets get error replies and break nothing; ^C stops the Guest; kill ends it", { timeout: 180_000 }, async () => {
  const machine = await launch(["--clock=virtual", "64m", "images/vmlinux"]);
  const socket = connect(machine.port, "127.0.0.1");
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
  await new Promise((resolve) => socket.once("connect", resolve));
  const ask = async (bytes: string, until: RegExp): Promise<string> => {
    const start = received.length;
    socket.write(bytes, "latin1");
    for (let k = 0; k < 200 && !until.test(received.slice(start)); k++) await new Promise((r) => setTimeout(r, 25));
    const reply = received.slice(start);
    assert.match(reply, until, `reply to ${JSON.stringify(bytes.slice(0, 40))}`);
    return reply;
  };
  await ask(packet("?"), /^\+\$T02thread:1;/);
  await ask("$?#00", /^-$/);
  await ask(packet("mzz,4"), /^\+\$E01#a6$/);
  await ask(packet("mffffff00,4"), /^\+\$E14#/);
  await ask(packet("Mc0100000,2:zz"), /^\+\$E01#/);
  await ask(packet("Z9,c0100000,1"), /^\+\$E01#/);
  await ask(packet("P99=00000000"), /^\+\$E01#/);
  await ask(packet("qNoSuchThing"), /^\+\$#00$/);
  await ask("garbage without a dollar", /^$/);
  await ask("$" + "a".repeat(70_000), /^$/);
  await ask(packet("qXfer:features:read:target.xml:0,fff"), /^\+\$l<\?xml[^]*org\.gnu\.gdb\.i386\.core[^]*<\/target>/);
  await ask(packet("g"), /^\+\$[0-9a-f]{352}#/);
  const second = connect(machine.port, "127.0.0.1");
  const refused = await new Promise<string>((resolve) => {
    let text = "";
    second.on("data", (chunk: Buffer) => (text += chunk.toString()));
    second.on("close", () => resolve(text));
  });
  assert.equal(refused, "$E01#a6", "one gdb at a time");
  await ask(packet("D"), /^\+\$OK#9a$/);
  socket.end();
  const out = await gdb(machine.port, "images/vmlinux", ["continue", "info registers eip", "kill"], { interruptAfter: 8000 });
  assert.match(out, /Program received signal SIGINT, Interrupt\.\s+0x[0-9a-f]+ in \w+/);
  assert.match(out, /\[Inferior 1 \(Remote target\) killed\]/);
  assert.equal(await machine.exit, 1);
  assert.match(machine.stderr(), /lguest: the guest died: killed by gdb/);
});

test("a Guest held for gdb (nobody connected) still quits on three ^C, with the console's status 2", { timeout: 180_000 }, async () => {
  const machine = await launch(["--clock=virtual", "64m", "images/vmlinux"]);
  machine.child.stdin!.end("\x03\x03\x03");
  assert.equal(await machine.exit, 2);
  assert.match(machine.stderr(), /three \^C in a second: quitting/);
});
