// The book's Guest on the network (book/drivers-net.md, drivers-ip.md):
// its network driver against spec 9.3 and its little IP stack against
// RFC 826, 791, 792 and 1071, from the Guest's side. Guests share one
// Host in-process (test/helpers/guest-session.ts); those given the same
// page object as their network page talk through the Host's inter-Guest
// DMA alone, as --sharenet Guests do. Where a test plays the other end of
// a network (the host behind a --tunnet TAP, or a sender of malformed
// frames), it builds and checks frames with its own code below, which is
// anchored to RFC 1071's and a published header's checksums. The last test
// puts the Guest behind a real TAP in a network namespace, where Linux's
// own ping and network stack are the reference. Launchers on --sharenet in
// separate processes are tested in test/devices-guest.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { deliverDma, pageDevice, TestMachine, type GuestSession } from "./helpers/guest-session.ts";
import type { Device } from "../src/devices/device.ts";

const root = join(import.meta.dirname, "..");
const vmlinux = new Uint8Array(readFileSync(join(root, "images/vmlinux")));
const NOCSUM = 0x4000, RANDOMNESS = 0x8000;
const MEMORY = 8 << 20;

// ---- Frames, built and checked by the test's own code ----

/** RFC 1071: the ones' complement of the ones' complement sum of big-endian 16-bit words. */
function internetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const be16 = (b: Uint8Array, at: number) => (b[at] << 8) | b[at + 1];
const be32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
const ip = (text: string) => text.split(".").reduce((n, part) => n * 256 + Number(part), 0);
const mac = (text: string) => Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
const macText = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");

function ethernet(dest: Uint8Array, source: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(14 + payload.length);
  frame.set(dest, 0);
  frame.set(source, 6);
  frame[12] = type >> 8;
  frame[13] = type & 0xff;
  frame.set(payload, 14);
  return frame;
}

function ipv4(
  source: number, dest: number, protocol: number, payload: Uint8Array,
  options: { checksumDelta?: number; fragment?: number; totalLength?: number } = {},
): Uint8Array {
  const packet = new Uint8Array(20 + payload.length);
  const view = new DataView(packet.buffer);
  packet[0] = 0x45;
  view.setUint16(2, options.totalLength ?? packet.length);
  view.setUint16(4, 0x1234);
  view.setUint16(6, options.fragment ?? 0x4000);
  packet[8] = 64;
  packet[9] = protocol;
  view.setUint32(12, source);
  view.setUint32(16, dest);
  view.setUint16(10, (internetChecksum(packet.subarray(0, 20)) + (options.checksumDelta ?? 0)) & 0xffff);
  packet.set(payload, 20);
  return packet;
}

function icmpEcho(type: number, id: number, sequence: number, data: Uint8Array, checksumDelta = 0): Uint8Array {
  const message = new Uint8Array(8 + data.length);
  const view = new DataView(message.buffer);
  message[0] = type;
  view.setUint16(4, id);
  view.setUint16(6, sequence);
  message.set(data, 8);
  view.setUint16(2, (internetChecksum(message) + checksumDelta) & 0xffff);
  return message;
}

function arp(op: number, senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number): Uint8Array {
  const packet = new Uint8Array(28);
  const view = new DataView(packet.buffer);
  view.setUint16(0, 1);
  view.setUint16(2, 0x0800);
  packet[4] = 6;
  packet[5] = 4;
  view.setUint16(6, op);
  packet.set(senderMac, 8);
  view.setUint32(14, senderIp);
  packet.set(targetMac, 18);
  view.setUint32(24, targetIp);
  return packet;
}

const BROADCAST = mac("ff:ff:ff:ff:ff:ff");

// ---- Guests ----

function sharenet(page: Uint8Array, slot: number, features = NOCSUM): Device {
  return pageDevice({ type: 2, features: slot | features, pages: page, shared: true });
}

function boot(machine: TestMachine, ipArgument: string, devices: Device[], extra: string[] = []): GuestSession {
  const session = machine.boot(vmlinux, [`ip=${ipArgument}`, ...extra], { devices, memoryBytes: MEMORY });
  machine.run(() => session.output.endsWith("guest> "));
  return session;
}

/** Types a command at a Guest's prompt and returns what it printed, once the prompt is back. */
function command(session: GuestSession, text: string): string {
  const before = session.output.length;
  session.type(text + "\r");
  session.run(() => session.output.length > before + text.length + 2 && session.output.endsWith("guest> "));
  assert.equal(session.dead, undefined, `${text}: a Guest died`);
  return session.output.slice(before).replace(/\r\n/g, "\n");
}

/** The MAC the spec gives Guest number `id`: 02:00, the id's two bytes in memory order, 00:00. */
function guestMac(id: number): string {
  return macText(Uint8Array.of(2, 0, id & 0xff, id >> 8, 0, 0));
}

/** The SEND_DMAs a Guest made to its network (the console's key is 0). */
function netSends(session: GuestSession) {
  return session.sends.filter((s) => s.key !== 0);
}

function slotBytes(page: Uint8Array, slot: number): string {
  return macText(page.subarray(slot * 6, slot * 6 + 6));
}

/** The 8 lguest_dma a Guest bound to receive, read back from its memory. */
function receiveDescriptors(session: GuestSession, dmas: number) {
  return Array.from({ length: 8 }, (_, i) => {
    const at = dmas + 100 * i;
    const pieces: { addr: number; len: number }[] = [];
    for (let k = 0; k < 16; k++) {
      const len = session.guest.read32(at + 68 + 2 * k) & 0xffff;
      if (len === 0) break;
      pieces.push({ addr: session.guest.read32(at + 4 + 4 * k), len });
    }
    return { usedLen: session.guest.read32(at), pieces };
  });
}

// ---- The tests ----

test("two Guests on one shared page resolve each other with ARP and ping both ways (spec 9.3)", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2/24", [sharenet(lan, 1)]);
  assert.match(a.output, /eth0: 10\.0\.0\.1 netmask 255\.255\.255\.0, MAC 02:00:00:00:00:00, slot 0\r\n/);

  const there = command(b, "ping -c 2 10.0.0.1");
  assert.match(there, /^ping -c 2 10\.0\.0\.1\nPING 10\.0\.0\.1 \(10\.0\.0\.1\) 56\(84\) bytes of data\.\n/);
  assert.match(there, /\n64 bytes from 10\.0\.0\.1: icmp_seq=1 ttl=64 time=\d+\.\d{3} ms\n64 bytes from 10\.0\.0\.1: icmp_seq=2 ttl=64 time=\d+\.\d{3} ms\n/);
  assert.match(there, /\n--- 10\.0\.0\.1 ping statistics ---\n2 packets transmitted, 2 received, 0% packet loss, time \d+ms\nrtt min\/avg\/max = [\d.]+\/[\d.]+\/[\d.]+ ms\n/);
  // B asked for A's MAC; A learnt B's from the question (RFC 826), so B's pings back need no ARP.
  assert.equal(command(b, "arp"), `arp\n10.0.0.1 at ${guestMac(a.guest.id)} on eth0\nguest> `);
  assert.equal(command(a, "arp"), `arp\n10.0.0.2 at ${guestMac(b.guest.id)} on eth0\nguest> `);

  const back = command(a, "ping -c 2 10.0.0.2");
  assert.match(back, /\n64 bytes from 10\.0\.0\.2: icmp_seq=1 ttl=64 time=[\d.]+ ms\n64 bytes from 10\.0\.0\.2: icmp_seq=2 ttl=64 time=[\d.]+ ms\n/);
  assert.match(back, /2 packets transmitted, 2 received, 0% packet loss/);
  // One ARP request and reply, two pings each way: 5 frames each, every one delivered.
  assert.match(command(a, "ifconfig"), /RX packets 5 bytes 434, dropped 0\n      TX packets 5 bytes 434, carrier errors 0\n/);
});

test("the driver joins as spec 9.3 says: its MAC from guestid in slot features & 0xFFF, 8 buffers of 1514 bytes bound at the slot's key with irq index + 1", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const disk = pageDevice({ type: 3, features: RANDOMNESS }); // a device before the network, so its index is 1
  const filler = boot(machine, "10.0.0.9", [sharenet(lan, 2)]);
  const b = boot(machine, "10.0.0.5", [disk, sharenet(lan, 5)]);
  const page = b.devicePages[1];
  assert.equal(b.guest.id, 1);
  assert.equal(slotBytes(lan, 5), "02:00:01:00:00:00", "guest 1's MAC in slot 5");
  assert.equal(slotBytes(lan, 2), guestMac(filler.guest.id), "the other Guest's slot untouched");
  const bind = b.binds.find((x) => x.key === page + 4 * 5);
  assert.ok(bind, `BIND_DMA at slot 5's key ${(page + 20).toString(16)}: ${JSON.stringify(b.binds)}`);
  assert.deepEqual({ count: bind.count, irq: bind.irq, ok: bind.ok }, { count: 8, irq: 2, ok: true }, "8 buffers, irq = index 1 + 1");
  for (const [i, d] of receiveDescriptors(b, bind.dmas).entries()) {
    assert.equal(d.usedLen, 0, `buffer ${i} free`);
    assert.equal(d.pieces.reduce((n, p) => n + p.len, 0), 1514, `buffer ${i} is 1514 bytes`);
    for (const p of d.pieces) assert.ok((p.addr % 4096) + p.len <= 4096, `buffer ${i}: no piece crosses a page`);
  }
  const descriptors = b.guest.readBytes(MEMORY, 36);
  assert.equal(descriptors[12 + 4] | (descriptors[12 + 5] << 8), 1 | 2 | 4, "the network device's status: ACKNOWLEDGE, DRIVER, DRIVER_OK");
  assert.match(command(b, "ifconfig"), /eth0: device 1, irq 2, slot 5 of 682, MAC 02:00:01:00:00:00, up\n      inet 10\.0\.0\.5 netmask 255\.255\.255\.0, checksums not needed \(NOCSUM\)\n/);
});

test("sending: a broadcast goes to every slot in use but our own, a unicast only to the slot with that MAC (spec 9.3)", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  const c = boot(machine, "10.0.0.3", [sharenet(lan, 7)]);
  const page = a.devicePages[0];
  const key = (slot: number) => page + 4 * slot;
  a.sends.length = 0;
  assert.match(command(a, "ping -c 1 10.0.0.3"), /1 packets transmitted, 1 received/);
  // The ARP request to everyone (slots 1 and 7, not 0, not the free slots), the echo to C alone.
  assert.deepEqual(netSends(a).map((s) => [s.key - page, s.outcome, s.length]), [
    [key(1) - page, "delivered", 42], [key(7) - page, "delivered", 42], [key(7) - page, "delivered", 98],
  ]);
  // C answered to A alone.
  assert.deepEqual(netSends(c).map((s) => s.key - page), [key(0) - page, key(0) - page]);
  assert.match(command(b, "ifconfig"), /RX packets 1 bytes 42, dropped 1 \(1 not for us\)\n/, "B saw the broadcast ARP for C, and dropped it");
});

test("a Guest in promiscuous mode sets the bit in its slot and is sent everyone's unicast frames, which it drops as not for it", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  const c = boot(machine, "10.0.0.3", [sharenet(lan, 2)]);
  command(c, "ifconfig promisc");
  assert.equal(slotBytes(lan, 2), "03:00:02:00:00:00", "bit 0 of the slot's first byte");
  assert.match(command(c, "ifconfig"), /MAC 02:00:02:00:00:00, up, promiscuous\n/);
  assert.match(command(a, "ping -c 2 10.0.0.2"), /2 packets transmitted, 2 received/);
  // C got the ARP request, A's two echoes to B and B's ARP reply and two echo replies to A.
  assert.match(command(c, "ifconfig"), /RX packets 6 bytes 476, dropped 6 \(6 not for us\)\n/);
  // B's unicasts to C's MAC still reach C: its slot matches with the promiscuous bit ignored.
  command(c, "ifconfig -promisc");
  assert.equal(slotBytes(lan, 2), "02:00:02:00:00:00");
  assert.match(command(b, "ping -c 1 10.0.0.3"), /1 packets transmitted, 1 received/);
});

test("a third Guest joins a running network and reaches both", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  assert.match(command(a, "ping -c 1 10.0.0.2"), /1 received/);
  const c = boot(machine, "10.0.0.3", [sharenet(lan, 2)]);
  assert.match(command(c, "ping -c 1 10.0.0.1"), /1 packets transmitted, 1 received, 0% packet loss/);
  assert.match(command(c, "ping -c 1 10.0.0.2"), /1 packets transmitted, 1 received, 0% packet loss/);
  assert.match(command(b, "ping -c 1 10.0.0.3"), /1 packets transmitted, 1 received, 0% packet loss/);
  assert.equal(command(c, "arp"), `arp\n10.0.0.1 at ${guestMac(0)} on eth0\n10.0.0.2 at ${guestMac(1)} on eth0\nguest> `);
});

test("ifconfig down zeroes the slot and unbinds the same array; pings then go nowhere, and up joins again (spec 9.3 close)", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  const page = b.devicePages[0];
  assert.match(command(a, "ping -c 1 10.0.0.2"), /1 received/);
  const bound = b.binds.find((x) => x.irq !== 0)!;
  command(b, "ifconfig down");
  assert.equal(slotBytes(lan, 1), "00:00:00:00:00:00");
  assert.deepEqual(b.binds.at(-1), { key: page + 4, dmas: bound.dmas, count: 0, irq: 0, ok: true }, "BIND_DMA with irq 0: unbind");
  a.sends.length = 0;
  const lost = command(a, "ping -c 2 10.0.0.2");
  assert.match(lost, /2 packets transmitted, 0 received, 100% packet loss/);
  assert.doesNotMatch(lost, /bytes from/);
  assert.deepEqual(netSends(a), [], "A knows B's MAC, but no slot holds it now: nothing is sent");
  command(b, "ifconfig up");
  assert.equal(slotBytes(lan, 1), guestMac(1));
  assert.match(command(a, "ping -c 1 10.0.0.2"), /1 packets transmitted, 1 received/);
});

test("a Guest that goes away without closing: its slot keeps its MAC, the Host drops what is sent to it, and pings get no reply", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  assert.match(command(a, "ping -c 1 10.0.0.2"), /1 received/);
  machine.release(b);
  assert.equal(slotBytes(lan, 1), guestMac(1), "a 2.6.23 Guest that dies does not clear its slot");
  a.sends.length = 0;
  assert.match(command(a, "ping -c 2 10.0.0.2"), /2 packets transmitted, 0 received, 100% packet loss/);
  assert.deepEqual(netSends(a).map((s) => s.outcome), ["dropped", "dropped"], "no binding at B's key any more (spec 8.6)");
  assert.match(command(a, "ifconfig"), /carrier errors 2\n/, "nothing went across: used_len 0 is not the packet's length");
});

test("a receiver whose 8 buffers are all full takes no more: the sender counts carrier errors (spec 8.6, 9.3)", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  const page = a.devicePages[0];
  // Fill B's buffers while B does not run, as if its Launcher were stopped.
  machine.pause(b);
  const frame = ethernet(mac(guestMac(1)), mac(guestMac(0)), 0x88b5, new Uint8Array(46));
  for (let i = 0; i < 8; i++) assert.ok(deliverDma(b, page + 4, frame));
  const bound = b.binds.find((x) => x.key === page + 4)!;
  assert.deepEqual(receiveDescriptors(b, bound.dmas).map((d) => d.usedLen), Array(8).fill(60), "8 buffers, all full");
  assert.match(command(a, "ping -c 1 10.0.0.2"), /From 10\.0\.0\.1 icmp_seq=1 Destination Host Unreachable/);
  assert.deepEqual(netSends(a).map((s) => s.outcome), ["full", "full"], "the ARP request: tried once, and once more");
  assert.match(command(a, "ifconfig"), /TX packets 0 bytes 0, carrier errors 1\n/);
  // Once B runs, it takes all 8 and refills each (the frames are of a protocol it does not speak).
  machine.pause(b, false);
  assert.match(command(b, "ifconfig"), /RX packets 8 bytes 480, dropped 8 \(8 protocol\)\n/);
  assert.deepEqual(receiveDescriptors(b, bound.dmas).map((d) => d.usedLen), Array(8).fill(0), "all 8 free again");
  assert.match(command(a, "ping -c 1 10.0.0.2"), /1 received/);
});

test("pinging an address nobody has: ARP gets no answer, and ping says Destination Host Unreachable", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  const out = command(a, "ping -c 2 10.0.0.77");
  assert.match(out, /From 10\.0\.0\.1 icmp_seq=1 Destination Host Unreachable\nFrom 10\.0\.0\.1 icmp_seq=2 Destination Host Unreachable\n/);
  assert.match(out, /2 packets transmitted, 0 received, \+2 errors, 100% packet loss/);
  assert.match(command(a, "ping 192.168.1.1"), /ping: no interface is on the network of 192\.168\.1\.1/);
  assert.match(command(a, "ping 10.0.0.1"), /ping: 10\.0\.0\.1 is this Guest's own address on eth0/);
  assert.match(command(a, "ping -c x 10.0.0.2"), /ping \[-c COUNT\] ADDRESS/);
  assert.match(command(a, "ping 10.0.0.2 10.0.0.3"), /ping \[-c COUNT\] ADDRESS/);
  assert.match(command(a, "ping 10.0.0.77 -c 1"), /From 10\.0\.0\.1 icmp_seq=1 Destination Host Unreachable\n\n--- 10\.0\.0\.77 ping statistics ---\n1 packets transmitted, 0 received, \+1 errors, 100% packet loss/);
});

test("the checksum the test uses is RFC 1071's, on a published IPv4 header", () => {
  // The example header of the IPv4 article's "header checksum" section: checksum 0xB861.
  const header = Uint8Array.from([0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]);
  assert.equal(internetChecksum(header), 0xb861);
  header[10] = 0xb8;
  header[11] = 0x61;
  assert.equal(internetChecksum(header), 0, "a header with its checksum sums to all ones");
  // RFC 1071 section 3's example words 0001 f203 f4f5 f6f7: sum ddf2, checksum 220d.
  assert.equal(internetChecksum(Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0x220d);
});

/**
 * A Guest on a private network page, as --tunnet makes it (spec 9.3): slot 0
 * is the TAP, promiscuous, and the Guest is slot 1. The test plays the host
 * behind the TAP: the Guest's sends to key page + 0 come to it, and it sends
 * to the Guest with GETDMA at page + 4 and an irq, as the Launcher does.
 */
function tunnetGuest(answer: boolean) {
  const machine = new TestMachine();
  const page = new Uint8Array(4096);
  const hostMac = mac("52:54:00:12:34:56");
  const hostIp = ip("192.168.19.1");
  page.set(hostMac, 0);
  page[0] |= 1; // the promiscuous bit
  const frames: Uint8Array[] = [];
  let session: GuestSession;
  const device = pageDevice({
    type: 2, features: 1 | RANDOMNESS, pages: page,
    onSend(frame, key) {
      assert.equal(key, session.devicePages[0], "every send goes to the TAP's slot 0 key");
      frames.push(frame);
      if (answer) hostAnswers(frame);
      return frame.length;
    },
  });
  const hostAnswers = (frame: Uint8Array) => {
    const type = be16(frame, 12);
    const guestMacBytes = frame.subarray(6, 12);
    if (type === 0x0806 && be16(frame, 20) === 1 && be32(frame, 38) === hostIp) {
      deliverDma(session, session.devicePages[0] + 4,
        ethernet(guestMacBytes, hostMac, 0x0806, arp(2, hostMac, hostIp, guestMacBytes, be32(frame, 28))));
    } else if (type === 0x0800 && frame[23] === 1 && frame[34] === 8) {
      const length = be16(frame, 16) - 20;
      const echo = frame.slice(34, 34 + length);
      echo[0] = 0;
      echo[2] = echo[3] = 0;
      const sum = internetChecksum(echo);
      echo[2] = sum >> 8;
      echo[3] = sum & 0xff;
      deliverDma(session, session.devicePages[0] + 4,
        ethernet(guestMacBytes, hostMac, 0x0800, ipv4(hostIp, be32(frame, 26), 1, echo)));
    }
  };
  session = boot(machine, "192.168.19.2", [device]);
  return { session, frames, hostMac, hostIp, tap: () => session.devicePages[0] + 4 };
}

/** Checks an IPv4+ICMP frame the Guest made, with the test's own checksum. */
function assertGoodIcmp(frame: Uint8Array, what: string): void {
  assert.equal(frame[14], 0x45, `${what}: IPv4, 20-byte header`);
  const total = be16(frame, 16);
  assert.equal(frame.length, 14 + total, `${what}: the frame is the IP packet, no more`);
  assert.equal(internetChecksum(frame.subarray(14, 34)), 0, `${what}: IP header checksum`);
  assert.equal(internetChecksum(frame.subarray(34, 14 + total)), 0, `${what}: ICMP checksum`);
}

test("without NOCSUM (a --tunnet page, slot 0 the promiscuous TAP) the Guest answers the host's ARP and ping with correct checksums", () => {
  const { session, frames, hostMac, hostIp, tap } = tunnetGuest(false);
  assert.match(command(session, "ifconfig"), /slot 1 of 682, MAC 02:00:00:00:00:00, up\n      inet 192\.168\.19\.2 netmask 255\.255\.255\.0, checksums made and checked\n/);
  const guestIp = ip("192.168.19.2");
  const guestMacBytes = mac(guestMac(0));
  // The host asks who has 192.168.19.2.
  assert.ok(deliverDma(session, tap(), ethernet(BROADCAST, hostMac, 0x0806, arp(1, hostMac, hostIp, new Uint8Array(6), guestIp))));
  session.run(() => frames.length === 1);
  assert.deepEqual(frames[0], ethernet(hostMac, guestMacBytes, 0x0806, arp(2, guestMacBytes, guestIp, hostMac, hostIp)), "RFC 826 reply");
  // The host pings, as Linux's ping does: 56 bytes of data.
  const data = Uint8Array.from({ length: 56 }, (_, i) => i);
  assert.ok(deliverDma(session, tap(), ethernet(guestMacBytes, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, icmpEcho(8, 0x77, 1, data)))));
  session.run(() => frames.length === 2);
  const reply = frames[1];
  assertGoodIcmp(reply, "echo reply");
  assert.deepEqual(reply.subarray(0, 12), Uint8Array.from([...hostMac, ...guestMacBytes]));
  assert.equal(be32(reply, 26), guestIp);
  assert.equal(be32(reply, 30), hostIp);
  assert.deepEqual([reply[34], reply[35], be16(reply, 38), be16(reply, 40)], [0, 0, 0x77, 1], "echo reply, same id and sequence");
  assert.deepEqual(reply.subarray(42), data, "the data comes back unchanged");
});

test("the Guest pings the host through the TAP, with correct checksums on what it sends", () => {
  const { session, frames } = tunnetGuest(true);
  const out = command(session, "ping -c 2 192.168.19.1");
  assert.match(out, /64 bytes from 192\.168\.19\.1: icmp_seq=1 ttl=64 time=[\d.]+ ms\n64 bytes from 192\.168\.19\.1: icmp_seq=2 ttl=64/);
  const requests = frames.filter((f) => be16(f, 12) === 0x0800);
  assert.equal(requests.length, 2);
  for (const [i, request] of requests.entries()) {
    assertGoodIcmp(request, `echo request ${i + 1}`);
    assert.deepEqual([request[34], be16(request, 40)], [8, i + 1], "echo request, sequence from 1");
    assert.equal(be16(request, 16), 84, "56 bytes of data, as ping sends");
  }
  const arpRequest = frames[0];
  assert.deepEqual(arpRequest.subarray(0, 6), BROADCAST, "ARP asks everyone");
});

test("malformed and unwanted frames are dropped and counted, and never answered", () => {
  const { session, frames, hostMac, hostIp, tap } = tunnetGuest(false);
  const guestIp = ip("192.168.19.2");
  const us = mac(guestMac(0));
  const echo = (checksumDelta = 0) => icmpEcho(8, 1, 1, new Uint8Array(8), checksumDelta);
  const cases: [string, Uint8Array | { bytes: Uint8Array; usedLen: number }][] = [
    ["bad length", new Uint8Array(13)],
    ["bad length", { bytes: new Uint8Array(60), usedLen: 1515 }],
    ["not for us", ethernet(mac("02:00:05:00:00:00"), hostMac, 0x0800, ipv4(hostIp, guestIp, 1, echo()))],
    ["not for us", ethernet(us, hostMac, 0x0800, ipv4(hostIp, ip("192.168.19.3"), 1, echo()))],
    ["not for us", ethernet(BROADCAST, hostMac, 0x0806, arp(1, hostMac, hostIp, new Uint8Array(6), ip("192.168.19.3")))],
    ["protocol", ethernet(us, hostMac, 0x86dd, new Uint8Array(40))],
    ["protocol", ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 17, new Uint8Array(8)))],
    ["protocol", ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, echo(), { fragment: 0x2000 }))],
    ["protocol", ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, icmpEcho(13, 1, 1, new Uint8Array(12))))],
    ["malformed", ethernet(us, hostMac, 0x0800, new Uint8Array(10))],
    ["malformed", ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, echo(), { totalLength: 200 }))],
    ["malformed", ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, new Uint8Array(4)))],
    ["malformed", ethernet(BROADCAST, hostMac, 0x0806, arp(1, hostMac, hostIp, new Uint8Array(6), guestIp).subarray(0, 27))],
    ["bad checksum", ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, echo(), { checksumDelta: 1 }))],
    ["bad checksum", ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, echo(1)))],
  ];
  const counts = new Map<string, number>();
  for (const [reason, frame] of cases) {
    const received = session.output.length;
    if (frame instanceof Uint8Array) {
      assert.ok(deliverDma(session, tap(), frame));
    } else {
      assert.ok(deliverDma(session, tap(), frame.bytes));
      // A Launcher that claims more than the buffer holds.
      const descriptors = session.binds[0].dmas;
      for (let i = 0; i < 8; i++) {
        if (session.guest.read32(descriptors + 100 * i) === 60) session.guest.write32(descriptors + 100 * i, frame.usedLen);
      }
    }
    counts.set(reason, (counts.get(reason) ?? 0) + 1);
    command(session, "echo");
    assert.equal(frames.length, 0, `${reason}: nothing was sent in answer`);
    assert.ok(session.output.length > received);
  }
  const line = command(session, "ifconfig").match(/RX packets (\d+) bytes \d+, dropped (\d+) \((.*)\)\n/);
  assert.ok(line, "ifconfig shows the drops");
  assert.equal(Number(line[2]), cases.length);
  assert.equal(Number(line[1]), cases.length - 2, "frames of a bad length never count as received");
  const shown = new Map(line[3].split(", ").map((part) => [part.replace(/^\d+ /, ""), Number(part.split(" ")[0])]));
  assert.deepEqual(shown, counts);
  // And after all that, a good echo request is answered.
  deliverDma(session, tap(), ethernet(us, hostMac, 0x0800, ipv4(hostIp, guestIp, 1, echo())));
  session.run(() => frames.length === 1);
  assertGoodIcmp(frames[0], "the reply to a good request");
});

test("on a NOCSUM network the ICMP checksum is not checked, as Linux trusts a packet the device vouched for; the IP header's still is", () => {
  const machine = new TestMachine();
  const lan = new Uint8Array(4096);
  const a = boot(machine, "10.0.0.1", [sharenet(lan, 0)]);
  const b = boot(machine, "10.0.0.2", [sharenet(lan, 1)]);
  assert.match(command(a, "ping -c 1 10.0.0.2"), /1 received/);
  const page = b.devicePages[0];
  const from = mac(guestMac(0)), to = mac(guestMac(1));
  const echo = (delta: number) => icmpEcho(8, 9, 9, new Uint8Array(8), delta);
  b.sends.length = 0;
  deliverDma(b, page + 4, ethernet(to, from, 0x0800, ipv4(ip("10.0.0.1"), ip("10.0.0.2"), 1, echo(1))));
  deliverDma(b, page + 4, ethernet(to, from, 0x0800, ipv4(ip("10.0.0.1"), ip("10.0.0.2"), 1, echo(0), { checksumDelta: 1 })));
  assert.match(command(b, "ifconfig"), /dropped 1 \(1 bad checksum\)/);
  assert.deepEqual(netSends(b).map((s) => [s.key, s.length]), [[page, 50]], "the echo with a bad ICMP checksum was answered");
});

test("two interfaces on two networks, addressed by two ip= words in bus order", () => {
  const machine = new TestMachine();
  const red = new Uint8Array(4096), blue = new Uint8Array(4096);
  const a = machine.boot(vmlinux, ["ip=10.0.0.1", "ip=10.1.0.1/16"], { devices: [sharenet(red, 0), sharenet(blue, 0)], memoryBytes: MEMORY });
  machine.run(() => a.output.endsWith("guest> "));
  const b = boot(machine, "10.0.0.2", [sharenet(red, 1)]);
  const c = boot(machine, "10.1.200.2/16", [sharenet(blue, 1)]);
  assert.match(a.output, /eth0: 10\.0\.0\.1 netmask 255\.255\.255\.0.*\r\neth1: 10\.1\.0\.1 netmask 255\.255\.0\.0/);
  assert.match(command(a, "ping -c 1 10.1.200.2"), /1 received/);
  assert.match(command(a, "ping -c 1 10.0.0.2"), /1 received/);
  assert.match(command(b, "ping -c 1 10.1.0.1"), /no interface is on the network of 10\.1\.0\.1/, "we route nothing");
  assert.match(command(c, "arp"), /10\.1\.0\.1 at 02:00:00:00:00:00 on eth0/);
});

test("an ip= that is not an address leaves the interface without one, and says so", () => {
  const machine = new TestMachine();
  const s = machine.boot(vmlinux, ["ip=10.0.0.300"], { devices: [sharenet(new Uint8Array(4096), 0)], memoryBytes: MEMORY });
  machine.run(() => s.output.endsWith("guest> "));
  assert.match(s.output, /eth0: ip=10\.0\.0\.300 is not an address like 10\.0\.0\.2 or 10\.0\.0\.2\/24\r\n/);
  assert.match(command(s, "ifconfig"), /no address \(boot with ip=ADDRESS\)/);
});

/** Why this machine cannot make a TAP in a fresh network namespace, or undefined if it can. */
function cannotMakeTap(): string | undefined {
  const missing = ["unshare", "ip", "ping"].filter((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0);
  if (missing.length > 0) return `missing ${missing.join(", ")}`;
  const trial = spawnSync("unshare", ["--net", "ip", "tuntap", "add", "dev", "tap0", "mode", "tap"], { encoding: "utf8" });
  if (trial.status !== 0) return `unshare --net ip tuntap add failed: ${(trial.stderr || trial.error?.message || "").trim()}`;
  return undefined;
}

test("through a real TAP (--tunnet, in a network namespace), the host's ping reaches the Guest, and the Guest pings the host", (t) => {
  const reason = cannotMakeTap();
  if (reason !== undefined) {
    // A machine that must run it (LGUEST_REQUIRE_TAP=1) fails instead of skipping, as test/devices-tap.test.ts does.
    if (process.env.LGUEST_REQUIRE_TAP) assert.fail(`this machine cannot make a TAP device in a network namespace (${reason})`);
    t.skip(`NOT RUN: this machine cannot make a TAP device in a network namespace (${reason})`);
    return;
  }
  const run = spawnSync("unshare", ["--net", process.execPath, "--import", "tsx", "test/helpers/tap-guest.ts", "192.168.19.1", "192.168.19.2"], {
    cwd: root, encoding: "utf8", timeout: 180_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout.trim().split("\n").pop()!);
  assert.equal(result.error, undefined, result.output);
  // Linux's ping checks the ICMP checksum of every reply it counts.
  assert.equal(result.ping.status, 0, result.ping.output);
  assert.match(result.ping.output, /3 packets transmitted, 3 received, 0% packet loss/);
  const out = result.output.replace(/\r\n/g, "\n");
  assert.match(out, /\n64 bytes from 192\.168\.19\.1: icmp_seq=1 ttl=64 time=[\d.]+ ms\n64 bytes from 192\.168\.19\.1: icmp_seq=2 ttl=64/);
  assert.match(out, /slot 1 of 682, MAC 02:00:00:00:00:00, up\n      inet 192\.168\.19\.2 netmask 255\.255\.255\.0, checksums made and checked\n/);
  assert.match(out, /TX packets \d+ bytes \d+, carrier errors 0\n/);
  assert.equal(result.status, 0, "the Guest powered off");
});
