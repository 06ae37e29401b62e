// The devices with the book's own Guest and its drivers (book/drivers.md),
// through the launcher program as a person runs it: a sector written,
// the Guest powered off and booted again, the sector read back; two
// launchers on one --sharenet file pinging each other; the host pinging
// the Guest through --tunnet's TAP, in a network namespace of the test's.
//
// The drivers come from another branch of the work (guest-drivers). Until
// images/vmlinux has them, each test says so and is skipped; once the
// image has them, the tests run and must pass.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const image = readFileSync(join(root, "images", "vmlinux"));
const lguest = [process.execPath, "--import", "tsx", join(root, "lguest.ts")];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function needDrivers(t: TestContext, what: "disk [lgbX]" | "[-c N] ADDRESS"): boolean {
  if (image.includes(what)) return true;
  t.skip(`NOT RUN: images/vmlinux has no ${what.startsWith("disk") ? "block" : "network"} driver yet (it comes with the guest-drivers work)`);
  return false;
}

function run(args: string[], input: string) {
  return spawnSync(lguest[0], [...lguest.slice(1), ...args], { cwd: root, input, encoding: "utf8", timeout: 120_000 });
}

test("the book's Guest writes a sector of --block=FILE, powers off, boots again and reads it back; the file holds it in between", (t) => {
  if (!needDrivers(t, "disk [lgbX]")) return;
  const dir = mkdtempSync(join(tmpdir(), "lguest-disk-"));
  try {
    const disk = join(dir, "disk.img");
    writeFileSync(disk, "");
    truncateSync(disk, 1 << 20);
    const first = run([`--block=${disk}`, "64m", "images/vmlinux"], "disk lgba write 5 written-before-power-off\nhalt\n");
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /lgba: wrote sector 5/);
    assert.equal(readFileSync(disk).subarray(5 * 512, 5 * 512 + 24).toString(), "written-before-power-off");
    const second = run([`--block=${disk}`, "64m", "images/vmlinux"], "disk lgba read 5\nhalt\n");
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /\|written-before-p\|\r?\n.*\|ower-off\.{8}\|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("two launchers of the book's Guest on one --sharenet file: one pings the other and gets every reply", async (t) => {
  if (!needDrivers(t, "[-c N] ADDRESS")) return;
  const dir = mkdtempSync(join(tmpdir(), "lguest-lan-"));
  try {
    const file = join(dir, "lan");
    const first = spawn(lguest[0], [...lguest.slice(1), `--sharenet=${file}`, "64m", "images/vmlinux", "ip=192.168.19.1"], {
      cwd: root, stdio: ["pipe", "pipe", "pipe"],
    });
    let firstOut = "";
    first.stdout.on("data", (chunk) => (firstOut += chunk));
    const firstExit = new Promise((resolve) => first.on("exit", resolve));
    for (let waited = 0; !/guest> /.test(firstOut); waited += 50) {
      if (waited > 60_000) assert.fail(`the first launcher never reached its prompt: ${firstOut}`);
      await sleep(50);
    }
    const second = spawn(lguest[0], [...lguest.slice(1), `--sharenet=${file}`, "64m", "images/vmlinux", "ip=192.168.19.2"], {
      cwd: root, stdio: ["pipe", "pipe", "pipe"],
    });
    let secondOut = "";
    second.stdout.on("data", (chunk) => (secondOut += chunk));
    const secondExit = new Promise((resolve) => second.on("exit", resolve));
    second.stdin.write("ping -c 3 192.168.19.1\n");
    for (let waited = 0; !/packet loss/.test(secondOut); waited += 50) {
      if (waited > 60_000) assert.fail(`no ping statistics: ${secondOut}`);
      await sleep(50);
    }
    second.stdin.write("halt\n");
    first.stdin.write("halt\n");
    await Promise.all([firstExit, secondExit]);
    assert.match(secondOut, /3 packets transmitted, 3 received, 0% packet loss/);
    assert.deepEqual([first.exitCode, second.exitCode], [0, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the host pings the book's Guest through --tunnet's TAP, in a network namespace made for the test", (t) => {
  if (!needDrivers(t, "[-c N] ADDRESS")) return;
  const trial = spawnSync("unshare", ["--net", "ip", "tuntap", "add", "dev", "tap0", "mode", "tap"], { encoding: "utf8" });
  if (trial.status !== 0 || spawnSync("sh", ["-c", "command -v ping"]).status !== 0) {
    const why = `this machine cannot make a TAP in a network namespace or has no ping (${(trial.stderr ?? "").trim()})`;
    if (process.env.CI) assert.fail(why);
    t.skip(`NOT RUN: ${why}`);
    return;
  }
  const command = `${lguest.map((w) => `'${w}'`).join(" ")} --tunnet=192.168.19.1 64m images/vmlinux ip=192.168.19.2/24`;
  const result = spawnSync("unshare", ["--net", "bash", "-c", `ip link set lo up; (sleep 6; ping -c 3 -W 3 192.168.19.2 >&2; echo halt) | ${command}`], {
    cwd: root, encoding: "utf8", timeout: 120_000,
  });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /3 packets transmitted, 3 received, 0% packet loss/);
});
