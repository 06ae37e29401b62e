// Guest ids for the whole machine (spec 2.2, 4 and 9.3; book/devices-network.md
// L:138): every Launcher process has a Host of its own, so the Launchers hold
// the ids 0..15 among themselves as abstract sockets, as the one Host of 2007
// numbered every Guest on the machine. The Guest's MAC is made from its id, so
// two Launchers on one --sharenet file must give their Guests different ones.
//
// These tests run the launcher as a person does, with the book's Guest. All but
// the last run on a machine of this test file's own (LGUEST_MACHINE), so that
// Launchers of other programs on this computer cannot change which ids they get.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPeer, stopPeer } from "./helpers/peers.ts";
import { main } from "../lguest.ts";

const root = join(import.meta.dirname, "..");
const machine = `guest-ids-test-${process.pid}`;
process.env.LGUEST_MACHINE = machine;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Launcher {
  child: ChildProcess;
  output(): string;
  errors(): string;
  /** Waits for `pattern` in what the launcher printed after `from` (default: anything since it started). */
  until(pattern: RegExp, from?: number): Promise<RegExpExecArray>;
  /** Types a line at the Guest's prompt and waits for the next prompt; returns what the command printed. */
  command(line: string): Promise<string>;
  exited: Promise<number | string | null>;
  guestId: number;
}

/** Starts `lguest ARGS`, waits for the Guest's banner and its prompt. */
async function launch(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Launcher> {
  const child = spawn(process.execPath, ["--import", "tsx", "lguest.ts", ...args], { cwd: root, env, stdio: ["pipe", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (err += chunk));
  const exited = new Promise<number | string | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  const launcher: Launcher = {
    child, exited, guestId: -1,
    output: () => out,
    errors: () => err,
    async until(pattern, from = 0) {
      for (let waited = 0; ; waited += 25) {
        const found = pattern.exec(out.slice(from));
        if (found) return found;
        if (child.exitCode !== null || child.signalCode !== null) assert.fail(`the launcher ended (${child.exitCode ?? child.signalCode}) before ${pattern}: ${out}${err}`);
        if (waited > 60_000) assert.fail(`no ${pattern} after a minute: ${out}${err}`);
        await sleep(25);
      }
    },
    async command(line) {
      const from = out.length;
      child.stdin!.write(line + "\n");
      const answer = await launcher.until(/^([^]*?)guest> /m, from);
      return answer[1];
    },
  };
  launcher.guestId = Number((await launcher.until(/^lguest\.ts guest kernel: guest (\d+),/m))[1]);
  await launcher.until(/guest> /);
  return launcher;
}

async function halt(...launchers: Launcher[]): Promise<void> {
  for (const l of launchers) l.child.stdin!.write("halt\n");
  assert.deepEqual(await Promise.all(launchers.map((l) => l.exited)), launchers.map(() => 0));
}

/** Holds the abstract name, as a Launcher holds a guest id; undefined if someone else holds it. */
function hold(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) => (error.code === "EADDRINUSE" ? resolve(undefined) : reject(error)));
    server.listen(name, () => resolve(server));
  });
}

const idName = (id: number, on = machine) => (on === "" ? `\0lguest.ts/guest-id/${id}` : `\0lguest.ts@${on}/guest-id/${id}`);
const macOf = (id: number) => `02:00:${(id & 0xff).toString(16).padStart(2, "0")}:${(id >> 8).toString(16).padStart(2, "0")}:00:00`;

test("two launchers on one --sharenet file are guests 0 and 1, with MACs 02:00:00:00:00:00 and 02:00:01:00:00:00 in their slots of the shared page, and ping each other; a third joins as guest 2", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-ids-"));
  const file = join(dir, "lan");
  const running: Launcher[] = [];
  let peer: Awaited<ReturnType<typeof startPeer>> | undefined;
  try {
    const a = await launch([`--sharenet=${file}`, "64m", "images/vmlinux", "ip=10.0.0.1"]);
    running.push(a);
    const b = await launch([`--sharenet=${file}`, "64m", "images/vmlinux", "ip=10.0.0.2"]);
    running.push(b);
    assert.deepEqual([a.guestId, b.guestId], [0, 1]);
    const slotOf = async (l: Launcher, id: number) => {
      const shown = /slot (\d+) of 682, MAC ([0-9a-f:]{17}), up/.exec(await l.command("ifconfig"));
      assert.ok(shown, l.output());
      assert.equal(shown[2], macOf(id), "spec 9.3: 02:00, the two bytes of guestid, 00:00");
      return Number(shown[1]);
    };
    const slotA = await slotOf(a, 0), slotB = await slotOf(b, 1);
    // A third process on the network reads the page as every member sees it.
    peer = await startPeer(file);
    assert.equal(await peer.page(slotA), "020000000000");
    assert.equal(await peer.page(slotB), "020001000000");
    assert.match(await b.command("ping -c 1 10.0.0.1"), /1 packets transmitted, 1 received, 0% packet loss/);
    assert.match(await a.command("ping -c 1 10.0.0.2"), /1 packets transmitted, 1 received, 0% packet loss/);
    assert.match(await a.command("arp"), /10\.0\.0\.2 at 02:00:01:00:00:00 on eth0/);
    assert.match(await b.command("arp"), /10\.0\.0\.1 at 02:00:00:00:00:00 on eth0/);
    const c = await launch([`--sharenet=${file}`, "64m", "images/vmlinux", "ip=10.0.0.3"]);
    running.push(c);
    assert.equal(c.guestId, 2);
    const slotC = await slotOf(c, 2);
    assert.equal(await peer.page(slotC), "020002000000");
    assert.match(await c.command("ping -c 1 10.0.0.1"), /1 packets transmitted, 1 received, 0% packet loss/);
    assert.match(await c.command("arp"), /10\.0\.0\.1 at 02:00:00:00:00:00 on eth0/);
    await halt(...running.splice(0));
  } finally {
    for (const l of running) l.child.kill("SIGKILL");
    if (peer) await stopPeer(peer);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a launcher killed with SIGKILL frees its guest id, and the next launcher takes it", async () => {
  const running: Launcher[] = [];
  try {
    const first = await launch(["64m", "images/vmlinux"]);
    running.push(first);
    const second = await launch(["64m", "images/vmlinux"]);
    running.push(second);
    assert.deepEqual([first.guestId, second.guestId], [0, 1], "id 0 is held while its Launcher lives");
    first.child.kill("SIGKILL");
    assert.equal(await first.exited, "SIGKILL");
    running.shift();
    const next = await launch(["64m", "images/vmlinux"]);
    running.push(next);
    assert.equal(next.guestId, 0, "the kernel closed the dead Launcher's socket, so id 0 is free again");
    await halt(...running.splice(0));
  } finally {
    for (const l of running) l.child.kill("SIGKILL");
  }
});

test("with all 16 ids held, a 17th launcher stops with one line (the Host's ENOSPC); the first id freed is the next one taken", async () => {
  const held: Server[] = [];
  try {
    for (let id = 0; id < 16; id++) held.push((await hold(idName(id)))!);
    assert.equal(held.filter(Boolean).length, 16);
    const seventeenth = spawn(process.execPath, ["--import", "tsx", "lguest.ts", "64m", "images/vmlinux"], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
    let out = "", err = "";
    seventeenth.stdout.on("data", (chunk) => (out += chunk));
    seventeenth.stderr.on("data", (chunk) => (err += chunk));
    seventeenth.stdin.end("halt\n"); // should it boot after all, its Guest powers off rather than wait for ever
    const status = await new Promise((resolve) => seventeenth.on("exit", resolve));
    assert.equal(status, 1);
    assert.equal(out, "");
    assert.equal(err, "lguest: no free guest id: this machine runs 16 guests already, the most one lguest Host runs (ENOSPC)\n");
    await new Promise((resolve) => held[9].close(resolve));
    const next = await launch(["64m", "images/vmlinux"]);
    assert.equal(next.guestId, 9);
    await halt(next);
  } finally {
    for (const server of held) server.close();
  }
});

test("a Launcher in this process takes the first free id, and gives it back however its run ends: a Guest that powers off, a Guest that dies", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-ids-"));
  const trace = join(dir, "trace");
  const other = (await hold(idName(0)))!;
  const quiet = { log: console.log, error: console.error };
  console.log = console.error = () => {};
  try {
    // main() is the launcher itself; stdin here is not the Guest's to read, so the
    // Guests come with their own ending on the command line.
    const halted = await main(["--clock=virtual", "--trace=hcall", `--trace-file=${trace}`, "64m", "images/vmlinux", "run=halt"]);
    const traced = readFileSync(trace, "utf8");
    const died = await main(["--clock=virtual", "64m", "images/vmlinux", "hostile=early"]);
    Object.assign(console, quiet);
    assert.deepEqual([halted, died], [0, 1]);
    assert.match(traced, /^guest 1: hcall LGUEST_INIT\(/, "id 0 is someone else's, so the Guest was guest 1");
    const free = await hold(idName(1));
    assert.ok(free, "id 1 is free after both runs");
    free.close();
  } finally {
    Object.assign(console, quiet);
    other.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a LGUEST_MACHINE that is not a name is one line", async () => {
  const errors: string[] = [];
  const quiet = console.error;
  console.error = (line: string) => errors.push(line);
  process.env.LGUEST_MACHINE = "no/slashes";
  try {
    assert.equal(await main(["--clock=virtual", "64m", "images/vmlinux", "run=halt"]), 1);
  } finally {
    process.env.LGUEST_MACHINE = machine;
    console.error = quiet;
  }
  assert.deepEqual(errors, ["lguest: LGUEST_MACHINE=no/slashes: a machine's name is 1 to 32 letters, digits, '.', '_' or '-'"]);
});

test("on the machine itself (no LGUEST_MACHINE), two launchers hold two different ids at lguest.ts/guest-id/N", async () => {
  const env = { ...process.env };
  delete env.LGUEST_MACHINE;
  const running: Launcher[] = [];
  try {
    running.push(await launch(["64m", "images/vmlinux"], env));
    running.push(await launch(["64m", "images/vmlinux"], env));
    const [one, two] = running;
    assert.notEqual(one.guestId, two.guestId);
    for (const l of running) {
      assert.ok(l.guestId >= 0 && l.guestId < 16);
      assert.equal(await hold(idName(l.guestId, "")), undefined, `${idName(l.guestId, "").slice(1)} is held while guest ${l.guestId} runs`);
    }
    await halt(...running.splice(0));
  } finally {
    for (const l of running) l.child.kill("SIGKILL");
  }
});
