// The benchmark workload on v86 (the npm package, a dev dependency): the
// same workload.elf bytes at the same addresses, behind a multiboot stub
// (bench/v86/multiboot.asm) whose int 0x80 handler sends write() to the
// serial port, reports exit(), and runs the workload again as many times as
// asked. v86 loads a multiboot ELF without a BIOS.
//
// v86 is configured as its own examples run it: its WebAssembly build
// (v86.wasm) with the JIT on (the default; there is no switch to forget).
// It compiles hot pages asynchronously, in the background, and installs the
// code when the compilation finishes; the first run of the workload is
// therefore partly interpreted, and the second finds the code ready.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { readElf } from "../src/launcher/elf.ts";

const STUB_ADDRESS = 0x100000;
const STUB_ENTRY = STUB_ADDRESS + 0x1c; // after the multiboot header and the words bench.ts fills in

/** An ELF32 executable of the stub and the workload's PT_LOAD segments, for v86's multiboot loader. */
export function multibootImage(workload: Uint8Array, stub: Uint8Array, runs = 1): Uint8Array {
  const read = readElf(workload);
  if (!read.ok) throw new Error(`workload.elf: ${read.problem}`);
  const entry = read.elf.entry;
  const segments = read.elf.segments.map(({ vaddr, offset, filesz, memsz }) => (
    { vaddr, bytes: workload.subarray(offset, offset + filesz), memsz }
  ));
  const patched = new Uint8Array(stub);
  const words = new DataView(patched.buffer);
  words.setUint32(12, entry, true);
  words.setUint32(16, runs, true);
  const bss = segments.find((s) => s.memsz > s.bytes.length);
  if (bss !== undefined) {
    words.setUint32(20, bss.vaddr + bss.bytes.length, true);
    words.setUint32(24, bss.memsz - bss.bytes.length, true);
  }
  segments.unshift({ vaddr: STUB_ADDRESS, bytes: patched, memsz: patched.length });
  const headers = 52 + 32 * segments.length;
  let offset = (headers + 15) & ~15;
  const placed = segments.map((s) => {
    const at = offset;
    offset = (offset + s.bytes.length + 15) & ~15;
    return at;
  });
  const image = new Uint8Array(offset);
  const out = new DataView(image.buffer);
  image.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0);
  out.setUint16(16, 2, true); // ET_EXEC
  out.setUint16(18, 3, true); // EM_386
  out.setUint32(20, 1, true);
  out.setUint32(24, STUB_ENTRY, true);
  out.setUint32(28, 52, true); // phoff
  out.setUint16(40, 52, true); // ehsize
  out.setUint16(42, 32, true); // phentsize
  out.setUint16(44, segments.length, true);
  out.setUint16(46, 40, true); // shentsize (no sections)
  segments.forEach((s, k) => {
    const at = 52 + 32 * k;
    out.setUint32(at, 1, true); // PT_LOAD
    out.setUint32(at + 4, placed[k], true);
    out.setUint32(at + 8, s.vaddr, true);
    out.setUint32(at + 12, s.vaddr, true);
    out.setUint32(at + 16, s.bytes.length, true);
    out.setUint32(at + 20, s.memsz, true);
    out.setUint32(at + 24, 7, true);
    out.setUint32(at + 28, 16, true);
    image.set(s.bytes, placed[k]);
  });
  return image;
}

/** CPU seconds (this process, every thread) and wall seconds. */
export interface Spent { cpu: number; wall: number }

const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

/**
 * Runs the workload `runs` times in one v86; resolves with what each run
 * printed and the time each took, from v86's start (after its set-up) to
 * the run's exit line, and the instructions v86's own counter counted in
 * each run (it counts a rep string instruction once per iteration, where
 * ours counts it once per chunk of up to 4096).
 */
export async function runOnV86(workload: Uint8Array, runs: number): Promise<{ outputs: string[]; spent: Spent[]; counted: number[] }> {
  const require = createRequire(import.meta.url);
  const { V86 } = await import("v86");
  const stub = new Uint8Array(readFileSync(join(import.meta.dirname, "v86", "multiboot.bin")));
  const image = multibootImage(workload, stub, runs);
  return new Promise((resolve, reject) => {
    let output = "";
    const outputs: string[] = [];
    const spent: Spent[] = [];
    const counted: number[] = [];
    let lastCpu = 0, lastWall = 0n, lastCount = 0;
    const emulator = new V86({
      wasm_path: require.resolve("v86/build/v86.wasm"),
      memory_size: 256 * 1024 * 1024,
      multiboot: { buffer: image.buffer as ArrayBuffer },
      autostart: true,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    } as ConstructorParameters<typeof V86>[0]);
    const timeout = setTimeout(() => {
      void emulator.destroy();
      reject(new Error(`v86 did not finish the workload in 600 s; it printed ${JSON.stringify(output)}`));
    }, 600_000);
    emulator.add_listener("emulator-started", () => {
      lastCpu = cpuSeconds();
      lastWall = process.hrtime.bigint();
      lastCount = emulator.get_instruction_counter();
    });
    emulator.add_listener("serial0-output-byte", (byte: number) => {
      output += String.fromCharCode(byte);
      if (/exit [0-9a-f]{2}\n$/.test(output)) {
        const cpu = cpuSeconds(), wall = process.hrtime.bigint();
        spent.push({ cpu: cpu - lastCpu, wall: Number(wall - lastWall) / 1e9 });
        const count = emulator.get_instruction_counter();
        counted.push((count - lastCount) >>> 0);
        lastCount = count;
        outputs.push(output);
        output = "";
        lastCpu = cpu;
        lastWall = wall;
        if (outputs.length === runs) {
          clearTimeout(timeout);
          void emulator.destroy().then(() => resolve({ outputs, spent, counted }));
        }
      }
    });
  });
}
