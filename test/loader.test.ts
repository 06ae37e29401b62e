// The launcher's loader and memory layout (spec sections 1.2 to 1.5, 8.1).
// Expected values are computed here from the spec's rules, independently of
// src/launcher.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { layOutGuest } from "../src/launcher/layout.ts";
import type { DeviceRequirements } from "../src/devices/device.ts";
import { guessPageOffset } from "../src/launcher/kernel.ts";
import { LaunchError } from "../src/launcher/launch-error.ts";
import { readSymbolTables } from "../src/launcher/elf.ts";
import { buildBzImage, buildElf, genuine, kernelText, movEaxLoads, u16, u32 } from "./helpers/images.ts";

const MiB = 1024 * 1024;
const console_: DeviceRequirements = { type: 1, features: 0, pages: 0, description: "console" };

function elfKernel(): Uint8Array<ArrayBuffer> {
  return buildElf({
    segments: [
      { vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(0x3000, 0x1234) },
      { vaddr: 0xc0200000, paddr: 0x200000, data: new Uint8Array([1, 2, 3, 4]), memsz: 0x5000 },
    ],
  });
}

function layout(kernel: Uint8Array<ArrayBuffer>, extra: Partial<Parameters<typeof layOutGuest>[0]> = {}) {
  return layOutGuest({
    memoryBytes: 64 * MiB,
    kernel,
    kernelName: "vmlinux",
    devices: [console_],
    kernelArguments: [],
    ...extra,
  });
}

function throwsLaunch(run: () => unknown, pattern: RegExp) {
  assert.throws(run, (error: unknown) => error instanceof LaunchError && pattern.test(error.message));
}

test("ELF segments are copied to their physical addresses", () => {
  const guest = layout(elfKernel());
  assert.deepEqual([...guest.ram.subarray(0x100000 + 0x1234, 0x100000 + 0x1234 + 13)], [...genuine]);
  assert.deepEqual([...guest.ram.subarray(0x200000, 0x200004)], [1, 2, 3, 4]);
  assert.equal(guest.ram[0x200004], 0, "bss stays zero");
});

test("the entry point is the byte after GenuineLguest, as a virtual address", () => {
  const guest = layout(elfKernel());
  assert.equal(guest.pageOffset, 0xc0000000);
  assert.equal(guest.entry, 0xc0000000 + 0x100000 + 0x1234 + 13);
});

test("64 MiB without initrd: page directory at 0x03FFF000, PTE pages from 0x03FEF000 (spec 1.5 example)", () => {
  const guest = layout(elfKernel());
  assert.equal(guest.pgdir, 0x03fff000);
  for (let k = 0; k < 1024; k++) {
    const entry = u32(guest.ram, 0x03fff000 + k * 4);
    if (k >= 768 && k < 784) assert.equal(entry, (0x03fef000 + (k - 768) * 4096) | 7, `pgdir[${k}]`);
    else assert.equal(entry, 0, `pgdir[${k}] is empty: no identity map`);
  }
  for (const i of [0, 1, 255, 1023, 1024, 16383]) {
    assert.equal(u32(guest.ram, 0x03fef000 + i * 4), (i * 4096) | 7, `pte ${i}`);
  }
});

test("boot parameters: e820, command line pointer, subarch, and nothing else", () => {
  const guest = layout(elfKernel(), { kernelArguments: ["root=/dev/lgba", "console=hvc0"] });
  const ram = guest.ram;
  assert.equal(ram[0x1e8], 1, "e820_entries");
  assert.equal(u32(ram, 0x2d0), 0);
  assert.equal(u32(ram, 0x2d4), 0);
  assert.equal(u32(ram, 0x2d8), 64 * MiB);
  assert.equal(u32(ram, 0x2dc), 0);
  assert.equal(u32(ram, 0x2e0), 1, "E820_RAM");
  assert.equal(u32(ram, 0x228), 0x1000, "cmd_line_ptr");
  assert.equal(u32(ram, 0x23c), 1, "hardware_subarch word");
  assert.equal(ram[0x210], 0, "no type_of_loader without an initrd");
  const written = new Set([0x1e8, 0x228, 0x229, 0x22a, 0x22b, 0x23c, 0x23d, 0x23e, 0x23f]);
  for (let i = 0x2d0; i < 0x2e4; i++) written.add(i);
  for (let i = 0; i < 0x1000; i++) if (!written.has(i)) assert.equal(ram[i], 0, `boot byte ${i.toString(16)}`);
  const line = "root=/dev/lgba console=hvc0 ";
  assert.equal(new TextDecoder().decode(ram.subarray(0x1000, 0x1000 + line.length)), line);
  assert.equal(ram[0x1000 + line.length], 0);
});

test("a command line of 2047 bytes fits; 2048 does not", () => {
  layout(elfKernel(), { kernelArguments: ["x".repeat(2046)] });
  throwsLaunch(() => layout(elfKernel(), { kernelArguments: ["x".repeat(2047)] }), /command line is 2048 bytes/);
});

test("an initrd goes at the top of RAM, page-rounded, with the page tables below it", () => {
  const initrd = new Uint8Array(10000).fill(0xab);
  const guest = layout(elfKernel(), { initrd, initrdName: "initrd.img" });
  const initrdLength = 12288;
  const start = 64 * MiB - initrdLength;
  assert.equal(guest.ram[start], 0xab);
  assert.equal(guest.ram[start + 9999], 0xab);
  assert.equal(guest.ram[start + 10000], 0, "the tail of the last page stays zero");
  assert.equal(guest.ram[0x210], 0xff, "type_of_loader");
  assert.equal(u32(guest.ram, 0x218), start);
  assert.equal(u32(guest.ram, 0x21c), initrdLength);
  assert.equal(guest.pgdir, start - 4096);
  assert.equal(u32(guest.ram, guest.pgdir + 768 * 4), (start - 4096 - 16 * 4096) | 7);
});

test("1 GiB maps 262144 pages in 256 PTE pages", () => {
  const guest = layout(elfKernel(), { memoryBytes: 1024 * MiB });
  assert.equal(guest.pageTables.mappedPages, 262144);
  assert.equal(guest.pageTables.ptePages, 256);
  assert.equal(u32(guest.ram, guest.pgdir + 1023 * 4), (guest.pgdir - 4096) | 7);
});

test("device descriptors fill slots in order, console last, pages above the descriptor page", () => {
  const devices: DeviceRequirements[] = [
    { type: 2, features: 1 | 0x8000, pages: 1, description: "tun net" },
    { type: 3, features: 0x8000, pages: 1, description: "block" },
    console_,
  ];
  const guest = layout(elfKernel(), { devices });
  const page = guest.descriptorPage;
  const expected = [
    [2, 0x8001, 0, 1, (64 * MiB + 4096) / 4096],
    [3, 0x8000, 0, 1, (64 * MiB + 8192) / 4096],
    [1, 0, 0, 0, 0],
  ];
  expected.forEach(([type, features, status, pages, pfn], i) => {
    const at = i * 12;
    assert.deepEqual([u16(page, at), u16(page, at + 2), u16(page, at + 4), u16(page, at + 6), u32(page, at + 8)],
      [type, features, status, pages, pfn], `slot ${i}`);
  });
  for (let i = 36; i < 4096; i++) assert.equal(page[i], 0);
  assert.equal(guest.pfnLimit, (64 * MiB + 3 * 4096) / 4096);
});

test("more than 16 devices is refused", () => {
  const devices = Array.from({ length: 17 }, () => console_);
  throwsLaunch(() => layout(elfKernel(), { devices }), /room for 16/);
});

test("bzImage: the gzip member is found past a decoy and unpacked at 1 MiB", () => {
  const payload = new Uint8Array([...movEaxLoads(4, 0xc0), ...kernelText(200, 50)]);
  const guest = layout(buildBzImage(payload, { decoy: true }));
  assert.equal(guest.kernel.format, "bzImage");
  assert.deepEqual([...guest.ram.subarray(0x100000, 0x100000 + payload.length)], [...payload]);
  assert.equal(guest.pageOffset, 0xc0000000);
  assert.equal(guest.entry, 0xc0000000 + 0x100000 + 24 + 50 + 13);
});

test("bzImage page offset: the first top byte seen four times wins", () => {
  // 0x80 is seen three times first, then 0xC0 four times: 0xC0 wins.
  const threeThenFour = new Uint8Array([...movEaxLoads(3, 0x80), ...movEaxLoads(4, 0xc0), ...movEaxLoads(5, 0x80)]);
  assert.equal(guessPageOffset(threeThenFour), 0xc0000000);
  // 0x40 reaches four before 0xC0 does, even though 0xC0 is more common overall.
  const interleaved = new Uint8Array([
    ...movEaxLoads(3, 0xc0), ...movEaxLoads(4, 0x40), ...movEaxLoads(9, 0xc0),
  ]);
  assert.equal(guessPageOffset(interleaved), 0x40000000);
  assert.equal(guessPageOffset(new Uint8Array(movEaxLoads(3, 0xc0))), undefined);
});

test("bzImage whose page offset cannot be guessed is refused", () => {
  const payload = new Uint8Array([...movEaxLoads(3, 0xc0), ...kernelText(100, 10)]);
  throwsLaunch(() => layout(buildBzImage(payload)), /page offset/);
});

test("malformed kernels each get their own message", () => {
  const good = elfKernel();
  const cases: [string, Uint8Array<ArrayBuffer>, RegExp][] = [
    ["truncated header", good.slice(0, 40), /truncated ELF file: 40 bytes/],
    ["truncated segment", good.slice(0, good.length - 100), /truncated ELF file: segment 0/],
    ["64-bit", buildElf({ elfClass: 2, segments: [] }), /not a 32-bit little-endian/],
    ["x86-64 machine", buildElf({ machine: 62, segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(64, 0) }] }), /machine is 62, not i386/],
    ["not executable", buildElf({ type: 3, segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(64, 0) }] }), /type is 3/],
    ["bad phentsize", buildElf({ phentsize: 56, segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(64, 0) }] }), /program headers are 56 bytes/],
    ["no program headers", buildElf({ segments: [] }), /0 program headers/],
    ["no loadable segment", buildElf({ segments: [{ type: 4, vaddr: 0, paddr: 0, data: new Uint8Array(4) }] }), /no loadable segments/],
    ["no GenuineLguest", buildElf({ segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: new Uint8Array(64) }] }), /not a genuine lguest kernel/],
    ["page offsets differ", buildElf({ segments: [
      { vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(64, 0) },
      { vaddr: 0x80200000, paddr: 0x200000, data: new Uint8Array(4) },
    ] }), /segment 1 has page offset 0x80000000, but an earlier one had 0xc0000000/],
    ["does not fit", buildElf({ segments: [{ vaddr: 0xc4100000, paddr: 0x4100000, data: kernelText(64, 0) }] }), /does not fit in 64 MiB/],
    ["over the boot parameters", buildElf({ segments: [{ vaddr: 0xc0000000, paddr: 0, data: kernelText(64, 0) }] }), /over the boot parameters/],
    ["neither ELF nor bzImage", new Uint8Array(2000).fill(7), /no gzip-compressed kernel/],
    ["gzip member with the wrong OS byte only", buildBzImage(kernelText(100, 0), { os: 0 }), /no gzip-compressed kernel/],
  ];
  for (const [what, file, pattern] of cases) {
    assert.throws(() => layout(file), (error: unknown) => {
      assert.ok(error instanceof LaunchError, `${what}: a LaunchError, not ${error}`);
      assert.match(error.message, pattern, what);
      assert.ok(!error.message.includes("\n"), `${what}: one line`);
      return true;
    });
  }
});

test("a damaged or truncated gzip member is refused, and so is one too big for memory", () => {
  const payload = kernelText(50000, 0);
  const file = buildBzImage(payload);
  const corrupt = file.slice();
  corrupt[1024 + 40] ^= 0xff;
  throwsLaunch(() => layout(corrupt), /compressed kernel is damaged/);
  throwsLaunch(() => layout(file.slice(0, 1024 + 30)), /compressed kernel is damaged \(truncated\)/);
  const huge = buildBzImage(new Uint8Array(16 * MiB));
  throwsLaunch(() => layout(huge, { memoryBytes: 16 * MiB }), /unpacks to more than the 16 MiB/);
});

test("a kernel or initrd that does not fit with the other is refused", () => {
  const big = buildElf({ segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(64, 0), memsz: 15 * MiB }] });
  throwsLaunch(() => layout(big, { memoryBytes: 16 * MiB }), /over the page tables/);
  throwsLaunch(() => layout(elfKernel(), { memoryBytes: 16 * MiB, initrd: new Uint8Array(15 * MiB) }), /initrd .* does not fit/);
  const twoMiB = buildElf({ segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: kernelText(64, 0), memsz: 2 * MiB }] });
  layout(twoMiB, { memoryBytes: 16 * MiB, initrd: new Uint8Array(12 * MiB) });
  throwsLaunch(() => layout(twoMiB, { memoryBytes: 16 * MiB, initrd: new Uint8Array(13 * MiB) }), /over the initrd and page tables/);
});

test("--verbose lines say what was loaded where", () => {
  const lines: string[] = [];
  layout(elfKernel(), { log: (line) => lines.push(line), initrd: new Uint8Array(5), initrdName: "i" });
  assert.deepEqual(lines, [
    "device 0: console (irq 1)",
    "Section 0: size 12288 addr 0x100000",
    "Section 1: size 4 addr 0x200000",
    "mapped initrd i size=5 @ 0x3fff000",
    "Linear mapping of 16384 pages in 16 pte pages at 0x3fee000",
  ]);
});

test("the ELF reader's symbols of images/vmlinux are the ones nm lists, at nm's addresses", () => {
  const file = new Uint8Array(readFileSync("images/vmlinux"));
  // nm prints defined symbols as "address type name", leaving out file and section symbols.
  const listed = execFileSync("nm", ["--defined-only", "images/vmlinux"], { encoding: "utf8" })
    .trim().split("\n").map((line) => line.split(" "))
    .map(([address, , name]) => `${name} ${address}`).sort();
  const STT_SECTION = 3, STT_FILE = 4;
  const ours = readSymbolTables(file)
    .filter((symbol) => symbol.section !== 0 && symbol.type !== STT_SECTION && symbol.type !== STT_FILE)
    .map((symbol) => `${symbol.name} ${symbol.value.toString(16).padStart(8, "0")}`).sort();
  assert.ok(listed.length > 100, `nm lists ${listed.length} symbols`);
  assert.deepEqual(ours, listed);
});

test("the ELF reader offers no symbols from a file without sections or a damaged one, rather than failing", () => {
  const file = new Uint8Array(readFileSync("images/vmlinux"));
  assert.deepEqual(readSymbolTables(elfKernel()), []);
  assert.deepEqual(readSymbolTables(file.subarray(0, file.length >> 1)), []);
  assert.deepEqual(readSymbolTables(new Uint8Array(16)), []);
});
