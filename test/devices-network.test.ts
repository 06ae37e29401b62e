// The network (spec 9.3; book/devices-network.md): the model with puppet
// Guests on the real Host, and --sharenet between real processes (each
// test/helpers/net-peer.ts: the real backend, a puppet Guest, its own Host).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { Host } from "../src/host/host.ts";
import { NetworkDevice, type NetworkPort } from "../src/devices/network.ts";
import { NET_F_NOCSUM } from "../src/devices/device.ts";
import { shareNetDevice } from "../src/launcher/sharenet.ts";
import { frameBytes, hex, netGuest, settle, RX_COUNT, RX_SIZE, PAGE_GPA, IRQ } from "./helpers/net-guest.ts";
import { framesOf, startPeer, stopPeer, type Peer } from "./helpers/peers.ts";

/** Where this process's Launchers put their abstract socket names (L:138: LGUEST_MACHINE, if set, names the machine). */
const machinePrefix = () => (process.env.LGUEST_MACHINE ? `\0lguest.ts@${process.env.LGUEST_MACHINE}/` : "\0lguest.ts/");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A port that records what it is given. */
function recordingPort(taken = (frame: Uint8Array) => frame.length) {
  const sent: [number, string][] = [];
  const changes: [number, string][] = [];
  const port: NetworkPort = {
    send: (slot, frame) => {
      sent.push([slot, hex(frame)]);
      return taken(frame);
    },
    slotChanged: (slot, entry) => changes.push([slot, hex(entry)]),
  };
  return { port, sent, changes };
}

const device = (slot: number, port: NetworkPort, page?: Uint8Array) =>
  new NetworkDevice({ slot, features: NET_F_NOCSUM, description: "net", port, page, shared: page !== undefined });

// --- the model ----------------------------------------------------------------

test("the network device is type 2 with one page and its slot in the features; a shared page comes with it, marked shared", () => {
  const page = new Uint8Array(4096);
  const d = device(5, recordingPort().port, page);
  assert.equal(d.requirements.type, 2);
  assert.equal(d.requirements.pages, 1);
  assert.equal(d.requirements.features, 5 | 0x4000);
  assert.equal(d.requirements.memory, page);
  assert.equal(d.requirements.shared, true);
  assert.equal(device(1, recordingPort().port).requirements.shared, false);
});

test("a send to a shared key no Guest of this Host bound goes to the Launcher (H:535), and the device hands it to the port for that slot", () => {
  const { port, sent } = recordingPort();
  const g = netGuest(new Host(), device(0, port, new Uint8Array(4096)));
  settle(g);
  g.send(3, frameBytes("to slot three"));
  assert.equal(settle(g), "halted");
  assert.deepEqual(sent, [[3, hex(frameBytes("to slot three"))]]);
  assert.equal(g.lastSendLength(), 13, "used_len is what the port took");
});

test("two Guests on one Host and one page: a send to the other's slot is copied by the Host, and the port never sees it", () => {
  const page = new Uint8Array(4096);
  const host = new Host();
  const a = recordingPort(), b = recordingPort();
  const ga = netGuest(host, device(0, a.port, page));
  const gb = netGuest(host, device(1, b.port, page));
  settle(ga);
  settle(gb);
  ga.send(1, frameBytes("hello b"));
  settle(ga);
  settle(gb);
  assert.deepEqual(gb.takeFrames().map(hex), [hex(frameBytes("hello b"))]);
  assert.equal(ga.lastSendLength(), 7);
  assert.deepEqual([a.sent, b.sent], [[], []]);
});

test("a frame from outside lands in a free bound buffer with the binding's irq; with all eight full, more are dropped and the full ones untouched", () => {
  const d = device(2, recordingPort().port, new Uint8Array(4096));
  const g = netGuest(new Host(), d);
  settle(g);
  for (let k = 0; k < RX_COUNT; k++) assert.equal(d.receive(frameBytes(`frame ${k}`)), true);
  assert.equal(g.t.guest.irqsPending & (1 << IRQ), 1 << IRQ);
  assert.equal(d.receive(frameBytes("one too many")), false);
  assert.equal(d.receive(frameBytes("and another")), false);
  assert.equal(d.dropped, 2);
  assert.deepEqual(g.takeFrames().map((f) => new TextDecoder().decode(f)), Array.from({ length: RX_COUNT }, (_, k) => `frame ${k}`));
  assert.equal(d.receive(frameBytes("room again")), true);
});

test("a frame longer than the buffer is cut to it, and used_len says how much arrived", () => {
  const d = device(0, recordingPort().port, new Uint8Array(4096));
  const g = netGuest(new Host(), d);
  settle(g);
  d.receive(new Uint8Array(3000).fill(7));
  const [frame] = g.takeFrames();
  assert.equal(frame.length, RX_SIZE);
});

test("a send to the Guest's own slot, or to a key past the last slot, is dropped: used_len 0", () => {
  const { port, sent } = recordingPort();
  const g = netGuest(new Host(), device(4, port, new Uint8Array(4096)));
  settle(g);
  g.send(4, frameBytes("to myself"));
  settle(g);
  assert.equal(g.lastSendLength(), 0);
  g.send(700, frameBytes("past the slots"));
  settle(g);
  assert.equal(g.lastSendLength(), 0);
  assert.deepEqual(sent, []);
});

test("a Guest writing its own slot (its MAC, the promiscuous bit) is told to the port, once per change", () => {
  const page = new Uint8Array(4096);
  const { port, changes } = recordingPort();
  const g = netGuest(new Host(), device(3, port, page));
  settle(g);
  page.set([0x02, 0, 0, 3, 0, 0], 18);
  settle(g);
  settle(g);
  page[18] |= 0x01;
  settle(g);
  page.fill(0, 18, 24);
  settle(g);
  assert.deepEqual(changes, [[3, "020000030000"], [3, "030000030000"], [3, "000000000000"]]);
});

test("hostile: a send whose buffer lies outside the Guest's memory kills it with a reason; the port sees nothing", () => {
  const { port, sent } = recordingPort();
  const g = netGuest(new Host(), device(0, port, new Uint8Array(4096)));
  settle(g);
  g.send(1, [[PAGE_GPA + 0x1000, 100]]);
  assert.match(settle(g), /^dead: net output buffer 0x101000\+100 is outside its memory$/);
  assert.deepEqual(sent, []);
});

test("an oversized send, sixteen pieces of a page, goes out whole: 64 KiB", () => {
  const { port, sent } = recordingPort();
  const g = netGuest(new Host(), device(0, port, new Uint8Array(4096)));
  settle(g);
  g.send(1, new Uint8Array(65536).fill(1));
  settle(g);
  assert.equal(sent.length, 1);
  assert.equal(sent[0][1].length, 2 * 65536);
  assert.equal(g.lastSendLength(), 65536);
});

// --- --sharenet between processes -------------------------------------------------

async function withNetwork(body: (file: string, peers: Peer[]) => Promise<void>) {
  const dir = mkdtempSync(join(tmpdir(), "lguest-net-"));
  const peers: Peer[] = [];
  try {
    await body(join(dir, "net"), peers);
  } finally {
    await Promise.all(peers.map(stopPeer));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A frame whose first byte is the slot an echoing peer should answer. */
const ping = (from: number, text: string) => new Uint8Array([from, ...frameBytes(text)]);

test("two launcher processes on one --sharenet file: slots 0 and 1, each sees the other's MAC, and a ping is echoed back", async () => {
  await withNetwork(async (file, peers) => {
    const a = await startPeer(file);
    peers.push(a);
    const b = await startPeer(file, "echo");
    peers.push(b);
    assert.deepEqual([a.slot, b.slot], [0, 1]);
    assert.ok(statSync(file).size === 4096, "the file is created with a zero page, as the original did");
    assert.deepEqual([...readFileSync(file).subarray(0, 3)], [1, 1, 0], "byte n marks slot n as taken");
    await waitFor(async () => (await a.page(1)) === "020000000002");
    await waitFor(async () => (await b.page(0)) === "020000000001");
    for (let k = 0; k < 3; k++) {
      assert.equal(await a.send(1, ping(0, `ping ${k}`)), 6 + 1);
      await a.received(ping(0, `ping ${k}`));
    }
    // b's record of a frame comes down its stdout, which may arrive after the echo reached a.
    await waitFor(async () => framesOf(b).length >= 3);
    assert.deepEqual(framesOf(b), [0, 1, 2].map((k) => hex(ping(0, `ping ${k}`))));
  });
});

async function waitFor(condition: () => Promise<boolean>, limit = 40_000) {
  const deadline = Date.now() + limit;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail("timed out");
    await sleep(100);
  }
}

test("a peer killed mid-run frees its slot: the others see it leave, their sends to it are dropped, and a third launcher joins in its place", async () => {
  await withNetwork(async (file, peers) => {
    const a = await startPeer(file);
    const b = await startPeer(file, "echo");
    peers.push(a, b);
    await waitFor(async () => (await a.page(1)) !== "000000000000");
    b.child.kill("SIGKILL");
    await b.exited;
    await waitFor(async () => (await a.page(1)) === "000000000000");
    assert.equal(await a.send(1, ping(0, "anyone there?")), 0, "a send to a slot nobody owns is dropped");
    const c = await startPeer(file, "echo");
    peers.push(c);
    assert.equal(c.slot, 1, "the first free slot, as the original's lock loop found");
    await waitFor(async () => (await a.page(1)) === "020000000002");
    assert.equal(await a.send(1, ping(0, "hello c")), 8);
    await a.received(ping(0, "hello c"));
  });
});

test("a third launcher joins later and reaches both; the first two still reach each other", async () => {
  await withNetwork(async (file, peers) => {
    const a = await startPeer(file, "echo");
    const b = await startPeer(file, "echo");
    peers.push(a, b);
    const c = await startPeer(file);
    peers.push(c);
    assert.equal(c.slot, 2);
    await waitFor(async () => (await c.page(0)) !== "000000000000" && (await c.page(1)) !== "000000000000");
    await waitFor(async () => (await a.page(2)) !== "000000000000" && (await b.page(2)) !== "000000000000");
    await c.send(0, ping(2, "c to a"));
    await c.send(1, ping(2, "c to b"));
    await c.received(ping(2, "c to a"));
    await c.received(ping(2, "c to b"));
    await a.send(1, ping(0, "a to b"));
    await a.received(ping(0, "a to b"));
  });
});

test("a peer that dies in the middle of sending a frame: the partial frame is dropped and the others go on", async () => {
  await withNetwork(async (file, peers) => {
    const a = await startPeer(file);
    const b = await startPeer(file, "echo");
    peers.push(a, b);
    const { dev, ino } = statSync(file, { bigint: true });
    // A hand-made peer: it claims slot 9, then starts a frame for a and dies half way.
    const rogue = createConnection(`${machinePrefix()}sharenet/${dev}:${ino}/0`);
    await new Promise((resolve) => rogue.once("connect", resolve));
    const header = (kind: number, slot: number, length: number) => {
      const bytes = Buffer.alloc(7);
      bytes.writeUInt8(kind, 0);
      bytes.writeUInt16LE(slot, 1);
      bytes.writeUInt32LE(length, 3);
      return bytes;
    };
    rogue.write(Buffer.concat([header(1, 9, 6), Buffer.from([2, 0, 0, 0, 0, 9])]));
    await waitFor(async () => (await a.page(9)) === "020000000009");
    rogue.write(Buffer.concat([header(3, 0, 1000), Buffer.alloc(400, 0x55)]));
    await sleep(300);
    rogue.destroy();
    await waitFor(async () => (await a.page(9)) === "000000000000");
    assert.deepEqual(framesOf(a), [], "nothing of the partial frame reached the Guest");
    await a.send(1, ping(0, "still here"));
    await a.received(ping(0, "still here"));
  });
});

test("a peer that breaks the protocol (a frame over 64 KiB) is cut off; the others go on", async () => {
  await withNetwork(async (file, peers) => {
    const a = await startPeer(file);
    const b = await startPeer(file, "echo");
    peers.push(a, b);
    const { dev, ino } = statSync(file, { bigint: true });
    const rogue = createConnection(`${machinePrefix()}sharenet/${dev}:${ino}/0`);
    await new Promise((resolve) => rogue.once("connect", resolve));
    const closed = new Promise((resolve) => rogue.once("close", resolve));
    rogue.on("error", () => {});
    rogue.resume(); // read what a tells us, so that its hanging up reaches us
    const header = Buffer.alloc(7);
    header.writeUInt8(3, 0);
    header.writeUInt32LE(65537, 3);
    rogue.write(header);
    await closed;
    await a.send(1, ping(0, "unharmed"));
    await a.received(ping(0, "unharmed"));
  });
});

test("flooding: 2000 frames at a Guest that never frees its buffers; it takes 8, the rest are dropped, and both launchers go on", async () => {
  await withNetwork(async (file, peers) => {
    const a = await startPeer(file);
    const deaf = await startPeer(file, "deaf");
    peers.push(a, deaf);
    await waitFor(async () => (await a.page(1)) !== "000000000000");
    for (let k = 0; k < 2000; k++) a.command({ send: 1, hex: hex(new Uint8Array(1500).fill(k & 0xff)) });
    for (let k = 0; k < 2000; k++) await a.next((r) => "sent" in r);
    await waitFor(async () => {
      deaf.command({ stats: true });
      const stats = (await deaf.next((r) => "stats" in r)).stats as { dropped: number; full: number };
      return stats.full === 8 && stats.dropped + stats.full <= 2000 && stats.dropped > 0;
    });
    assert.equal(await a.page(1), "020000000002", "both are alive and still talking");
  });
});

test("several Guests in this process on one Host, and one in another process: local sends go through the Host, remote ones through the sockets", async () => {
  await withNetwork(async (file, peers) => {
    const first = await shareNetDevice(file);
    const second = await shareNetDevice(file);
    try {
      const host = new Host();
      const ga = netGuest(host, first.device as NetworkDevice);
      const gb = netGuest(host, second.device as NetworkDevice);
      assert.deepEqual([ga.device.slot, gb.device.slot], [0, 1]);
      assert.equal(ga.device.requirements.memory, gb.device.requirements.memory, "one page for the process");
      const page = ga.device.requirements.memory!;
      for (const [g, backend] of [[ga, first.backend], [gb, second.backend]] as const) {
        backend.start?.({ wake: () => {}, stop: () => {}, warn: () => {} });
        page.set([0x02, 0, 0, 0, 0x10, g.device.slot], g.device.slot * 6); // each Guest's MAC in its slot
        settle(g);
      }
      const remote = await startPeer(file, "echo");
      peers.push(remote);
      assert.equal(remote.slot, 2);
      await waitFor(async () => (await remote.page(0)) === "020000001000" && (await remote.page(1)) === "020000001001");
      ga.send(1, ping(0, "local"));
      settle(ga);
      settle(gb);
      assert.deepEqual(gb.takeFrames().map(hex), [hex(ping(0, "local"))]);
      ga.send(2, ping(0, "remote"));
      settle(ga);
      const deadline = Date.now() + 20_000;
      let frames: Uint8Array[] = [];
      while (frames.length === 0 && Date.now() < deadline) {
        await sleep(50);
        settle(ga);
        frames = ga.takeFrames();
      }
      assert.deepEqual(frames.map(hex), [hex(ping(0, "remote"))]);
      assert.deepEqual(framesOf(remote), [hex(ping(0, "remote"))]);
    } finally {
      first.backend.close?.();
      second.backend.close?.();
    }
  });
});

test("the launcher program: two on one --sharenet file take slots 0 and 1; when the first is killed, a third takes slot 0", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-net-"));
  const file = join(dir, "net");
  const launch = () => {
    const child = spawn(process.execPath, ["--import", "tsx", "lguest.ts", "--verbose", `--sharenet=${file}`, "64m", "images/vmlinux"], {
      cwd: join(import.meta.dirname, ".."), stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    const slot = (async () => {
      while (!/guest> /.test(out)) await sleep(50);
      return Number(/device 0: shared net .*, slot (\d+) \(irq 1, 1 page\(s\) at 0x4001000\)/.exec(out)?.[1]);
    })();
    return { child, slot, exited: new Promise((resolve) => child.on("exit", resolve)) };
  };
  try {
    const first = launch();
    assert.equal(await first.slot, 0);
    const second = launch();
    assert.equal(await second.slot, 1);
    first.child.kill("SIGKILL");
    await first.exited;
    assert.deepEqual([...readFileSync(file).subarray(0, 3)], [1, 1, 0], "a killed launcher's mark stays: it could not clear it");
    const third = launch();
    assert.equal(await third.slot, 0);
    for (const { child } of [second, third]) child.stdin.write("halt\n");
    await Promise.all([second.exited, third.exited]);
    assert.deepEqual([second.child.exitCode, third.child.exitCode], [0, 0]);
    assert.deepEqual([...readFileSync(file).subarray(0, 3)], [0, 0, 0], "launchers that end clear their marks");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
