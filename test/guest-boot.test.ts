// The book's Guest kernel (book/guest*.md, book/drivers.md) running on the
// real Host, in-process (test/helpers/guest-session.ts). These tests check
// the Guest's side of each protocol; the Host's own rules have their tests
// in test/host-*.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bootGuest, type GuestSession } from "./helpers/guest-session.ts";
import { peekLinear } from "../src/cpu/paging.ts";

const root = join(import.meta.dirname, "..");
const vmlinux = new Uint8Array(readFileSync(join(root, "images/vmlinux")));
const bzImage = new Uint8Array(readFileSync(join(root, "images/bzImage")));

/** Boots with `run=COMMANDS` and runs until the guest dies. */
function session(commands: string, kernel = vmlinux, extra: string[] = []): GuestSession {
  const host = bootGuest(kernel, [...extra, `run=${commands}`], { nsPerInstruction: 50 });
  host.run();
  return host;
}

test("the Guest boots to its prompt, with LGUEST_INIT its first hypercall (spec 3.3)", () => {
  const host = bootGuest(vmlinux, []);
  host.run(() => host.output.endsWith("guest> "));
  assert.equal(host.dead, undefined);
  assert.equal(host.callLog[0], 1, "LGUEST_INIT");
  assert.match(host.output, /^lguest\.ts guest kernel: guest 0, 32 MiB/);
  assert.match(host.output, /segments: kernel cs 0x61 ss 0x69, user cs 0x73 ds 0x7b\r\n/);
  assert.match(host.output, /lguest bus: device 0: console, irq 1: driver ok\r\n/);
  const loadIdt = host.callLog.filter((call) => call === 6).length;
  assert.equal(loadIdt, 256, "one LOAD_IDT_ENTRY per IDT entry, as Linux's load_idt");
  const order = [1, 3, 6, 4, 5, 7, 9, 8, 12].map((call) => host.callLog.indexOf(call));
  assert.deepEqual([...order].sort((a, b) => a - b), order,
    "INIT, LOAD_GDT, LOAD_IDT_ENTRY, NEW_PGTABLE, FLUSH_TLB, SET_STACK, SET_CLOCKEVENT, TS, BIND_DMA");
});

test("halt powers off the way a 2.6.23 Guest does: CRASH with \"Power down\"", () => {
  const host = session("halt");
  assert.equal(host.dead, "CRASH: Power down");
  assert.match(host.output, /guest> halt\r\nPower down\.\r\n$/);
});

test("help, uptime, echo and mem", () => {
  const host = session("help; uptime; echo hello,   world; mem; halt");
  assert.match(host.output, /  spaces N               make N address spaces and switch between them\r\n/);
  assert.match(host.output, /up \d+\.\d\d s: \d+ ticks at 100 Hz; host time 1717243200\.\d{9} \(2024-06-01 12:00:00 UTC\)\r\n/);
  assert.match(host.output, /guest> echo hello,   world\r\nhello,   world\r\n/);
  assert.match(host.output, /page directory at 0x[0-9a-f]+ \(the kernel's\)\r\n  0xc0000000-0xc1ffffff: kernel, 8 page tables, 8192 pages mapped\r\n  0xf8800000-0xf8bfffff: kernel, 1 page table, 1 page mapped\r\n/);
});

test("typed input arrives in the console's bound buffer with its irq, and is echoed (spec 9.1)", () => {
  const host = bootGuest(vmlinux, []);
  host.run(() => host.output.endsWith("guest> "));
  const before = host.output.length;
  host.type("echo tyx\x7fped by hand\r");
  host.run(() => host.output.endsWith("guest> ") && host.output.length > before);
  assert.equal(host.output.slice(before), "echo tyx\b \bped by hand\r\ntyped by hand\r\nguest> ");
});

test("spaces 6 sees each address space's own page through shadow evictions, built through the ring", () => {
  const host = session("spaces 6; stats; halt");
  assert.match(host.output, /spaces: 6 address spaces, 30 switches in \d+ ticks: every space saw its own page\r\n/);
  assert.ok(new Set(host.newPagetables).size > 4, "more address spaces than the Host caches (4)");
  assert.match(host.output, /  SET_PTE +\d+ +[1-9]\d*\r\n/, "SET_PTE went through the ring");
  assert.match(host.output, /  SET_PMD +\d+ +[1-9]\d*\r\n/, "SET_PMD went through the ring");
  assert.ok((host.hypercalls.get(5) ?? 0) >= 7, "FLUSH_TLB(0) once per space");
});

test("a user program runs in ring 3 and makes system calls through int $0x80", () => {
  const host = session("user; user hello; halt");
  assert.match(host.output, /Hello from ring 3! cs is 0x73, pid 1, and the Host's clock says 1717243200 seconds since 1970\.\r\nhello: exited with status 0\r\n/);
  assert.match(host.output, /pid 2,/);
  assert.equal(host.reflected.get(128), undefined, "system calls never reach the Host");
});

test("timer interrupts reach a program spinning in ring 3", () => {
  const host = session("user spin; halt");
  assert.match(host.output, /\.{10}\r\nspun \d+ times through 10 timer ticks\r\nspin: exited with status 0\r\n/);
});

test("a fault in ring 3 kills the program, by either road, and the Guest carries on", () => {
  const host = session("user divide; user hcall; user fault; echo still here; halt");
  assert.match(host.output, /divide: killed by divide error \(trap 0, error 0x0\) at eip 0x80[0-9a-f]+\r\ndivide: exited with status 128\r\n/);
  assert.match(host.output, /hcall: killed by general protection fault \(trap 13, error 0xfa\)/);
  assert.match(host.output, /fault: killed by page fault \(trap 14, error 0x5\) at eip 0x80[0-9a-f]+, address 0xc0100000\r\n/);
  assert.match(host.output, /still here\r\n/);
  assert.equal(host.reflected.get(0), undefined, "trap 0 was delivered directly");
  assert.equal(host.reflected.get(13), 1);
  assert.equal(host.dead, "CRASH: Power down");
});

test("the bzImage boots the same way", () => {
  const host = session("user; halt", bzImage);
  assert.match(host.output, /Hello from ring 3!/);
  assert.equal(host.dead, "CRASH: Power down");
});

test("the FPU is used under lazy TS switching, or refused when the CPU has none", (t) => {
  const probe = bootGuest(vmlinux, []);
  const hasFpu = (probe.cpu.cpuidFeatures & 1) !== 0;
  const host = session("fpu; user fpu; fpu; halt");
  if (!hasFpu) {
    t.diagnostic("the CPU has no x87 yet: checking the Guest's refusal instead");
    assert.match(host.output, /fpu: this processor has no FPU \(cpuid says so\)\r\n/);
    assert.match(host.output, /user: fpu needs an FPU, and this processor has none\r\n/);
    return;
  }
  assert.match(host.output, /fpu: pi is 3\.141593, the square root of 2 is 1\.414214 \(1 device-not-available trap\)\r\n/);
  assert.match(host.output, /pi, computed in ring 3: 3\.141593\r\n/);
  assert.match(host.output, /guest> fpu\r\nfpu: pi is 3\.141593, the square root of 2 is 1\.414214 \(1 device-not-available trap\)\r\n.*guest> fpu\r\nfpu: .* \(1 device-not-available trap\)/s);
});

const hostile: [string, RegExp][] = [
  ["early", /^hypercall 5 before LGUEST_INIT$/],
  ["trap", /^unhandled trap 6 /],
  ["init2", /^already have lguest_data$/],
  ["badcall", /^Bad hypercall 11$/],
  ["ring", /^Bad hypercall 11$/],
  ["gdt", /^too many gdt entries 33$/],
  ["idt", /^bad IDT type 5$/],
  ["stack", /^bad stack segment 104$/],
  ["stackpages", /^bad stack pages 3$/],
  ["pte", /^bad page table entry$/],
  ["pgd", /^bad page directory entry$/],
  ["switcher", /attempt to access switcher pages/],
  ["key", /bad sending DMA key/],
  ["dma", /^console output buffer 0x[0-9a-f]+\+\d+ is outside its memory$/],
  ["bind", /^CRASH: BIND_DMA with irq 32 returned 0$/],
  ["crash", /^CRASH: hostile guest crashed on purpose$/],
];

for (const [mode, reason] of hostile) {
  test(`hostile=${mode} breaks the rule it names, and the Host kills the Guest for it`, () => {
    const host = bootGuest(vmlinux, [`hostile=${mode}`]);
    host.run();
    assert.match(host.dead ?? "(alive)", reason);
  });
}

test("hostile MODE at the prompt does the same, and an unknown mode lists them", () => {
  const host = session("hostile; hostile nonsense; hostile badcall");
  assert.match(host.output, /hostile MODE, where MODE is one of:\r\n  early +a hypercall before LGUEST_INIT\r\n/);
  assert.equal(host.dead, "Bad hypercall 11");
});

// --- the Guest is as careless as Linux where Linux is careless -----------------------------

test("every line goes out through a descriptor on a stack, garbage after its terminator, as Linux's console builds it", () => {
  const host = session("user hello; halt");
  assert.ok(host.consoleDescriptors.length > 10, "every write of the boot and the program");
  for (const { bytes } of host.consoleDescriptors) {
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    assert.ok(view.getUint16(68, true) > 0, "len[0]");
    assert.equal(view.getUint16(70, true), 0, "len[1] = 0 ends the list");
    assert.equal(view.getUint32(8, true), 0xffffffff, "addr[1]: the value that gave the old console bug away");
    assert.deepEqual([...bytes.subarray(12, 68)], new Array(56).fill(0xa5), "addr[2..15]: garbage");
    assert.deepEqual([...bytes.subarray(72, 100)], new Array(28).fill(0xa5), "len[2..15]: garbage");
  }
  const places = new Set(host.consoleDescriptors.map((d) => d.gpa));
  assert.ok(places.size >= 2, "the kernel's boot stack and a user program's kernel stack: the descriptor lives on whichever is running");
  assert.equal(host.dead, "CRASH: Power down");
});

test("user programs begin with endbr32, as Debian's do, and run it as the hint NOP it is", () => {
  const host = bootGuest(vmlinux, ["run=user hello; halt"], { nsPerInstruction: 50 });
  const endbr32 = [0xf3, 0x0f, 0x1e, 0xfb];
  let ran = 0;
  host.cpu.setInstructionHook((cpu) => {
    if (cpu.cpl === 3 && endbr32.every((byte, k) => peekLinear(cpu, (cpu.eip + k) | 0) === byte)) ran++;
  });
  host.run();
  assert.equal(ran, 1, "hello's first instruction, in ring 3");
  assert.match(host.output, /hello: exited with status 0\r\n/);
});
