// The book's Guest kernel as built (book/guest.md G:390): images/vmlinux and
// images/bzImage load through the launcher's own loader (lguest.ts.md L:030)
// to the same entry point and page offset, carry the interface's structure
// sizes, and rebuild to the same bytes where the same tools are available.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { layOutGuest } from "../src/launcher/layout.ts";
import { main } from "../lguest.ts";
import { symbols, type ElfSymbol } from "./helpers/elf.ts";

const root = join(import.meta.dirname, "..");
const vmlinux = new Uint8Array(readFileSync(join(root, "images/vmlinux")));
const bzImage = new Uint8Array(readFileSync(join(root, "images/bzImage")));
const manifest = JSON.parse(readFileSync(join(root, "images/guest.json"), "utf8"));
const MiB = 1024 * 1024;

function load(kernel: Uint8Array<ArrayBuffer>) {
  return layOutGuest({
    memoryBytes: 64 * MiB,
    kernel,
    kernelName: "guest",
    devices: [{ type: 1, features: 0, pages: 0, description: "console" }],
    kernelArguments: [],
  });
}

const symbolTable = symbols(vmlinux);
const symbol = (name: string): ElfSymbol => {
  const found = symbolTable.get(name);
  assert.ok(found, `vmlinux has a symbol ${name}`);
  return found;
};

test("vmlinux and bzImage load through the launcher to the same entry point and page offset", () => {
  const elf = load(vmlinux);
  const bz = load(bzImage);
  assert.equal(elf.kernel.format, "ELF vmlinux");
  assert.equal(bz.kernel.format, "bzImage");
  assert.equal(elf.pageOffset, 0xc0000000);
  assert.equal(bz.pageOffset, 0xc0000000);
  assert.equal(bz.entry, elf.entry);
  assert.equal(elf.entry, symbol("lguest_start").value, "the entry is the code right after GenuineLguest");
  assert.equal(new DataView(vmlinux.buffer).getUint32(24, true), elf.entry, "and the ELF entry point says the same");
});

// hostile=early makes the Guest make a hypercall before LGUEST_INIT, which
// the Host answers by killing it (spec 3.3): the run ends at once, with
// status 1 and the Host's reason. main() returns a promise of the status
// when it runs a guest, so the capture lasts until the promise settles.
test("lguest --verbose 64m loads either image, prints the same entry and page offset, and the hostile Guest dies", async () => {
  const run = async (kernel: string) => {
    const out: string[] = [];
    const err: string[] = [];
    const [log, error, write] = [console.log, console.error, process.stderr.write];
    console.log = (text: string) => out.push(String(text));
    console.error = (text: string) => err.push(String(text));
    process.stderr.write = ((text: string | Uint8Array) => err.push(String(text).trimEnd()) > 0) as typeof process.stderr.write;
    try {
      return { status: await main(["--verbose", "64m", join(root, kernel), "hostile=early"]), out, err };
    } finally {
      console.log = log;
      console.error = error;
      process.stderr.write = write;
    }
  };
  const elf = await run("images/vmlinux");
  const bz = await run("images/bzImage");
  const entry = symbol("lguest_start").value.toString(16);
  assert.ok(elf.out.includes(`ELF vmlinux: page offset 0xc0000000, entry 0x${entry}`), elf.out.join("\n"));
  assert.ok(bz.out.includes(`bzImage: page offset 0xc0000000, entry 0x${entry}`), bz.out.join("\n"));
  for (const result of [elf, bz]) {
    assert.equal(result.status, 1);
    assert.deepEqual(result.err, ["lguest: the guest died: hypercall 5 before LGUEST_INIT"]);
  }
});

test("the image starts with GenuineLguest at physical 1 MiB, its first instruction right after", () => {
  const { ram, entry, pageOffset } = load(vmlinux);
  assert.equal(new TextDecoder().decode(ram.subarray(0x100000, 0x100000 + 13)), "GenuineLguest");
  assert.equal(entry - pageOffset, 0x100000 + 13);
  assert.equal(ram[0x100000 + 13], 0xfc, "cld");
});

test("the bzImage is a 512-byte setup block, then the gzip of the flat image, which is the ELF's loaded bytes", () => {
  assert.deepEqual([...bzImage.subarray(510, 515)], [0x55, 0xaa, 0x1f, 0x8b, 8]);
  assert.equal(bzImage[512 + 9], 3, "the gzip header says Unix");
  assert.equal(bzImage.subarray(0, 512).indexOf(0x1f), -1, "no gzip magic in the setup block");
  const flat = gunzipSync(bzImage.subarray(512));
  const elf = load(vmlinux);
  const bz = load(bzImage);
  assert.equal(flat.length, manifest.bzImage.unpacked_bytes);
  assert.deepEqual(bz.ram.subarray(0x100000, 0x100000 + flat.length), elf.ram.subarray(0x100000, 0x100000 + flat.length));
});

test("the flat image has at least four mov 0xC0xxxxxx,%eax for the launcher's page offset guess", () => {
  const flat = gunzipSync(bzImage.subarray(512));
  let loads = 0;
  for (let i = 0; i + 4 < flat.length; i++) if (flat[i] === 0xa1 && flat[i + 4] === 0xc0) loads++;
  assert.ok(loads >= 4, `${loads} loads`);
});

test("the Guest's lguest_data is 1128 bytes, with the ring free, the timer blocked and the noirq window set (spec 4)", () => {
  const data = symbol("lguest_data");
  assert.equal(data.size, 1128);
  assert.equal(manifest.lguest_data.bytes, 1128);
  const { ram, pageOffset } = load(vmlinux);
  const at = data.value - pageOffset;
  const view = new DataView(ram.buffer);
  assert.equal(view.getUint32(at + 0x004, true), 1, "blocked_interrupts: irq 0 until time_init");
  assert.deepEqual([...ram.subarray(at + 0x14, at + 0x54)], new Array(64).fill(0xff), "hcall_status");
  assert.equal(view.getUint32(at + 0x460, true), symbol("lguest_noirq_start").value);
  assert.equal(view.getUint32(at + 0x464, true), symbol("lguest_noirq_end").value);
});

test("the noirq window is lguest_iret's store to irq_enabled, pop and iret (spec 5.10)", () => {
  const { ram, pageOffset } = load(vmlinux);
  const start = symbol("lguest_noirq_start").value - pageOffset;
  const end = symbol("lguest_noirq_end").value - pageOffset;
  const irqEnabled = symbol("lguest_data").value; // offset 0
  const store = [0x36, 0xa3, irqEnabled & 0xff, (irqEnabled >>> 8) & 0xff, (irqEnabled >>> 16) & 0xff, irqEnabled >>> 24];
  assert.deepEqual([...ram.subarray(start, end)], [...store, 0x58, 0xcf], "mov %eax,%ss:lguest_data; pop %eax; iret");
  const iret = symbol("lguest_iret").value - pageOffset;
  assert.deepEqual([...ram.subarray(iret, start)], [0x50, 0x8b, 0x44, 0x24, 0x0c], "push %eax; mov 12(%esp),%eax");
});

function gccVersion(): string | undefined {
  const probe = spawnSync("bash", ["-c", "echo 'int x;' | gcc -m32 -x c -c -o /dev/null - && gcc --version | head -1"], { encoding: "utf8" });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
}

test("npm run build:guest rebuilds the committed images byte for byte", (t) => {
  const gcc = gccVersion();
  if (!gcc) {
    t.skip("gcc -m32 is not available here, so the images cannot be rebuilt");
    return;
  }
  if (gcc !== manifest.tools.gcc) {
    t.skip(`the images were built with ${manifest.tools.gcc}, and this is ${gcc}: different bytes would prove nothing`);
    return;
  }
  const out = mkdtempSync(join(tmpdir(), "lguest-guest-"));
  try {
    const build = spawnSync("bash", [join(root, "scripts/build-guest.sh"), out], { encoding: "utf8" });
    assert.equal(build.status, 0, build.stderr);
    const rebuilt = JSON.parse(readFileSync(join(out, "guest.json"), "utf8"));
    if (JSON.stringify(rebuilt.tools) !== JSON.stringify(manifest.tools)) {
      t.skip(`different tools: ${JSON.stringify(rebuilt.tools)}`);
      return;
    }
    assert.deepEqual(new Uint8Array(readFileSync(join(out, "vmlinux"))), vmlinux, "vmlinux differs: run npm run build:guest");
    assert.deepEqual(new Uint8Array(readFileSync(join(out, "bzImage"))), bzImage, "bzImage differs: run npm run build:guest");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
