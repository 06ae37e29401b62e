// A --tunnet Guest for the TAP test, run inside a network namespace made
// for it (unshare --net): the real TAP backend (src/launcher/tap.ts) and
// network model, and a puppet Guest (net-guest.ts) whose "network stack"
// is played here: it answers ARP requests and ICMP echo requests for
// GUEST_IP, as the book's Guest will. Then it runs ping from the host's
// side of the TAP and prints ping's output and status as one JSON line.
//
//   unshare --net node --import tsx test/helpers/tap-peer.ts HOST_IP|bridge:NAME GUEST_IP
// (with a bridge, the bridge must exist and have the host's address).
import { spawn, spawnSync } from "node:child_process";
import { Host } from "../../src/host/host.ts";
import type { NetworkDevice } from "../../src/devices/network.ts";
import { tunNetDevice } from "../../src/launcher/tap.ts";
import { netGuest, settle } from "./net-guest.ts";

const [hostSide, guestIp] = process.argv.slice(2);
const where = hostSide.startsWith("bridge:") ? { bridge: hostSide.slice(7) } : { ip: hostSide };
const { device, backend } = tunNetDevice(where, (line) => process.stderr.write(line + "\n"));
const network = device as NetworkDevice;
const g = netGuest(new Host(), network, 0);
const page = network.requirements.memory!;
const tapMac = page.slice(0, 6);
tapMac[0] &= ~1;
const guestMac = new Uint8Array([0x02, 0, 0, 0, 0, 0x01]);
page.set(guestMac, 6);
let wake: (() => void) | undefined;
backend.start?.({ wake: () => wake?.(), stop: () => {}, warn: (line) => process.stderr.write(line + "\n") });

const ip = (text: string) => text.split(".").map(Number);
const same = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.from(a).every((x, i) => x === b[i]);

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** What the Guest's stack would answer to `frame`, if anything. */
function answer(frame: Uint8Array): Uint8Array | undefined {
  const type = (frame[12] << 8) | frame[13];
  if (type === 0x0806 && frame[21] === 1 && same(frame.subarray(38, 42), ip(guestIp))) {
    const reply = frame.slice(0, 42);
    reply.set(frame.subarray(6, 12), 0);
    reply.set(guestMac, 6);
    reply[21] = 2;
    reply.set(guestMac, 22);
    reply.set(ip(guestIp), 28);
    reply.set(frame.subarray(22, 28), 32);
    reply.set(frame.subarray(28, 32), 38);
    return reply;
  }
  if (type === 0x0800 && frame[23] === 1 && same(frame.subarray(30, 34), ip(guestIp))) {
    const headerLength = (frame[14] & 0xf) * 4;
    const icmp = 14 + headerLength;
    if (frame[icmp] !== 8) return undefined;
    const reply = frame.slice();
    reply.set(frame.subarray(6, 12), 0);
    reply.set(guestMac, 6);
    reply.set(frame.subarray(30, 34), 26);
    reply.set(frame.subarray(26, 30), 30);
    reply[24] = reply[25] = 0;
    const ipSum = checksum(reply.subarray(14, icmp));
    reply[24] = ipSum >> 8;
    reply[25] = ipSum & 0xff;
    reply[icmp] = 0;
    reply[icmp + 2] = reply[icmp + 3] = 0;
    const totalLength = (frame[16] << 8) | frame[17];
    const icmpSum = checksum(reply.subarray(icmp, 14 + totalLength));
    reply[icmp + 2] = icmpSum >> 8;
    reply[icmp + 3] = icmpSum & 0xff;
    return reply;
  }
  return undefined;
}

const ping = spawn("ping", ["-c", "3", "-i", "0.3", "-W", "3", guestIp], { stdio: ["ignore", "pipe", "pipe"] });
let output = "";
ping.stdout.on("data", (chunk) => (output += chunk));
ping.stderr.on("data", (chunk) => (output += chunk));
let done = false;
const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout;
ping.on("exit", (status) => {
  const slot0 = Buffer.from(page.subarray(0, 6)).toString("hex");
  process.stdout.write(JSON.stringify({ status, output, dropped: network.dropped, slot0, features: network.requirements.features, links }) + "\n");
  done = true;
  wake?.();
});

while (!done) {
  settle(g);
  for (const frame of g.takeFrames()) {
    const reply = answer(frame);
    if (reply) {
      g.send(0, reply);
      settle(g);
    }
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 100);
    wake = () => {
      clearTimeout(timer);
      wake = undefined;
      resolve();
    };
  });
}
process.exit(0);
