// A hand-built network Guest for the device tests: a "puppet" whose
// hypercalls are real (BIND_DMA of eight 1514-byte receive buffers at its
// slot's key, SEND_DMA of whatever the test puts in its mailbox, HALT while
// there is nothing to do) and whose driver logic is played by the test,
// which reads the receive buffers and frees them as Linux's driver would.
import type { Host } from "../../src/host/host.ts";
import { LHCALL_BIND_DMA, LHCALL_HALT, LHCALL_LOAD_IDT_ENTRY, LHCALL_SEND_DMA } from "../../src/host/constants.ts";
import type { NetworkDevice } from "../../src/devices/network.ts";
import { DeviceBus } from "../../src/devices/bus.ts";
import { GuestLink } from "../../src/devices/link.ts";
import { boot, DATA, HANDLER, RAM_SIZE, SCRATCH, tinyGuest, va, type TinyGuest } from "./tiny-guest.ts";
import { EAX, EBX, ECX, EDX, gate, hcall, int, iret, load, mov, storeImm } from "./x86.ts";

export const IRQ = 1;
const MAILBOX = SCRATCH; // key to send to; 0 = nothing to send
const SEND_DMA = SCRATCH + 0x10; // the descriptor of the frame to send
export const RX_DMAS = SCRATCH + 0x200; // eight receive descriptors
const RX_BUFFERS = 0x20000; // eight receive buffers, 2 KiB apart
const TX_BUFFERS = 0x30000; // the frame to send, up to 16 pages
export const RX_COUNT = 8, RX_SIZE = 1514;
export const PAGE_GPA = RAM_SIZE; // the network page: frame 256

/** The Guest's code: register, install an irq handler, bind, then loop: send what is in the mailbox, else halt. */
function code(slot: number): number[] {
  const start = [
    ...boot,
    ...hcall(LHCALL_LOAD_IDT_ENTRY, 32 + IRQ, ...gate(va(HANDLER), 0xf, 0)),
    ...hcall(LHCALL_BIND_DMA, PAGE_GPA + 4 * slot, RX_DMAS, (RX_COUNT << 8) | IRQ),
  ];
  const send = [
    ...load(EDX, va(MAILBOX)), ...mov(EBX, SEND_DMA), ...mov(ECX, 0), ...mov(EAX, LHCALL_SEND_DMA), ...int(0x1f),
    ...storeImm(va(MAILBOX), 0),
  ];
  const halt = hcall(LHCALL_HALT);
  // loop: irq_enabled = 0; eax = mailbox; if eax != 0 goto send; HALT; goto loop; send: ...; goto loop
  const head = [...storeImm(va(DATA), 0), ...load(EAX, va(MAILBOX)), 0x85, 0xc0];
  const loopLength = head.length + 2 + halt.length + 2;
  const body = [...head, 0x75, halt.length + 2, ...halt, 0xeb, -(loopLength) & 0xff];
  const back = -(loopLength + send.length + 2) & 0xff;
  return [...start, ...body, ...send, 0xeb, back];
}

export interface NetGuest {
  t: TinyGuest;
  bus: DeviceBus;
  device: NetworkDevice;
  /** Puts a frame in the mailbox for `slot` and raises the irq, so that the Guest sends it when it next runs. */
  send(slot: number, frame: Uint8Array | [number, number][]): void;
  /** The frames in the receive buffers, freeing them (as the driver refills them); `keep` leaves them full. */
  takeFrames(keep?: boolean): Uint8Array[];
  /** used_len of the last send's descriptor. */
  lastSendLength(): number;
}

/** A puppet Guest on `host` with `device` (already made, with its page) at bus slot `index`. */
export function netGuest(host: Host, device: NetworkDevice, index = 0): NetGuest {
  const page = device.requirements.memory ?? new Uint8Array(4096);
  const t = tinyGuest(code(device.slot), {
    host, pages: [page], memory: [[HANDLER, iret]],
    ...(device.requirements.shared ? { sharedPages: [], sharedBeyondHost: [page] } : {}),
  });
  const descriptors = new DataView(t.memory.ram.buffer, RX_DMAS, RX_COUNT * 100);
  for (let i = 0; i < RX_COUNT; i++) {
    descriptors.setUint32(i * 100 + 4, RX_BUFFERS + i * 0x800, true);
    descriptors.setUint16(i * 100 + 68, RX_SIZE, true);
  }
  const bus = new DeviceBus([device]);
  bus.attach([{ index, pfn: PAGE_GPA / 4096, memory: page }], new GuestLink(host, t.guest, () => {}));
  return {
    t, bus, device,
    send(slot, frame) {
      const ram = t.memory.ram;
      const view = new DataView(ram.buffer);
      ram.fill(0, SEND_DMA, SEND_DMA + 100);
      const pieces: [number, number][] = Array.isArray(frame) ? frame : [];
      if (!Array.isArray(frame)) {
        ram.set(frame, TX_BUFFERS);
        for (let at = 0; at < frame.length; at += 4096) pieces.push([TX_BUFFERS + at, Math.min(4096, frame.length - at)]);
      }
      pieces.forEach(([addr, len], i) => {
        view.setUint32(SEND_DMA + 4 + 4 * i, addr, true);
        view.setUint16(SEND_DMA + 68 + 2 * i, len, true);
      });
      view.setUint32(MAILBOX, PAGE_GPA + 4 * slot, true);
      host.irq(t.guest, IRQ);
    },
    takeFrames(keep = false) {
      const frames: Uint8Array[] = [];
      for (let i = 0; i < RX_COUNT; i++) {
        const used = t.u32(RX_DMAS + i * 100);
        if (used === 0) continue;
        frames.push(t.memory.ram.slice(RX_BUFFERS + i * 0x800, RX_BUFFERS + i * 0x800 + used));
        if (!keep) t.ram.setUint32(RX_DMAS + i * 100, 0, true);
      }
      return frames;
    },
    lastSendLength: () => t.u32(SEND_DMA),
  };
}

/** Runs a puppet until it halts with nothing to do, handing its Launcher DMA to its bus; returns how the last run ended. */
export function settle(g: NetGuest, limit = 20): string {
  for (let k = 0; k < limit; k++) {
    const result = g.t.host.run(g.t.guest, 100_000);
    if (result.kind === "dma") {
      g.bus.handleDma(result.dmaGpa, result.key);
      continue;
    }
    g.bus.deliverInput();
    if (result.kind === "dead") return `dead: ${result.reason}`;
    if (result.kind === "timeslice" && result.halted && g.t.guest.irqsPending === 0) return "halted";
  }
  return "busy";
}

export const frameBytes = (text: string) => new TextEncoder().encode(text);
export const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
