// The book's Guest under the debugger core, in-process: laid out by the
// launcher's layout code, run by the real Host in the launcher's slices
// with its virtual clock, the console served by the launcher's own console
// functions, and the trace written as `--trace=...,count` writes it. The
// loop asks the debugger what the launcher's loop asks it (beforeRun,
// cpuStopped, exited), synchronously: `run` returns when the debugger
// has stopped the Guest or the Guest has died.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Host } from "../../src/host/host.ts";
import type { Guest } from "../../src/host/guest.ts";
import { PhysicalMemory, PAGE_SIZE } from "../../src/cpu/memory.ts";
import { layOutGuest } from "../../src/launcher/layout.ts";
import { ConsoleDevice } from "../../src/devices/console.ts";
import { DeviceBus } from "../../src/devices/bus.ts";
import { GuestLink } from "../../src/devices/link.ts";
import { formatEvent } from "../../src/trace/print.ts";
import { Debugger, type Stop } from "../../src/debug/debugger.ts";
import { readElfSymbols } from "../../src/debug/symbols.ts";

export const vmlinux = new Uint8Array(readFileSync(join(import.meta.dirname, "..", "..", "images", "vmlinux")));

/** The launcher's slice and virtual clock (lguest.ts.md, L:090). */
const SLICE = 200_000;
const EPOCH = 1191888000n * 1_000_000_000n;

export interface DebugSession {
  guest: Guest;
  host: Host;
  debug: Debugger;
  /** Trace lines so far, as --trace=hcall,trap,irq,dma,pgtable,count prints them. */
  trace: string[];
  output: string;
  dead: string | undefined;
  /** Runs until the debugger stops the Guest or it dies; the stop, if any. */
  run(): Stop | undefined;
}

export function debugSession(options: { input?: string } = {}): DebugSession {
  const decoder = new TextDecoder("latin1");
  const console = new ConsoleDevice((bytes) => (session.output += decoder.decode(bytes)));
  const bus = new DeviceBus([console]);
  const layout = layOutGuest({
    memoryBytes: 64 * 1024 * 1024, kernel: vmlinux, kernelName: "vmlinux", devices: bus.requirements, kernelArguments: [],
  });
  const memory = new PhysicalMemory(layout.ram);
  memory.mapPage(layout.memoryBytes / PAGE_SIZE, layout.descriptorPage);
  let skipped = 0n;
  let guest: Guest | undefined;
  const now = () => EPOCH + BigInt(guest?.cpu.instructions ?? 0) * 10n + skipped;
  const trace: string[] = [];
  const host: Host = new Host({
    now, seed: 1, trace: (event) => trace.push(formatEvent(event, host.guests[event.guest]?.cpu.instructions ?? 0)),
  });
  const initialized = host.initialize({ memory, pfnLimit: layout.pfnLimit, pgdir: layout.pgdir, start: layout.entry, pageOffset: layout.pageOffset });
  if (!initialized.ok) throw new Error(initialized.message);
  guest = initialized.guest;
  const g = guest;
  bus.attach(layout.devices, new GuestLink(host, g, () => {}));
  if (options.input !== undefined) console.receive(new TextEncoder().encode(options.input));
  console.end();
  const debug = new Debugger({ cpu: g.cpu, guest: g, symbols: readElfSymbols(vmlinux) });
  const session: DebugSession = {
    guest: g, host, debug, trace, output: "", dead: undefined,
    run() {
      for (;;) {
        if (debug.beforeRun() !== undefined) return debug.lastStop;
        if (session.dead !== undefined) return debug.lastStop;
        const result = host.run(g, SLICE);
        if (result.kind === "paused") {
          debug.cpuStopped();
          continue;
        }
        if (result.kind === "dma") {
          bus.handleDma(result.dmaGpa, result.key);
        } else if (result.kind === "dead") {
          session.dead = result.reason;
          debug.exited(result.reason, result.reason === "CRASH: Power down" ? 0 : 1);
          return debug.lastStop;
        }
        const before = g.irqsPending;
        bus.deliverInput();
        if (result.kind === "timeslice" && result.halted && g.irqsPending === before) {
          if (result.timerAt === undefined) throw new Error("halted for ever");
          if (result.timerAt > now()) skipped += result.timerAt - now();
        }
      }
    },
  };
  return session;
}

/** A symbol's address in images/vmlinux, from the ELF symbol table. */
export function symbol(name: string): number {
  const found = readElfSymbols(vmlinux).find(name);
  if (found === undefined) throw new Error(`no symbol ${name}`);
  return found.address;
}
