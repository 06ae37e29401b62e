// The console (spec 9.1; book/devices-console.md): input is never lost,
// three ^C quit, a closed stdout ends quietly. The model is driven by
// hand-built Guests and by the book's Guest in-process; the terminal
// backend by the launcher run as a program, with pipes (here) and in a
// real terminal (test/devices-console-tty.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LHCALL_BIND_DMA } from "../src/host/constants.ts";
import { ConsoleDevice } from "../src/devices/console.ts";
import { DeviceBus } from "../src/devices/bus.ts";
import { GuestLink } from "../src/devices/link.ts";
import { ControlCCounter } from "../src/launcher/terminal.ts";
import { boot, SCRATCH, tinyGuest } from "./helpers/tiny-guest.ts";
import { hcall, jmpSelf } from "./helpers/x86.ts";
import { bootGuest } from "./helpers/guest-session.ts";
import { buildElf, genuine } from "./helpers/images.ts";

const kernel = new Uint8Array(readFileSync(join(import.meta.dirname, "..", "images", "vmlinux")));

// --- the model ---------------------------------------------------------------

/** A Guest that binds one console input buffer of `size` bytes at BUFFER, irq 2. */
function consoleRig(size: number) {
  const BUFFER = SCRATCH + 0x100;
  const descriptor = new Uint8Array(100);
  new DataView(descriptor.buffer).setUint32(4, BUFFER, true);
  new DataView(descriptor.buffer).setUint16(68, size, true);
  const t = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, 0, SCRATCH, (1 << 8) | 2), ...jmpSelf], { memory: [[SCRATCH, [...descriptor]]] });
  t.run(5_000);
  const output: Uint8Array[] = [];
  const console = new ConsoleDevice((bytes) => output.push(bytes));
  const bus = new DeviceBus([console]);
  bus.attach([{ index: 1, pfn: 0, memory: new Uint8Array(0) }], new GuestLink(t.host, t.guest, () => {}));
  const taken = () => new TextDecoder().decode(t.memory.ram.subarray(BUFFER, BUFFER + t.u32(SCRATCH)));
  return { t, console, bus, BUFFER, taken };
}

test("console input waits for a free buffer: a buffer the Guest has not emptied is never refilled", () => {
  const { t, console, bus, taken } = consoleRig(16);
  console.receive(new TextEncoder().encode("0123456789abcdefGHIJKLMNOPQRSTUVwxyz"));
  bus.deliverInput();
  assert.equal(taken(), "0123456789abcdef");
  assert.equal(t.guest.irqsPending & (1 << 2), 1 << 2, "the binding's irq");
  // GETDMA's quirk would hand the busy buffer back; the console must not take it.
  for (let k = 0; k < 3; k++) bus.deliverInput();
  assert.equal(taken(), "0123456789abcdef", "unread input was not overwritten");
  assert.equal(t.u32(SCRATCH), 16, "and its used_len is as the Launcher left it");
  t.ram.setUint32(SCRATCH, 0, true); // the Guest consumes it
  bus.deliverInput();
  assert.equal(taken(), "GHIJKLMNOPQRSTUV");
  t.ram.setUint32(SCRATCH, 0, true);
  bus.deliverInput();
  assert.equal(taken(), "wxyz");
  assert.equal(console.inputWaiting(), false);
});

test("console input that arrives before the Guest binds a buffer is kept, not discarded", () => {
  const t = tinyGuest([...boot, ...jmpSelf]);
  const console = new ConsoleDevice(() => {});
  const bus = new DeviceBus([console]);
  bus.attach([{ index: 0, pfn: 0, memory: new Uint8Array(0) }], new GuestLink(t.host, t.guest, () => {}));
  console.receive(new Uint8Array([65, 66]));
  bus.deliverInput();
  assert.equal(console.inputWaiting(), true);
  assert.equal(t.guest.dead, undefined);
});

test("console output: the pieces are written in order and used_len is their total", () => {
  const { t, console, bus } = consoleRig(16);
  const written: number[][] = [];
  const device = new ConsoleDevice((bytes) => written.push([...bytes]));
  const other = new DeviceBus([device]);
  other.attach([{ index: 0, pfn: 0, memory: new Uint8Array(0) }], new GuestLink(t.host, t.guest, () => {}));
  const SEND = SCRATCH + 0x400;
  const descriptor = new DataView(t.memory.ram.buffer, SEND, 100);
  descriptor.setUint32(4, SCRATCH + 0x500, true);
  descriptor.setUint16(68, 3, true);
  descriptor.setUint32(8, SCRATCH + 0x600, true);
  descriptor.setUint16(70, 2, true);
  t.memory.ram.set([1, 2, 3], SCRATCH + 0x500);
  t.memory.ram.set([4, 5], SCRATCH + 0x600);
  other.handleDma(SEND, 0);
  assert.deepEqual(written, [[1, 2, 3, 4, 5]]);
  assert.equal(t.u32(SEND), 5);
  assert.equal(console.inputWaiting(), false);
  void bus;
});

// --- bursts through the book's Guest ------------------------------------------

/** What the book's shell prints for typed input: each line echoed after the prompt, then what the command says. */
function transcript(input: string): string {
  let out = "";
  for (const line of input.split("\n").slice(0, -1)) {
    const kept = line.slice(0, 127);
    out += "guest> " + kept + "\n";
    const [name, ...words] = kept.trimStart().split(" ");
    if (name === "echo") out += words.join(" ").trimStart() + "\n";
    else if (name !== "") out += `${name}: no such command; try help\n`;
  }
  return out;
}

/** `size` bytes of shell input: numbered echo lines, cut at exactly `size`. */
function burst(size: number): string {
  let text = "";
  for (let n = 0; text.length < size; n++) text += `echo ${n} ${"abcdefghijklmnopqrstuvwxyz".slice(n % 26)}\n`;
  return text.slice(0, size);
}

for (const size of [1, 255, 256, 257, 4096, 65536]) {
  test(`a burst of ${size} byte(s) typed at once reaches the book's Guest whole: it echoes every byte`, () => {
    const session = bootGuest(kernel, []);
    session.run(() => session.output.endsWith("guest> "));
    const start = session.output.length - "guest> ".length;
    const input = burst(size) + "\necho END\n";
    session.type(input);
    // Only the end of the output is looked at: searching all of it after every DMA would cost more than the Guest.
    session.run(() => session.output.slice(-8).includes("\nEND\r\n"), 5_000_000_000);
    const shell = session.output.slice(start).replace(/\r\n/g, "\n");
    assert.equal(shell.slice(0, shell.indexOf("\nEND\n") + 5), transcript(input));
  });
}

// --- the launcher as a program -------------------------------------------------

const lguestArgs = ["--import", "tsx", join(import.meta.dirname, "..", "lguest.ts")];

function spinningKernel(dir: string): string {
  const text = new Uint8Array(64).fill(0x90);
  text.set(genuine, 0);
  text.set(jmpSelf, genuine.length);
  const path = join(dir, "spin.elf");
  writeFileSync(path, buildElf({ segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: text }] }));
  return path;
}

/** Starts the launcher with stdin a pipe; resolves with its status and output once it exits (or kills it after `limit` ms). */
function launch(args: string[], feed: (write: (text: string) => void, output: () => string) => Promise<void>, limit = 60_000) {
  const child = spawn(process.execPath, [...lguestArgs, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const killer = setTimeout(() => child.kill("SIGKILL"), limit);
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on("close", (status) => {
      clearTimeout(killer);
      resolve({ status, stdout, stderr });
    });
  });
  void feed((text) => child.stdin.write(text), () => stdout);
  return done;
}

const until = async (condition: () => boolean) => {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("piped input of 4 KiB reaches the Guest of the launcher run as a program, every line echoed", () => {
  const input = burst(4096) + "\nhalt\n";
  const run = spawnSync(process.execPath, [...lguestArgs, "--clock=virtual", "64m", "images/vmlinux"], { input, encoding: "utf8", timeout: 120_000 });
  assert.equal(run.status, 0, run.stderr);
  const shell = run.stdout.slice(run.stdout.indexOf("guest> ")).replace(/\r\n/g, "\n");
  assert.equal(shell, transcript(input.replace(/halt\n$/, "")) + "guest> halt\nPower down.\n");
});

for (const [guestKind, makeArgs] of [
  ["a Guest reading its console", () => ["64m", "images/vmlinux"]],
  ["a Guest spinning with its console unread", (dir: string) => ["64m", spinningKernel(dir)]],
] as const) {
  for (const [how, send] of [
    ["in one write", async (write: (t: string) => void) => write("\x03\x03\x03")],
    ["in three writes", async (write: (t: string) => void) => {
      for (let k = 0; k < 3; k++) {
        write("\x03");
        await sleep(150);
      }
    }],
  ] as const) {
    test(`three ^C ${how} quit ${guestKind}: status 2 and one line saying so`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "lguest-ctrlc-"));
      try {
        const reading = guestKind.includes("reading");
        const run = await launch(makeArgs(dir), async (write, output) => {
          if (reading) await until(() => output().includes("guest> "));
          else await sleep(1500);
          await send(write);
        });
        assert.equal(run.status, 2, run.stderr);
        assert.equal(run.stderr, "lguest: three ^C in a second: quitting\n");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

test("three ^C spread over more than a second, or with other input between, do not quit", async () => {
  const run = await launch(["64m", "images/vmlinux"], async (write, output) => {
    await until(() => output().includes("guest> "));
    write("\x03\x03");
    await sleep(1300);
    write("\x03");
    write("\x03x\x03");
    await sleep(300);
    write("\nhalt\n");
  });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, "");
});

test("the ^C rule: three ^C bytes in a row, the first and the third within a second", () => {
  const counter = () => new ControlCCounter();
  assert.equal(counter().feed(new Uint8Array([3, 3, 3]), 0), true, "one read");
  const spread = counter();
  assert.equal(spread.feed(new Uint8Array([3]), 0), false);
  assert.equal(spread.feed(new Uint8Array([3]), 500), false);
  assert.equal(spread.feed(new Uint8Array([3]), 1000), true, "exactly a second");
  const slow = counter();
  slow.feed(new Uint8Array([3, 3]), 0);
  assert.equal(slow.feed(new Uint8Array([3]), 1001), false, "just over a second");
  assert.equal(slow.feed(new Uint8Array([3]), 1100), false);
  assert.equal(slow.feed(new Uint8Array([3]), 1200), true, "but the last three are within one");
  assert.equal(counter().feed(new Uint8Array([3, 3, 65, 3]), 0), false, "another byte in between starts again");
  assert.equal(counter().feed(new Uint8Array([104, 3, 3, 3, 10]), 0), true, "three in a row among other input");
});

test("lguest ... | head -2 ends quietly with status 141, like a program killed by SIGPIPE", () => {
  const run = spawnSync("bash", ["-c", `${process.execPath} ${lguestArgs.join(" ")} 64m images/vmlinux < /dev/null | head -2; echo "status \${PIPESTATUS[0]}" >&2`], {
    encoding: "utf8", timeout: 120_000,
  });
  assert.equal(run.stdout.split("\n").length, 3, run.stdout);
  assert.equal(run.stderr, "status 141\n");
});

test("a --trace-file that cannot be written is a one-line error, status 1", () => {
  const run = spawnSync(process.execPath, [...lguestArgs, "--trace", "--trace-file=/nonexistent/folder/trace.txt", "64m", "images/vmlinux"], {
    encoding: "utf8", input: "", timeout: 60_000,
  });
  assert.equal(run.status, 1);
  assert.equal(run.stderr, "lguest: --trace-file=/nonexistent/folder/trace.txt: cannot write the trace there (its folder does not exist)\n");
});
