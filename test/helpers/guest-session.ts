// A whole machine for tests: the book's Guest kernel laid out by the
// launcher's layout code, run by the real Host, with its DMA served by the
// launcher's own device models (the console, and any others a test adds)
// through the device bus, in-process and on a virtual clock. It records what the Host's trace reports, so tests can
// ask which hypercalls ran and which traps were reflected.
import { Host } from "../../src/host/host.ts";
import type { Guest } from "../../src/host/guest.ts";
import type { HostEvent } from "../../src/host/trace.ts";
import { PhysicalMemory, PAGE_SIZE } from "../../src/cpu/memory.ts";
import type { CPU } from "../../src/cpu/cpu.ts";
import { layOutGuest } from "../../src/launcher/layout.ts";
import { ConsoleDevice } from "../../src/devices/console.ts";
import { DeviceBus } from "../../src/devices/bus.ts";
import { GuestLink } from "../../src/devices/link.ts";
import type { Device } from "../../src/devices/device.ts";

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
  /** Every console output descriptor the Guest sent: its gpa and its 100 bytes as they were. */
  consoleDescriptors: { gpa: number; bytes: Uint8Array }[];
  cpu: CPU;
  guest: Guest;
  host: Host;
  /** Lines the devices would have printed on the launcher's stderr. */
  warnings: string[];
  type(text: string | Uint8Array): void;
  /** Runs until `until()` holds, the Guest dies, or it halts with nothing to wake it. */
  run(until?: () => boolean, maxInstructions?: number): void;
}

/** The virtual clock's epoch for tests: 2024-06-01 12:00 UTC. */
const EPOCH = 1717243200n * 1_000_000_000n;

export function bootGuest(
  kernel: Uint8Array<ArrayBuffer>, kernelArguments: string[],
  options: { memoryBytes?: number; nsPerInstruction?: number; devices?: Device[] } = {},
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
  for (const device of layout.devices) {
    for (let k = 0; k < device.pages; k++) memory.mapPage(device.pfn + k, device.memory.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE));
  }
  const top = layout.pfnLimit * PAGE_SIZE;
  const ns = BigInt(options.nsPerInstruction ?? 10);
  let skipped = 0n;
  let cpu: CPU | undefined;
  const now = () => EPOCH + BigInt(cpu?.instructions ?? 0) * ns + skipped;
  const session = {
    output: "", dead: undefined as string | undefined, warnings: [] as string[], callLog: [] as number[], hypercalls: new Map<number, number>(),
    reflected: new Map<number, number>(), newPagetables: [] as number[],
    consoleDescriptors: [] as { gpa: number; bytes: Uint8Array }[],
  };
  const trace = (event: HostEvent) => {
    if (event.type === "hypercall") {
      session.callLog.push(event.call);
      session.hypercalls.set(event.call, (session.hypercalls.get(event.call) ?? 0) + 1);
    } else if (event.type === "trap" && event.delivery === "reflected") {
      session.reflected.set(event.vector, (session.reflected.get(event.vector) ?? 0) + 1);
    } else if (event.type === "pagetable" && event.op === "new") {
      session.newPagetables.push(event.cr3);
    }
  };
  const host = new Host({ now, seed: 1, trace });
  const initialized = host.initialize({
    memory, pfnLimit: layout.pfnLimit, pgdir: layout.pgdir, start: layout.entry, pageOffset: layout.pageOffset,
  });
  if (!initialized.ok) throw new Error(initialized.message);
  const guest = initialized.guest;
  cpu = guest.cpu;
  bus.attach(layout.devices, new GuestLink(host, guest, (line) => session.warnings.push(line)));
  return Object.assign(session, {
    cpu,
    guest,
    host,
    type(text: string | Uint8Array) {
      console.receive(typeof text === "string" ? new TextEncoder().encode(text) : text);
    },
    run(until: () => boolean = () => false, maxInstructions = 2_000_000_000) {
      const limit = guest.cpu.instructions + maxInstructions;
      while (session.dead === undefined && !until() && guest.cpu.instructions < limit) {
        const result = host.run(guest, 100_000);
        if (result.kind === "dma") {
          if (result.key === 0) session.consoleDescriptors.push({ gpa: result.dmaGpa, bytes: guest.copyOut(result.dmaGpa, 100) });
          bus.handleDma(result.dmaGpa, result.key);
        } else if (result.kind === "dead") {
          session.dead = result.reason;
        }
        const before = guest.irqsPending;
        bus.deliverInput();
        const raised = guest.irqsPending !== before;
        if (result.kind === "timeslice" && result.halted) {
          if (raised) continue;
          if (result.timerAt === undefined) return;
          if (result.timerAt > now()) skipped += result.timerAt - now();
        }
      }
    },
  });
}
