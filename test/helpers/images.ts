// Kernel images built byte by byte for the loader tests. Nothing here uses
// the loader's code: the layouts come from the ELF specification and from
// spec section 1, so a test that passes agrees with them, not with itself.
import { gzipSync } from "node:zlib";

export interface TestSegment {
  type?: number; // default PT_LOAD (1)
  vaddr: number;
  paddr: number;
  data: Uint8Array;
  memsz?: number; // default data.length
}

export interface ElfOptions {
  segments: TestSegment[];
  machine?: number; // EM_386 = 3
  type?: number; // ET_EXEC = 2
  phentsize?: number; // 32
  elfClass?: number; // 1 = 32-bit
  entry?: number;
}

/** A minimal i386 ELF executable: header, program headers, segment data. */
export function buildElf(options: ElfOptions): Uint8Array<ArrayBuffer> {
  const phoff = 52;
  const phnum = options.segments.length;
  let dataOffset = phoff + phnum * 32;
  const placed = options.segments.map((segment) => {
    const offset = dataOffset;
    dataOffset += segment.data.length;
    return { ...segment, offset };
  });
  const file = new Uint8Array(dataOffset);
  const view = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, options.elfClass ?? 1, 1, 1], 0);
  view.setUint16(16, options.type ?? 2, true);
  view.setUint16(18, options.machine ?? 3, true);
  view.setUint32(20, 1, true);
  view.setUint32(24, options.entry ?? 0xc0100000, true);
  view.setUint32(28, phoff, true);
  view.setUint16(40, 52, true);
  view.setUint16(42, options.phentsize ?? 32, true);
  view.setUint16(44, phnum, true);
  placed.forEach((segment, i) => {
    const at = phoff + i * 32;
    view.setUint32(at, segment.type ?? 1, true);
    view.setUint32(at + 4, segment.offset, true);
    view.setUint32(at + 8, segment.vaddr, true);
    view.setUint32(at + 12, segment.paddr, true);
    view.setUint32(at + 16, segment.data.length, true);
    view.setUint32(at + 20, segment.memsz ?? segment.data.length, true);
    view.setUint32(at + 24, 7, true);
    view.setUint32(at + 28, 4096, true);
    file.set(segment.data, segment.offset);
  });
  return file;
}

export const genuine = new TextEncoder().encode("GenuineLguest");

/** Kernel text: some filler, "GenuineLguest", then the first instructions. */
export function kernelText(size: number, genuineAt: number): Uint8Array {
  const text = new Uint8Array(size);
  for (let i = 0; i < size; i++) text[i] = 0x90; // nop
  text.set(genuine, genuineAt);
  text.set([0xbc, 0x00, 0x20, 0x10, 0xc0], genuineAt + genuine.length); // mov $..., %esp
  return text;
}

/**
 * A bzImage-shaped file: a fake setup block (which may contain a decoy
 * 1F 8B pair), then a gzip member whose OS byte is 3 (Unix), then trailing
 * bytes as a real bzImage has.
 */
export function buildBzImage(payload: Uint8Array, options: { decoy?: boolean; os?: number } = {}): Uint8Array<ArrayBuffer> {
  const setup = new Uint8Array(1024).fill(0x55);
  if (options.decoy) setup.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0x0b], 100);
  const gzip = new Uint8Array(gzipSync(payload));
  gzip[9] = options.os ?? 3;
  const trailer = new Uint8Array([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
  const file = new Uint8Array(setup.length + gzip.length + trailer.length);
  file.set(setup, 0);
  file.set(gzip, setup.length);
  file.set(trailer, setup.length + gzip.length);
  return file;
}

/** `count` copies of "mov addr,%eax" (A1 + 4 address bytes) with top byte `top`. */
export function movEaxLoads(count: number, top: number): number[] {
  const bytes: number[] = [];
  for (let i = 0; i < count; i++) bytes.push(0xa1, 0x10 + i, 0x20, 0x30, top, 0x90);
  return bytes;
}

export function u32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at, true);
}

export function u16(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(at, true);
}
