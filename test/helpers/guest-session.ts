// A whole machine for tests: the book's Guest kernel laid out by the
// launcher's layout code, run by the real Host, with the console's DMA
// served by the launcher's own console functions, in-process and on a
// virtual clock. It records what the Host's trace reports, so tests can
// ask which hypercalls ran and which traps were reflected.
//
// Several Guests can share one Host (a TestMachine), taking turns on one
// virtual clock. Devices other than the console are given as descriptor
// fields and pages: Guests given the same page object for a network
// device, marked shared, talk through the Host's inter-Guest DMA alone,
// exactly as --sharenet Guests do (spec 8.4, 9.3).
import { Host } from "../../src/host/host.ts";
import type { Guest } from "../../src/host/guest.ts";
import type { HostEvent } from "../../src/host/trace.ts";
import { PhysicalMemory, PAGE_SIZE } from "../../src/cpu/memory.ts";
import type { CPU } from "../../src/cpu/cpu.ts";
import { layOutGuest } from "../../src/launcher/layout.ts";
import { giveConsoleInput, takeConsoleOutput } from "../../src/launcher/console.ts";

/** A device on the bus, before the console (which every Guest gets last). */
export interface TestDevice {
  type: number;
  features: number;
  /** Its pages (a multiple of 4096 bytes); fresh zeroed pages if not given. */
  pages?: Uint8Array;
  /** The pages are a shared mapping: keys in them are shared keys (spec 8.4). */
  shared?: boolean;
  /** The Launcher's side: a SEND_DMA to a key inside this device's pages. */
  onDma?: (session: GuestSession, dmaGpa: number, key: number) => void;
}

/** A SEND_DMA as the Host's trace reported it. */
export interface SendRecord {
  key: number;
  outcome: "launcher" | "delivered" | "dropped" | "full" | "failed";
  to?: number;
  length?: number;
}

export interface GuestSession {
  output: string;
  dead: string | undefined;
  /** Hypercall numbers in the order they ran (synchronous and from the ring). */
  callLog: number[];
  /** Hypercall number to how many times it ran. */
  hypercalls: Map<number, number>;
  /** Trap vector to how many times the Host reflected it into the Guest. */
  reflected: Map<number, number>;
  /** Page directories the Guest switched to with NEW_PGTABLE, in order. */
  newPagetables: number[];
  /** Every SEND_DMA the Guest made, and where it went. */
  sends: SendRecord[];
  /** Every console output descriptor the Guest sent: its gpa and its 100 bytes as they were. */
  consoleDescriptors: { gpa: number; bytes: Uint8Array }[];
  /** Every BIND_DMA (irq 0: unbind) the Guest made. */
  binds: { key: number; dmas: number; count: number; irq: number; ok: boolean }[];
  cpu: CPU;
  guest: Guest;
  machine: TestMachine;
  /** Guest-physical address of each device's first page, in bus order (the console has none). */
  devicePages: number[];
  type(text: string): void;
  /** Runs the machine until `until()` holds, a Guest dies, or every Guest halts with nothing to wake it. */
  run(until?: () => boolean, maxInstructions?: number): void;
}

/** The virtual clock's epoch for tests: 2024-06-01 12:00 UTC. */
const EPOCH = 1717243200n * 1_000_000_000n;
const SLICE = 100_000;
const DMA_ADDRESSES = 4, DMA_LENGTHS = 68, DMA_SECTIONS = 16;

interface Running {
  session: GuestSession;
  pending: Uint8Array[];
  devices: { start: number; end: number; device: TestDevice }[];
  released: boolean;
  paused: boolean;
}

/** One Host, any number of Guests, one virtual clock. */
export class TestMachine {
  readonly host: Host;
  private readonly guests: Running[] = [];
  private readonly ns: bigint;
  private executed = 0n;
  private skipped = 0n;
  private current: CPU | undefined;
  private sliceStart = 0;
  private woken = false;

  constructor(options: { nsPerInstruction?: number } = {}) {
    this.ns = BigInt(options.nsPerInstruction ?? 10);
    this.host = new Host({
      now: () => this.now(),
      seed: 1,
      trace: (event) => this.record(event),
      wake: () => {
        this.woken = true;
      },
    });
  }

  /** The virtual clock: every instruction any Guest ran, plus the time skipped while all were halted. */
  now(): bigint {
    const running = this.current ? BigInt(this.current.instructions - this.sliceStart) : 0n;
    return EPOCH + (this.executed + running) * this.ns + this.skipped;
  }

  boot(
    kernel: Uint8Array<ArrayBuffer>, kernelArguments: string[],
    options: { memoryBytes?: number; devices?: TestDevice[] } = {},
  ): GuestSession {
    const devices = options.devices ?? [];
    const layout = layOutGuest({
      memoryBytes: options.memoryBytes ?? 32 * 1024 * 1024,
      kernel,
      kernelName: "guest",
      devices: [
        ...devices.map((d, i) => ({
          type: d.type, features: d.features, pages: d.pages ? d.pages.length / PAGE_SIZE : 1, description: `device ${i}`,
        })),
        { type: 1, features: 0, pages: 0, description: "console" },
      ],
      kernelArguments,
    });
    const memory = new PhysicalMemory(layout.ram);
    memory.mapPage(layout.memoryBytes / PAGE_SIZE, layout.descriptorPage);
    const shared: Uint8Array[] = [];
    const ranges: Running["devices"] = [];
    layout.devices.forEach((placed, i) => {
      const device = devices[i];
      if (device === undefined) return;
      const pages = device.pages ?? placed.memory;
      for (let k = 0; k < placed.pages; k++) {
        const page = pages.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
        memory.mapPage(placed.pfn + k, page);
        if (device.shared) shared.push(page);
      }
      ranges.push({ start: placed.pfn * PAGE_SIZE, end: (placed.pfn + placed.pages) * PAGE_SIZE, device });
    });
    const initialized = this.host.initialize({
      memory, pfnLimit: layout.pfnLimit, pgdir: layout.pgdir, start: layout.entry, pageOffset: layout.pageOffset,
      sharedPages: shared,
    });
    if (!initialized.ok) throw new Error(initialized.message);
    const guest = initialized.guest;
    const running: Running = {
      pending: [], devices: ranges, released: false, paused: false,
      session: undefined as unknown as GuestSession,
    };
    const session: GuestSession = {
      output: "", dead: undefined, callLog: [], hypercalls: new Map(), reflected: new Map(), newPagetables: [],
      sends: [], binds: [], consoleDescriptors: [], cpu: guest.cpu, guest, machine: this,
      devicePages: ranges.map((r) => r.start),
      type: (text) => running.pending.push(new TextEncoder().encode(text)),
      run: (until, maxInstructions) => this.run(until, maxInstructions),
    };
    running.session = session;
    this.guests.push(running);
    return session;
  }

  /** The Launcher exits: the Host forgets the Guest and its DMA bindings (the slot on a shared page stays as it was). */
  release(session: GuestSession): void {
    const running = this.guests.find((g) => g.session === session)!;
    running.released = true;
    this.host.release(session.guest);
    session.dead ??= "released";
  }

  /** Stops running a Guest, or starts again, as if its Launcher had been sent SIGSTOP or SIGCONT. */
  pause(session: GuestSession, paused = true): void {
    this.guests.find((g) => g.session === session)!.paused = paused;
  }

  run(until: () => boolean = () => false, maxInstructions = 2_000_000_000): void {
    const limit = this.executed + BigInt(maxInstructions);
    while (!until() && this.executed < limit) {
      const live = this.guests.filter((g) => !g.released && !g.paused && g.session.dead === undefined);
      if (live.length === 0) return;
      this.woken = false;
      let allHalted = true;
      let earliest: bigint | undefined;
      for (const running of live) {
        const outcome = this.step(running);
        if (outcome === "dead") return;
        if (outcome === "ran") {
          allHalted = false;
        } else if (outcome.timerAt !== undefined && (earliest === undefined || outcome.timerAt < earliest)) {
          earliest = outcome.timerAt;
        }
        if (until()) return;
      }
      if (allHalted && !this.woken) {
        if (earliest === undefined) return;
        if (earliest > this.now()) this.skipped += earliest - this.now();
      }
    }
  }

  /** One slice of one Guest: "ran", "dead", or halted with its timer. */
  private step(running: Running): "ran" | "dead" | { timerAt: bigint | undefined } {
    const { session } = running;
    const guest = session.guest;
    giveConsoleInput(this.host, guest, running.pending);
    this.current = guest.cpu;
    this.sliceStart = guest.cpu.instructions;
    const result = this.host.run(guest, SLICE);
    this.executed += BigInt(guest.cpu.instructions - this.sliceStart);
    this.current = undefined;
    if (result.kind === "dma") {
      const device = running.devices.find((d) => result.key >= d.start && result.key < d.end)?.device;
      if (device?.onDma) {
        device.onDma(session, result.dmaGpa, result.key);
      } else {
        session.consoleDescriptors.push({ gpa: result.dmaGpa, bytes: guest.copyOut(result.dmaGpa, 100) });
        const bytes = takeConsoleOutput(guest, result.dmaGpa, result.key);
        if (bytes) session.output += new TextDecoder("latin1").decode(bytes);
      }
      return "ran";
    }
    if (result.kind === "dead") {
      session.dead = result.reason;
      return "dead";
    }
    if (result.kind === "timeslice" && result.halted && running.pending.length === 0) return { timerAt: result.timerAt };
    return "ran";
  }

  private record(event: HostEvent): void {
    const session = this.guests.find((g) => g.session.guest.id === event.guest && !g.released)?.session;
    if (session === undefined) return;
    if (event.type === "hypercall") {
      session.callLog.push(event.call);
      session.hypercalls.set(event.call, (session.hypercalls.get(event.call) ?? 0) + 1);
    } else if (event.type === "trap" && event.delivery === "reflected") {
      session.reflected.set(event.vector, (session.reflected.get(event.vector) ?? 0) + 1);
    } else if (event.type === "pagetable" && event.op === "new") {
      session.newPagetables.push(event.cr3);
    } else if (event.type === "dma-send") {
      session.sends.push({ key: event.key, outcome: event.outcome, to: event.to, length: event.length });
    } else if (event.type === "dma-bind") {
      session.binds.push({ key: event.key, dmas: event.dmas, count: event.count, irq: event.irq, ok: event.ok });
    }
  }
}

/** One Guest on a Host of its own, with only a console. */
export function bootGuest(
  kernel: Uint8Array<ArrayBuffer>, kernelArguments: string[],
  options: { memoryBytes?: number; nsPerInstruction?: number; devices?: TestDevice[] } = {},
): GuestSession {
  return new TestMachine({ nsPerInstruction: options.nsPerInstruction }).boot(kernel, kernelArguments, options);
}

/** The bytes a Guest's lguest_dma describes, piece by piece up to the first zero length. */
export function dmaBytes(guest: Guest, dmaGpa: number): Uint8Array {
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < DMA_SECTIONS; i++) {
    const length = guest.read32(dmaGpa + DMA_LENGTHS + 2 * i) & 0xffff;
    if (length === 0) break;
    pieces.push(guest.readBytes(guest.read32(dmaGpa + DMA_ADDRESSES + 4 * i), length));
  }
  const bytes = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    bytes.set(piece, at);
    at += piece.length;
  }
  return bytes;
}

/**
 * What a Launcher does to give a Guest bytes (spec 2.7, 9.3's --tunnet):
 * GETDMA for a buffer the Guest bound to `key`, copy the bytes into its
 * pieces, write the count into used_len, and raise the irq GETDMA named.
 * Returns false if the Guest had no free buffer there.
 */
export function deliverDma(session: GuestSession, key: number, bytes: Uint8Array): boolean {
  const { guest, machine } = session;
  const found = machine.host.getDma(guest, key);
  if (!found.ok) return false;
  const irq = guest.read32(found.dma);
  let copied = 0;
  for (let i = 0; i < DMA_SECTIONS && copied < bytes.length; i++) {
    const length = guest.read32(found.dma + DMA_LENGTHS + 2 * i) & 0xffff;
    if (length === 0) break;
    const part = bytes.subarray(copied, copied + length);
    guest.copyIn(guest.read32(found.dma + DMA_ADDRESSES + 4 * i), part);
    copied += part.length;
  }
  guest.write32(found.dma, copied);
  machine.host.irq(guest, irq);
  return true;
}
