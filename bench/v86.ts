// The benchmark workload on v86 (the npm package, a dev dependency): the
// same workload.elf bytes at the same addresses, behind a multiboot stub
// (bench/v86/multiboot.asm) whose int 0x80 handler sends write() to the
// serial port and reports exit(). v86 loads a multiboot ELF without a BIOS.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const STUB_ADDRESS = 0x100000;
const STUB_ENTRY = STUB_ADDRESS + 0x10; // after the multiboot header and the entry word

/** An ELF32 executable of the stub and the workload's PT_LOAD segments, for v86's multiboot loader. */
export function multibootImage(workload: Uint8Array, stub: Uint8Array): Uint8Array {
  const view = new DataView(workload.buffer, workload.byteOffset, workload.byteLength);
  const entry = view.getUint32(24, true);
  const phoff = view.getUint32(28, true), phnum = view.getUint16(44, true);
  const segments: { vaddr: number; bytes: Uint8Array; memsz: number }[] = [];
  for (let k = 0; k < phnum; k++) {
    const at = phoff + 32 * k;
    if (view.getUint32(at, true) !== 1) continue;
    const offset = view.getUint32(at + 4, true), vaddr = view.getUint32(at + 8, true);
    const filesz = view.getUint32(at + 16, true), memsz = view.getUint32(at + 20, true);
    segments.push({ vaddr, bytes: workload.subarray(offset, offset + filesz), memsz });
  }
  const patched = new Uint8Array(stub);
  new DataView(patched.buffer).setUint32(12, entry, true);
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

/** Runs the workload on v86; resolves with what it printed and the seconds from start to exit. */
export async function runOnV86(workload: Uint8Array): Promise<{ output: string; seconds: number }> {
  const require = createRequire(import.meta.url);
  const { V86 } = await import("v86");
  const stub = new Uint8Array(readFileSync(join(import.meta.dirname, "v86", "multiboot.bin")));
  const image = multibootImage(workload, stub);
  return new Promise((resolve, reject) => {
    let output = "";
    let started = 0n;
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
    emulator.add_listener("emulator-started", () => (started = process.hrtime.bigint()));
    emulator.add_listener("serial0-output-byte", (byte: number) => {
      output += String.fromCharCode(byte);
      if (/exit [0-9a-f]{2}\n$/.test(output)) {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        clearTimeout(timeout);
        void emulator.destroy().then(() => resolve({ output, seconds }));
      }
    });
  });
}
