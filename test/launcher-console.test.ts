// The Launcher's console reads struct lguest_dma as spec 8.5 lays it out:
// sixteen u32 addresses at offset 4, then sixteen u16 lengths at offset 68.
// Linux's hvc driver sends one piece at a time, but the layout allows
// sixteen, and a console that misread the lengths would garble the second.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LHCALL_BIND_DMA } from "../src/host/constants.ts";
import { ConsoleDevice } from "../src/devices/console.ts";
import { DeviceBus } from "../src/devices/bus.ts";
import { GuestLink } from "../src/devices/link.ts";
import type { TinyGuest } from "./helpers/tiny-guest.ts";
import { boot, SCRATCH, tinyGuest } from "./helpers/tiny-guest.ts";
import { hcall, jmpSelf } from "./helpers/x86.ts";

const TEXT = 0xb000;

/** The console model on its bus, as the Launcher has it, writing into `output`. */
function consoleOn(t: TinyGuest, output: Uint8Array[] = []) {
  const console = new ConsoleDevice((bytes) => output.push(bytes));
  const bus = new DeviceBus([console]);
  bus.attach([{ index: 0, pfn: 0, memory: new Uint8Array(0) }], new GuestLink(t.host, t.guest, () => {}));
  return { console, bus, output };
}

/** An lguest_dma at `at` with the given [address, length] pieces. */
function writeDma(ram: DataView, at: number, pieces: [number, number][]): void {
  ram.setUint32(at, 0, true);
  pieces.forEach(([address, length], i) => {
    ram.setUint32(at + 4 + 4 * i, address, true);
    ram.setUint16(at + 68 + 2 * i, length, true);
  });
}

test("console output takes every piece of the send, with its u16 length, and reports the total in used_len", () => {
  const t = tinyGuest([...boot, ...jmpSelf]);
  t.run(1_000);
  new Uint8Array(t.ram.buffer).set(new TextEncoder().encode("Hello, world"), TEXT);
  writeDma(t.ram, SCRATCH, [[TEXT, 5], [TEXT + 5, 7], [TEXT, 1]]);
  const { bus, output } = consoleOn(t);
  bus.handleDma(SCRATCH, 0);
  assert.equal(t.guest.dead, undefined);
  assert.deepEqual(output.map((bytes) => new TextDecoder().decode(bytes)), ["Hello, worldH"]);
  assert.equal(t.u32(SCRATCH), 13);
});

test("console input fills the bound buffer's pieces in order, each up to its u16 length", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_BIND_DMA, 0, SCRATCH, (1 << 8) | 3), ...jmpSelf]);
  writeDma(t.ram, SCRATCH, [[TEXT, 2], [TEXT + 0x100, 3]]);
  t.run(1_000);
  const { console, bus } = consoleOn(t);
  console.receive(new TextEncoder().encode("hel"));
  console.receive(new TextEncoder().encode("lo"));
  bus.deliverInput();
  assert.equal(t.guest.dead, undefined);
  const text = (gpa: number, length: number) => new TextDecoder().decode(new Uint8Array(t.ram.buffer, gpa, length));
  assert.equal(text(TEXT, 2), "he");
  assert.equal(text(TEXT + 0x100, 3), "llo");
  assert.equal(t.u32(SCRATCH), 5);
  assert.equal(console.inputWaiting(), false);
});
