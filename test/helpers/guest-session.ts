// A whole machine for tests: the book's Guest kernel laid out by the
// launcher's layout code, run by the real Host, with its DMA served by the
// launcher's own device models (the console, and any others a test adds)
// through the device bus, in-process and on a virtual clock. It records
// what the Host's trace reports, so tests can ask which hypercalls ran and
// which traps were reflected.
//
// Several Guests can share one Host (a TestMachine), taking turns on one
// virtual clock. A bare network page is given with pageDevice(): Guests
// given the same page object, marked shared, talk through the Host's
// inter-Guest DMA alone, exactly as --sharenet Guests of one process do
// (spec 8.4, 9.3).
import { Host } from "../../src/host/host.ts";
import type { Guest } from "../../src/host/guest.ts";
import type { HostEvent } from "../../src/host/trace.ts";
import { PhysicalMemory, PAGE_SIZE } from "../../src/cpu/memory.ts";
import type { CPU } from "../../src/cpu/cpu.ts";
import { layOutGuest } from "../../src/launcher/layout.ts";
import { ConsoleDevice } from "../../src/devices/console.ts";
import { DeviceBus } from "../../src/devices/bus.ts";
import { GuestLink, type DmaBuffer } from "../../src/devices/link.ts";
import type { Device, DeviceRequirements, Placement } from "../../src/devices/device.ts";

/**
 * A device that is only a descriptor and its pages (fresh zeroed ones if
 * not given), shared with other Guests or not. `onSend` is the Launcher's
 * side of a SEND_DMA to a key in them: it gets the bytes sent and returns
 * what goes in used_len. Without it, nothing serves them.
 */
export function pageDevice(options: {
  type: number; features: number; pages?: Uint8Array; shared?: boolean;
  onSend?: (bytes: Uint8Array, key: number) => number;
}): Device {
  let start = 0, end = 0;
  let link: GuestLink;
  const requirements: DeviceRequirements = {
    type: options.type, features: options.features, pages: options.pages ? options.pages.length / PAGE_SIZE : 1,
    description: `device type ${options.type}`, memory: options.pages, shared: options.shared ?? false,
  };
  return {
    requirements,
    attach(placement: Placement, guestLink: GuestLink) {
      start = placement.pageGpa;
      end = start + placement.memory.length;
      link = guestLink;
    },
    serves: (key: number) => options.onSend !== undefined && key >= start && key < end,
    output: (key: number, send: DmaBuffer) => options.onSend!(link.gather(send), key),
  };
}

/** A SEND_DMA as the Host's trace reported it. */
export interface SendRecord {
  key: number;
  /** Guest-physical address of the lguest_dma sent. */
  dma: number;
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
  /** Lines the devices would have printed on the launcher's stderr. */
  warnings: string[];
  /** Every console output descriptor the Guest sent: its gpa and its 100 bytes as they were. */
  consoleDescriptors: { gpa: number; bytes: Uint8Array }[];
  /** Every BIND_DMA (irq 0: unbind) the Guest made. */
  binds: { key: number; dmas: number; count: number; irq: number; ok: boolean }[];
  cpu: CPU;
  guest: Guest;
  host: Host;
  machine: TestMachine;
  /** Guest-physical address of each device's first page, in bus order (the console has none). */
  devicePages: number[];
  type(text: string | Uint8Array): void;
  /** Runs the machine until `until()` holds, a Guest dies, or every Guest halts with nothing to wake it. */
  run(until?: () => boolean, maxInstructions?: number): void;
}

/** The virtual clock's epoch for tests: 2024-06-01 12:00 UTC. */
const EPOCH = 1717243200n * 1_000_000_000n;
const SLICE = 100_000;
const DMA_ADDRESSES = 4, DMA_LENGTHS = 68, DMA_SECTIONS = 16;

interface Running {
  session: GuestSession;
  bus: DeviceBus;
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
    options: { memoryBytes?: number; devices?: Device[] } = {},
  ): GuestSession {
    const decoder = new TextDecoder("latin1");
    const console = new ConsoleDevice((bytes) => {
      session.output += decoder.decode(bytes);
    });
    const bus = new DeviceBus([...(options.devices ?? []), console]);
    const layout = layOutGuest({
      memoryBytes: options.memoryBytes ?? 32 * 1024 * 1024,
      kernel,
      kernelName: "guest",
      devices: bus.requirements,
      kernelArguments,
    });
    const memory = new PhysicalMemory(layout.ram);
    memory.mapPage(layout.memoryBytes / PAGE_SIZE, layout.descriptorPage);
    const shared: Uint8Array[] = [];
    for (const placed of layout.devices) {
      for (let k = 0; k < placed.pages; k++) {
        const page = placed.memory.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE);
        memory.mapPage(placed.pfn + k, page);
        if (placed.shared) shared.push(page);
      }
    }
    const initialized = this.host.initialize({
      memory, pfnLimit: layout.pfnLimit, pgdir: layout.pgdir, start: layout.entry, pageOffset: layout.pageOffset,
      sharedPages: shared,
    });
    if (!initialized.ok) throw new Error(initialized.message);
    const guest = initialized.guest;
    const session: GuestSession = {
      output: "", dead: undefined, callLog: [], hypercalls: new Map(), reflected: new Map(), newPagetables: [],
      sends: [], warnings: [], binds: [], consoleDescriptors: [], cpu: guest.cpu, guest, host: this.host, machine: this,
      devicePages: layout.devices.filter((d) => d.pages > 0).map((d) => d.pfn * PAGE_SIZE),
      type: (text) => console.receive(typeof text === "string" ? new TextEncoder().encode(text) : text),
      run: (until, maxInstructions) => this.run(until, maxInstructions),
    };
    bus.attach(layout.devices, new GuestLink(this.host, guest, (line) => session.warnings.push(line)));
    this.guests.push({ session, bus, released: false, paused: false });
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
    const { session, bus } = running;
    const guest = session.guest;
    this.current = guest.cpu;
    this.sliceStart = guest.cpu.instructions;
    const result = this.host.run(guest, SLICE);
    this.executed += BigInt(guest.cpu.instructions - this.sliceStart);
    this.current = undefined;
    if (result.kind === "dma") {
      if (result.key === 0) session.consoleDescriptors.push({ gpa: result.dmaGpa, bytes: guest.copyOut(result.dmaGpa, 100) });
      bus.handleDma(result.dmaGpa, result.key);
    }
    if (result.kind === "dead" || guest.dead !== undefined) {
      session.dead = guest.dead;
      return "dead";
    }
    const before = guest.irqsPending;
    bus.deliverInput();
    if (guest.irqsPending !== before) return "ran";
    if (result.kind === "timeslice" && result.halted) return { timerAt: result.timerAt };
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
      session.sends.push({ key: event.key, dma: event.dma, outcome: event.outcome, to: event.to, length: event.length });
    } else if (event.type === "dma-bind") {
      session.binds.push({ key: event.key, dmas: event.dmas, count: event.count, irq: event.irq, ok: event.ok });
    }
  }
}

/** One Guest on a Host of its own, with the console after `devices`. */
export function bootGuest(
  kernel: Uint8Array<ArrayBuffer>, kernelArguments: string[],
  options: { memoryBytes?: number; nsPerInstruction?: number; devices?: Device[] } = {},
): GuestSession {
  return new TestMachine({ nsPerInstruction: options.nsPerInstruction }).boot(kernel, kernelArguments, options);
}

/**
 * What a Launcher does to give a Guest bytes (spec 2.7, 9.3's --tunnet):
 * GETDMA for a buffer the Guest bound to `key`, copy the bytes into its
 * pieces, write the count into used_len, and raise the irq GETDMA named.
 * Returns false if the Guest had no free buffer there.
 */
export function deliverDma(session: GuestSession, key: number, bytes: Uint8Array): boolean {
  const { guest, host } = session;
  const found = host.getDma(guest, key);
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
  host.irq(guest, irq);
  return true;
}
