// --tunnet (spec 9.3; book/devices-tap.md): a real TAP device, made by the
// launcher in a network namespace of the test's own (unshare --net, as
// root), and pinged from the host's side. Where this machine cannot make a
// TAP in a namespace, each test says so: as a failure under CI (which runs
// as root on a machine that can), as a skip with the reason elsewhere.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const node = [process.execPath, "--import", "tsx"];

/** Why this machine cannot make a TAP in a fresh network namespace, or undefined if it can. */
function cannotMakeTap(): string | undefined {
  const missing = ["unshare", "ip", "ping", "setpriv"].filter((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) return `missing ${missing.join(", ")}`;
  const trial = spawnSync("unshare", ["--net", "ip", "tuntap", "add", "dev", "tap0", "mode", "tap"], { encoding: "utf8" });
  if (trial.status !== 0) return `unshare --net ip tuntap add failed: ${(trial.stderr || trial.error?.message || "").trim()}`;
  return undefined;
}

const reason = cannotMakeTap();

function needTap(t: TestContext): boolean {
  if (reason === undefined) return true;
  // A machine that must run it (LGUEST_REQUIRE_TAP=1) fails instead of skipping.
  if (process.env.LGUEST_REQUIRE_TAP) assert.fail(`this machine cannot make a TAP device in a network namespace (${reason})`);
  t.skip(`NOT RUN: this machine cannot make a TAP device in a network namespace (${reason})`);
  return false;
}

/** Runs a shell script in a new network namespace. */
function inNamespace(script: string, timeout = 120_000) {
  return spawnSync("unshare", ["--net", "bash", "-c", script], { cwd: root, encoding: "utf8", timeout });
}

const q = (words: string[]) => words.map((w) => `'${w}'`).join(" ");

test("--tunnet=IP in a network namespace: the launcher makes a TAP, gives it IP, and the host pings the guest through it", (t) => {
  if (!needTap(t)) return;
  const run = inNamespace(`ip link set lo up; ${q([...node, "test/helpers/tap-peer.ts", "192.168.19.1", "192.168.19.2"])}`);
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim().split("\n").pop()!);
  assert.equal(result.status, 0, result.output);
  assert.match(result.output, /3 packets transmitted, 3 received, 0% packet loss/);
  assert.match(result.output, /64 bytes from 192\.168\.19\.2: icmp_seq=1/);
  const mac = /tap0: .*link\/ether ([0-9a-f:]{17})/.exec(result.links)?.[1];
  assert.ok(mac, result.links);
  const promiscuous = [...Buffer.from(mac.replace(/:/g, ""), "hex")];
  promiscuous[0] |= 1;
  assert.equal(result.slot0, Buffer.from(promiscuous).toString("hex"), "slot 0 is the TAP's MAC with the promiscuous bit");
  assert.equal(result.features, 0x8001, "features: the Guest's slot 1 and DEVICE_F_RANDOMNESS, no NOCSUM");
});

test("--tunnet=bridge:NAME: the TAP joins the bridge, and the host pings the guest across it", (t) => {
  if (!needTap(t)) return;
  const run = inNamespace([
    "ip link set lo up",
    "ip link add br0 type bridge",
    "ip addr add 192.168.19.1/24 dev br0",
    "ip link set br0 up",
    `${q([...node, "test/helpers/tap-peer.ts", "bridge:br0", "192.168.19.2"])} & peer=$!`,
    "sleep 0.5; for i in $(seq 100); do ip -o link show master br0 | grep -q tap && break; sleep 0.1; done",
    "ip -o link show master br0 | grep -o 'tap[0-9]*' >&2",
    "wait $peer",
  ].join("; "));
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /^tap0$/m, "the TAP is a port of br0");
  const result = JSON.parse(run.stdout.trim().split("\n").pop()!);
  assert.equal(result.status, 0, result.output);
  assert.match(result.output, /3 received/);
});

test("without the privilege to make a TAP (no CAP_NET_ADMIN), --tunnet says so in one line, status 1", (t) => {
  if (!needTap(t)) return;
  const run = inNamespace(`setpriv --bounding-set=-net_admin --inh-caps=-net_admin ${q([...node, "lguest.ts", "--tunnet=192.168.19.1", "64m", "images/vmlinux"])} < /dev/null`);
  assert.equal(run.status, 1);
  assert.equal(run.stderr, "lguest: --tunnet=192.168.19.1: creating a TAP device needs root (CAP_NET_ADMIN), and this launcher does not have it\n");
});

test("the launcher program with --tunnet: device 0 is a network on a TAP with the host's address, and the guest runs", (t) => {
  if (!needTap(t)) return;
  const run = inNamespace(`(sleep 4; ip -o -4 addr show >&2; echo halt) | ${q([...node, "lguest.ts", "--verbose", "--tunnet=192.168.19.1", "64m", "images/vmlinux"])}`);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^device 0: tun net tap0 192\.168\.19\.1 \(irq 1, 1 page\(s\) at 0x4001000\)$/m);
  assert.match(run.stdout, /lguest bus: device 0: network, irq 1/);
  assert.match(run.stderr, /tap0\s+inet 192\.168\.19\.1\/24/);
});
