// The block device (spec 9.2; book/devices-block.md): the model on a real
// file through the file backend, driven by hand-built Guests whose SEND_DMA
// and BIND_DMA go through the real Host, the device bus and the GuestLink.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LHCALL_BIND_DMA, LHCALL_SEND_DMA } from "../src/host/constants.ts";
import { BlockDevice, BLOCK_PAGE, type BlockStorage } from "../src/devices/block.ts";
import { DeviceBus } from "../src/devices/bus.ts";
import { GuestLink } from "../src/devices/link.ts";
import { openBlockStorage } from "../src/launcher/block-file.ts";
import { LaunchError } from "../src/launcher/launch-error.ts";
import { boot, RAM_SIZE, SCRATCH, tinyGuest, type TinyGuest } from "./helpers/tiny-guest.ts";
import { hcall, jmpSelf } from "./helpers/x86.ts";

const PAGE = RAM_SIZE; // the first device page: frame 256
const REPLY = SCRATCH; // the bound reply descriptor
const SEND = SCRATCH + 0x800; // request k sends the descriptor at SEND + 100k
const DATA = 0x20000; // data buffers, a page each
const IRQ = 3;

/** struct lguest_dma bytes. */
function dma(pieces: [number, number][]): number[] {
  const bytes = new Uint8Array(100);
  const view = new DataView(bytes.buffer);
  pieces.forEach(([addr, len], i) => {
    view.setUint32(4 + 4 * i, addr, true);
    view.setUint16(68 + 2 * i, len, true);
  });
  return [...bytes];
}

interface Request {
  type: number;
  sector: number;
  bytes: number;
  /** The pieces of the send (a write's data; empty for a read's doorbell). */
  send?: [number, number][];
}

/** A Guest with one block device per storage, each in its own page and bus slot; `requests` are sent in order to device 0 unless `to` says. */
function rig(
  storages: BlockStorage[], requests: (Request & { to?: number })[],
  options: { reply?: [number, number][]; bind?: boolean; log?: string[] } = {},
) {
  const pages = storages.map(() => new Uint8Array(4096));
  const devices = storages.map((storage, i) => new BlockDevice(storage, `disk${i}`));
  const code = [...boot];
  for (let i = 0; i < storages.length; i++) {
    if (options.bind !== false) code.push(...hcall(LHCALL_BIND_DMA, PAGE + i * 4096, REPLY + i * 0x200, (1 << 8) | (IRQ + i)));
  }
  requests.forEach((request, k) => code.push(...hcall(LHCALL_SEND_DMA, PAGE + (request.to ?? 0) * 4096, SEND + k * 100)));
  code.push(...jmpSelf);
  const memory: [number, number[]][] = storages.map((_, i) => [REPLY + i * 0x200, dma(options.reply ?? [[DATA, 4096]])]);
  const t = tinyGuest(code, { pages, memory });
  const warnings: string[] = [];
  const link = new RecordingLink(t, pages, warnings, options.log ?? []);
  const bus = new DeviceBus(devices);
  bus.attach(pages.map((memory, index) => ({ index, pfn: PAGE / 4096 + index, memory })), link);
  return { t, pages, devices, bus, link, warnings, requests };
}

/** A GuestLink that records each interrupt with the device page's result at that moment. */
class RecordingLink extends GuestLink {
  constructor(t: TinyGuest, private readonly pages: Uint8Array[], warnings: string[], readonly log: string[]) {
    super(t.host, t.guest, (line) => warnings.push(line));
  }
  override irq(irq: number): void {
    const results = this.pages.map((page) => new DataView(page.buffer).getInt32(BLOCK_PAGE.result, true));
    this.log.push(`irq ${irq} result ${results.join(",")}`);
    super.irq(irq);
  }
}

/** Runs the Guest to its next request, writes that request into the page, and lets the bus handle it. */
function next(r: ReturnType<typeof rig>, k: number): void {
  const request = r.requests[k];
  const result = r.t.run(10_000);
  assert.equal(result.kind, "dma", `request ${k}: ${JSON.stringify(result)}`);
  if (result.kind !== "dma") return;
  // The Guest filled in the page and the descriptor before sending; we play that part.
  const page = new DataView(r.pages[request.to ?? 0].buffer);
  page.setInt32(BLOCK_PAGE.type, request.type, true);
  page.setUint32(BLOCK_PAGE.sector, request.sector, true);
  page.setUint32(BLOCK_PAGE.bytes, request.bytes, true);
  page.setInt32(BLOCK_PAGE.result, 0, true);
  r.t.memory.ram.set(dma(request.send ?? []), result.dmaGpa);
  r.bus.handleDma(result.dmaGpa, result.key);
}

const resultOf = (r: ReturnType<typeof rig>, device = 0) => new DataView(r.pages[device].buffer).getInt32(BLOCK_PAGE.result, true);

function withFile(size: number, body: (path: string) => void, fill = 0) {
  const dir = mkdtempSync(join(tmpdir(), "lguest-block-"));
  try {
    const path = join(dir, "disk.img");
    writeFileSync(path, new Uint8Array(size).fill(fill));
    body(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function storageOf(path: string, warnings: string[] = []) {
  return openBlockStorage(path, (line) => warnings.push(line));
}

test("the block device asks for type 3, the randomness feature and one page, and writes num_sectors = length / 512, rounded down", () => {
  withFile(5000, (path) => {
    const { storage, close } = storageOf(path);
    const r = rig([storage], []);
    assert.deepEqual(
      { type: r.devices[0].requirements.type, features: r.devices[0].requirements.features, pages: r.devices[0].requirements.pages },
      { type: 3, features: 0x8000, pages: 1 },
    );
    assert.equal(new DataView(r.pages[0].buffer).getUint32(BLOCK_PAGE.numSectors, true), 9, "5000 bytes are 9 whole sectors; the 392-byte tail is not part of the disk");
    close();
  });
});

test("a write lands in the file at sector * 512; result 1, the bound irq, the send's and the reply's used_len 0", () => {
  withFile(64 * 1024, (path) => {
    const { storage, close } = storageOf(path);
    const r = rig([storage], [{ type: 1, sector: 3, bytes: 1024, send: [[DATA + 0x1000, 512], [DATA + 0x2000, 512]] }]);
    r.t.memory.ram.fill(0xaa, DATA + 0x1000, DATA + 0x1000 + 512);
    r.t.memory.ram.fill(0xbb, DATA + 0x2000, DATA + 0x2000 + 512);
    next(r, 0);
    assert.equal(resultOf(r), 1);
    assert.deepEqual(r.link.log, [`irq ${IRQ} result 1`]);
    const file = readFileSync(path);
    assert.ok(file.subarray(3 * 512, 4 * 512).every((b) => b === 0xaa));
    assert.ok(file.subarray(4 * 512, 5 * 512).every((b) => b === 0xbb));
    assert.ok(file.subarray(0, 3 * 512).every((b) => b === 0) && file.subarray(5 * 512).every((b) => b === 0), "nothing else changed");
    assert.equal(r.t.u32(SEND), 0, "the send's used_len");
    assert.equal(r.t.u32(REPLY), 0, "the reply buffer is free again (GETDMA had written the irq there)");
    close();
  });
});

test("a write is written, then flushed, and only then does the Guest see result 1 and the interrupt", () => {
  withFile(64 * 1024, (path) => {
    const { storage, close } = storageOf(path);
    const calls: string[] = [];
    let r: ReturnType<typeof rig>;
    const page = () => new DataView(r.pages[0].buffer).getInt32(BLOCK_PAGE.result, true);
    const recording: BlockStorage = {
      size: storage.size,
      writable: storage.writable,
      read: (offset, length) => storage.read(offset, length),
      write(offset, bytes) {
        calls.push(`write ${offset} ${bytes.length} result ${page()}`);
        storage.write(offset, bytes);
      },
      flush() {
        const onDisk = readFileSync(path).subarray(512, 1024);
        calls.push(`flush result ${page()} ${onDisk.every((b) => b === 0x5a) ? "data in the file" : "data missing"}`);
        storage.flush();
      },
    };
    r = rig([recording], [{ type: 1, sector: 1, bytes: 512, send: [[DATA, 512]] }], { log: calls });
    r.t.memory.ram.fill(0x5a, DATA, DATA + 512);
    next(r, 0);
    assert.deepEqual(calls, [
      "write 512 512 result 0",
      "flush result 0 data in the file",
      `irq ${IRQ} result 1`,
    ]);
    close();
  });
});

test("a read fills the reply buffer's pieces from the file; reply used_len = bytes, result 1", () => {
  withFile(16 * 1024, (path) => {
    const bytes = readFileSync(path);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
    writeFileSync(path, bytes);
    const { storage, close } = storageOf(path);
    const r = rig([storage], [{ type: 0, sector: 2, bytes: 1536 }], { reply: [[DATA + 0x100, 1024], [DATA + 0x3000, 512]] });
    next(r, 0);
    assert.equal(resultOf(r), 1);
    assert.equal(r.t.u32(REPLY), 1536);
    assert.deepEqual([...r.t.memory.ram.subarray(DATA + 0x100, DATA + 0x100 + 1024)], [...bytes.subarray(1024, 2048)]);
    assert.deepEqual([...r.t.memory.ram.subarray(DATA + 0x3000, DATA + 0x3000 + 512)], [...bytes.subarray(2048, 2560)]);
    assert.deepEqual(r.link.log, [`irq ${IRQ} result 1`]);
    close();
  });
});

test("at the end of the disk: the last sector reads and writes; a request reaching past it, or starting past it, is result 2 and touches nothing", () => {
  withFile(8 * 512 + 100, (path) => {
    const { storage, close } = storageOf(path);
    const r = rig([storage], [
      { type: 1, sector: 7, bytes: 512, send: [[DATA, 512]] },
      { type: 0, sector: 7, bytes: 512 },
      { type: 1, sector: 7, bytes: 1024, send: [[DATA, 1024]] },
      { type: 0, sector: 8, bytes: 512 },
      { type: 1, sector: 0xffffffff, bytes: 512, send: [[DATA, 512]] },
    ], { reply: [[DATA + 0x2000, 512]] });
    r.t.memory.ram.fill(0x77, DATA, DATA + 1024);
    next(r, 0);
    assert.equal(resultOf(r), 1, "writing the last whole sector");
    next(r, 1);
    assert.equal(resultOf(r), 1, "reading it back");
    assert.ok(r.t.memory.ram.subarray(DATA + 0x2000, DATA + 0x2200).every((b) => b === 0x77));
    r.t.memory.ram.fill(0x11, DATA, DATA + 1024);
    for (const k of [2, 3, 4]) {
      next(r, k);
      assert.equal(resultOf(r), 2, `request ${k}`);
      assert.equal(r.t.guest.dead, undefined, "an error to the Guest, not its death");
    }
    const file = readFileSync(path);
    assert.equal(file.length, 8 * 512 + 100, "the file did not grow");
    assert.ok(file.subarray(7 * 512, 8 * 512).every((b) => b === 0x77), "the refused write changed nothing");
    assert.ok(file.subarray(8 * 512).every((b) => b === 0), "the tail past the last whole sector is never written");
    assert.equal(r.link.log.length, 5, "every request got its interrupt");
    assert.equal(r.warnings.length, 2, `one warning per kind of problem: ${r.warnings.join(" / ")}`);
    assert.match(r.warnings[0], /^block disk0: a write of 1024 bytes at sector 7, past the end of the disk \(8 sectors\); the guest gets an I\/O error$/);
    close();
  });
});

test("malformed requests are result 2 with the interrupt: an unknown type, bytes that do not match the pieces", () => {
  withFile(8192, (path) => {
    const { storage, close } = storageOf(path);
    const r = rig([storage], [
      { type: 7, sector: 0, bytes: 512, send: [[DATA, 512]] },
      { type: 1, sector: 0, bytes: 1024, send: [[DATA, 512]] },
      { type: 0, sector: 0, bytes: 1024 },
      { type: 0, sector: 0, bytes: 512 },
    ], { reply: [[DATA, 512]] });
    for (const k of [0, 1, 2]) {
      next(r, k);
      assert.equal(resultOf(r), 2, `request ${k}`);
    }
    next(r, 3);
    assert.equal(resultOf(r), 1, "and a good request after them works");
    assert.ok(readFileSync(path).every((b) => b === 0));
    close();
  });
});

test("a read with no reply buffer bound is result 2 on the device's own irq (slot + 1), not the Launcher's exit", () => {
  withFile(8192, (path) => {
    const { storage, close } = storageOf(path);
    const r = rig([storage], [{ type: 0, sector: 0, bytes: 512 }], { bind: false });
    next(r, 0);
    assert.equal(resultOf(r), 2);
    assert.deepEqual(r.link.log, ["irq 1 result 2"]);
    assert.equal(r.t.guest.dead, undefined);
    close();
  });
});

test("a file nobody may write gives a read-only disk: a note at the start, reads work, writes are result 2 and change nothing", () => {
  withFile(8192, (path) => {
    chmodSync(path, 0o444);
    const warnings: string[] = [];
    const { storage, close } = storageOf(path, warnings);
    assert.deepEqual(warnings, [`--block=${path}: the file is read-only, so the guest's disk is too: its writes will fail`]);
    assert.equal(storage.writable, false);
    const r = rig([storage], [
      { type: 1, sector: 0, bytes: 512, send: [[DATA, 512]] },
      { type: 0, sector: 1, bytes: 512 },
    ], { reply: [[DATA + 0x1000, 512]] });
    r.t.memory.ram.fill(0x99, DATA, DATA + 512);
    next(r, 0);
    assert.equal(resultOf(r), 2);
    next(r, 1);
    assert.equal(resultOf(r), 1);
    assert.ok(readFileSync(path).every((b) => b === 0x42));
    assert.match(r.warnings[0], /a write to a read-only disk; the guest gets an I\/O error/);
    assert.match(r.devices[0].requirements.description, /\(read-only\)$/);
    close();
  }, 0x42);
});

test("two block devices: each serves its own page's key, and writes go to its own file", () => {
  withFile(8192, (first) => {
    withFile(8192, (second) => {
      const a = storageOf(first), b = storageOf(second);
      const r = rig([a.storage, b.storage], [
        { type: 1, sector: 1, bytes: 512, send: [[DATA, 512]], to: 1 },
        { type: 1, sector: 2, bytes: 512, send: [[DATA + 0x1000, 512]], to: 0 },
      ]);
      r.t.memory.ram.fill(0xb2, DATA, DATA + 512);
      r.t.memory.ram.fill(0xa1, DATA + 0x1000, DATA + 0x1000 + 512);
      next(r, 0);
      next(r, 1);
      assert.ok(readFileSync(second).subarray(512, 1024).every((x) => x === 0xb2));
      assert.ok(readFileSync(first).subarray(1024, 1536).every((x) => x === 0xa1));
      assert.equal(readFileSync(first).filter((x) => x !== 0).length, 512);
      assert.equal(readFileSync(second).filter((x) => x !== 0).length, 512);
      assert.deepEqual(r.link.log, [`irq ${IRQ + 1} result 0,1`, `irq ${IRQ} result 1,1`]);
      a.close();
      b.close();
    });
  });
});

test("a disk that fails (an I/O error) gives the Guest result 2 and the person one line", () => {
  const broken: BlockStorage = {
    size: 8192, writable: true,
    read: () => {
      throw new Error("EIO: i/o error");
    },
    write: () => {
      throw new Error("ENOSPC: no space left on device");
    },
    flush: () => {},
  };
  const r = rig([broken], [
    { type: 1, sector: 0, bytes: 512, send: [[DATA, 512]] },
    { type: 0, sector: 0, bytes: 512 },
  ], { reply: [[DATA + 0x1000, 512]] });
  next(r, 0);
  assert.equal(resultOf(r), 2);
  next(r, 1);
  assert.equal(resultOf(r), 2);
  assert.deepEqual(r.warnings, [
    "block disk0: writing failed: ENOSPC: no space left on device; the guest gets an I/O error",
    "block disk0: reading failed: EIO: i/o error; the guest gets an I/O error",
  ]);
});

test("hostile: a write whose pieces point outside guest memory kills the Guest with a reason; the file is untouched", () => {
  withFile(8192, (path) => {
    const { storage, close } = storageOf(path);
    const r = rig([storage], [{ type: 1, sector: 0, bytes: 512, send: [[0x7ffff000, 512]] }]);
    next(r, 0);
    assert.equal(r.t.guest.dead, "block output buffer 0x7ffff000+512 is outside its memory");
    assert.ok(readFileSync(path).every((b) => b === 0));
    close();
  });
});

test("hostile: a reply buffer bound outside guest memory kills the Guest with a reason", () => {
  withFile(8192, (path) => {
    const { storage, close } = storageOf(path);
    const r = rig([storage], [{ type: 0, sector: 0, bytes: 512 }], { reply: [[RAM_SIZE + 0x10000, 512]] });
    next(r, 0);
    assert.equal(r.t.guest.dead, "block reply buffer 0x110000+512 is outside its memory");
    close();
  });
});

test("--block on a missing file, a directory, or a file over 2 TiB is one clear error", () => {
  const dir = mkdtempSync(join(tmpdir(), "lguest-block-"));
  try {
    const expectError = (path: string, pattern: RegExp) =>
      assert.throws(() => openBlockStorage(path, () => {}), (error: unknown) => error instanceof LaunchError && pattern.test(error.message));
    expectError(join(dir, "missing.img"), /missing\.img: no such file/);
    expectError(dir, /is a directory/);
    const huge = join(dir, "huge.img");
    writeFileSync(huge, "");
    truncateSync(huge, 2 ** 41 + 512);
    expectError(huge, /at most 4294967295 sectors \(2 TiB\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
