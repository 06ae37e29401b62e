// Shadow page tables (spec 7): demand faulting with accessed and dirty bits,
// the checks on every entry, the Switcher's 4 MiB, the four cached shadow
// directories, NEW_PGTABLE, FLUSH_TLB, SET_PTE and SET_PMD.
import { test } from "node:test";
import assert from "node:assert/strict";
import { EAX, ECX, EDI, ESI } from "../src/cpu/registers.ts";
import { Host } from "../src/host/host.ts";
import type { HostEvent } from "../src/host/trace.ts";
import {
  LHCALL_FLUSH_TLB, LHCALL_LOAD_IDT_ENTRY, LHCALL_NEW_PGTABLE, LHCALL_SEND_DMA, LHCALL_SET_PMD, LHCALL_SET_PTE,
  LHCALL_SET_STACK,
} from "../src/host/constants.ts";
import { LGUEST_DATA } from "../src/host/abi.ts";
import { switcherPgdEntry } from "../src/host/switcher.ts";
import {
  boot, CODE, DATA, enterUser, HANDLER, kernelSetup, KERNEL_PTES, linuxGdt, PAGE_OFFSET, PGDIR, SCRATCH, stackTop, STACK_TOP, tinyGuest, USER, USER_PTES, USER_VA, va,
  type TinyGuestOptions,
} from "./helpers/tiny-guest.ts";
import { gate, hcall, imm32, jmpSelf, load, mov, movEaxToDs, store } from "./helpers/x86.ts";

const PAGE = 0x20000, OTHER = 0x21000;
/** Stops the run with a DMA to the Launcher, so the test can look. */
const checkpoint = hcall(LHCALL_SEND_DMA, 0, SCRATCH + 0x100);
const pfHandler = hcall(LHCALL_LOAD_IDT_ENTRY, 14, ...gate(va(HANDLER), 0xe, 0));
const PGDIR2 = 0xf3000, PGDIR3 = 0xf4000;
/** Page directories like PGDIR: the kernel's linear map and the user pages. */
const directory = (at: number): [number, number[]] => {
  const words = new Array<number>(1024).fill(0);
  words[PAGE_OFFSET >>> 22] = KERNEL_PTES | 7;
  words[USER_VA >>> 22] = USER_PTES | 7;
  return [at, words.flatMap(imm32)];
};
const pte = (gpa: number, flags: number): [number, number[]] => [KERNEL_PTES + (gpa >>> 12) * 4, imm32(gpa | flags)];

function traced(code: number[], options: TinyGuestOptions = {}) {
  const events: HostEvent[] = [];
  const t = tinyGuest(code, { ...options, hostOptions: { ...options.hostOptions, trace: (e) => events.push(e) } });
  return { ...t, events };
}

/** The shadow entry for `vaddr` in shadow slot `slot`, or undefined if its page table is missing. */
function shadowPte(t: ReturnType<typeof tinyGuest>, vaddr: number, slot = t.guest.pgdidx): number | undefined {
  const spgd = t.guest.pgdirs[slot]!.entries[vaddr >>> 22];
  if (!(spgd & 1)) return undefined;
  return t.guest.frames.words(spgd >>> 12)[(vaddr >>> 12) & 0x3ff] >>> 0;
}
const guestPte = (t: ReturnType<typeof tinyGuest>, gpa: number) => t.u32(KERNEL_PTES + (gpa >>> 12) * 4);

/** Seeds whose first random shadow slot is 0, and is not. */
const firstSlot = (seed: number) => new Host({ seed }).random32() % 4;
const seedForSlot0 = [...Array(100).keys()].find((s) => firstSlot(s) === 0)!;
const seedForOtherSlot = [...Array(100).keys()].find((s) => firstSlot(s) !== 0)!;

// --- 7.3 demand faulting --------------------------------------------------

test("a first read is demand-faulted: the Guest's entry gets ACCESSED, the shadow is read-only until the first write", () => {
  const t = tinyGuest([...boot, ...load(EAX, va(PAGE)), ...checkpoint, ...store(va(PAGE), EAX), ...checkpoint, ...jmpSelf]);
  assert.equal(t.run().kind, "dma");
  assert.equal(guestPte(t, PAGE) & 0x60, 0x20);
  assert.equal(shadowPte(t, va(PAGE))! & 3, 1, "present, read-only");
  assert.equal(t.run().kind, "dma");
  assert.equal(guestPte(t, PAGE) & 0x60, 0x60, "the write set DIRTY in the Guest's entry");
  assert.equal(shadowPte(t, va(PAGE))! & 3, 3, "and the shadow is writable now");
  assert.equal(shadowPte(t, va(PAGE))! >>> 12, PAGE >>> 12, "the same frame");
});

test("a fault the shadow tables cannot fix is the Guest's: cr2 goes into lguest_data, the error code onto its stack", () => {
  const t = tinyGuest([...boot, ...pfHandler, ...load(EAX, 0x00800000), ...jmpSelf], { memory: [[HANDLER, checkpoint]] });
  assert.equal(t.run().kind, "dma");
  assert.equal(t.u32(DATA + LGUEST_DATA.cr2), 0x00800000);
  assert.deepEqual(stackTop(t, 3), [0, va(CODE + boot.length + 22), 0x61]);
});

test("a write to a page the Guest mapped read-only is the Guest's, with error code 3 once the page is in the shadow", () => {
  const t = tinyGuest([...boot, ...pfHandler, ...load(EAX, va(PAGE)), ...store(va(PAGE), EAX), ...jmpSelf], {
    memory: [[HANDLER, checkpoint], pte(PAGE, 0x1)],
  });
  assert.equal(t.run().kind, "dma");
  assert.equal(stackTop(t, 1)[0], 3);
  assert.equal(t.u32(DATA + LGUEST_DATA.cr2), va(PAGE));
  assert.equal(guestPte(t, PAGE) & 0x40, 0, "no DIRTY for a write that did not happen");
});

test("a user access to a kernel page is the Guest's fault, error code 4", () => {
  const t = tinyGuest([...boot, ...kernelSetup, ...pfHandler, ...enterUser()], {
    memory: [[HANDLER, checkpoint], [USER, [...mov(EAX, 0x7b), ...movEaxToDs, ...load(EAX, va(PAGE)), ...jmpSelf]], linuxGdt()],
  });
  assert.equal(t.run().kind, "dma");
  assert.equal(stackTop(t, 1)[0], 4);
  assert.equal(t.u32(DATA + LGUEST_DATA.cr2), va(PAGE));
});

test("the shadow entry drops the Guest's GLOBAL bit", () => {
  const t = tinyGuest([...boot, ...load(EAX, va(PAGE)), ...checkpoint], { memory: [pte(PAGE, 0x103)] });
  t.run();
  assert.equal(shadowPte(t, va(PAGE))! & 0x100, 0);
});

// --- 7.4 allowed flags ----------------------------------------------------

const touch = (address: number) => [...boot, ...load(EAX, address), ...jmpSelf];

test("a page table entry with PWT kills with 'bad page table entry'", () => {
  assert.deepEqual(tinyGuest(touch(va(PAGE)), { memory: [pte(PAGE, 0xb)] }).run(), { kind: "dead", reason: "bad page table entry" });
});

test("a page table entry with PSE kills with 'bad page table entry'", () => {
  assert.deepEqual(tinyGuest(touch(va(PAGE)), { memory: [pte(PAGE, 0x83)] }).run(), { kind: "dead", reason: "bad page table entry" });
});

test("a page table entry naming a frame at or above pfn_limit kills with 'bad page table entry'", () => {
  const t = tinyGuest(touch(va(PAGE)), { memory: [[KERNEL_PTES + (PAGE >>> 12) * 4, imm32(0x100000 | 3)]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "bad page table entry" });
});

test("a frame below pfn_limit with nothing behind it kills with 'failed to get page N'", () => {
  const t = tinyGuest(touch(va(PAGE)), { pfnLimit: 0x101, memory: [[KERNEL_PTES + (PAGE >>> 12) * 4, imm32(0x100000 | 3)]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "failed to get page 256" });
});

test("a page directory entry with flags beyond _PAGE_TABLE (a 4 MiB page) kills with 'bad page directory entry'", () => {
  const t = tinyGuest(touch(0x00800000), { memory: [[PGDIR + 2 * 4, imm32(USER_PTES | 0x87)]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "bad page directory entry" });
});

test("a page directory entry naming a frame at or above pfn_limit kills with 'bad page directory entry'", () => {
  const t = tinyGuest(touch(0x00800000), { memory: [[PGDIR + 2 * 4, imm32(0x200000 | 7)]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "bad page directory entry" });
});

// --- 7.1 the Switcher's 4 MiB ---------------------------------------------

test("a fault in the Switcher's range kills with 'attempt to access switcher pages' when the Guest maps it", () => {
  const t = tinyGuest(touch(0xffc02000), { memory: [[PGDIR + 1023 * 4, imm32(USER_PTES | 7)]] });
  assert.deepEqual(t.run(), { kind: "dead", reason: "attempt to access switcher pages" });
});

test("a fault in the Switcher's range is the Guest's own when its page directory does not map it", () => {
  const t = tinyGuest([...boot, ...pfHandler, ...load(EAX, 0xffc02000), ...jmpSelf], { memory: [[HANDLER, checkpoint]] });
  assert.equal(t.run().kind, "dma");
  assert.equal(t.u32(DATA + LGUEST_DATA.cr2), 0xffc02000);
});

test("SET_PTE for an address in the Switcher's range kills", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_SET_PTE, PGDIR, 0xffc00000, PAGE | 0x23), ...jmpSelf]);
  assert.deepEqual(t.run(), { kind: "dead", reason: "attempt to access switcher pages" });
});

test("SET_PMD with an index of 1023 or more is ignored", () => {
  const t = tinyGuest([...boot, ...hcall(LHCALL_SET_PMD, PGDIR, 1023), ...hcall(LHCALL_SET_PMD, PGDIR, 5000), ...checkpoint]);
  assert.equal(t.run().kind, "dma");
  assert.equal(t.guest.pgdirs[0]!.entries[1023], switcherPgdEntry(t.guest));
});

test("every shadow page is at or above pfn_limit, and every shadow directory maps the Switcher at entry 1023", () => {
  const t = tinyGuest([...boot, ...load(EAX, USER_VA), ...hcall(LHCALL_NEW_PGTABLE, PGDIR2), ...load(EAX, USER_VA), ...checkpoint], {
    memory: [directory(PGDIR2)],
  });
  assert.equal(t.run().kind, "dma");
  const directories = t.guest.pgdirs.filter((d) => d !== undefined);
  assert.equal(directories.length, 2);
  for (const d of directories) {
    assert.ok(d.pfn >= t.guest.pfnLimit);
    assert.equal(d.entries[1023], switcherPgdEntry(t.guest));
    for (let i = 0; i < 1023; i++) if (d.entries[i] & 1) assert.ok(d.entries[i] >>> 12 >= t.guest.pfnLimit);
  }
});

// --- 7.5 NEW_PGTABLE ------------------------------------------------------

test("NEW_PGTABLE to an uncached directory takes a random (seeded) slot; a blank one gets the stack pinned again", () => {
  const slot = firstSlot(seedForOtherSlot);
  const t = tinyGuest([...boot, ...hcall(LHCALL_SET_STACK, 0x69, va(STACK_TOP), 2), ...hcall(LHCALL_NEW_PGTABLE, PGDIR2), ...checkpoint], {
    hostOptions: { seed: seedForOtherSlot }, memory: [directory(PGDIR2)],
  });
  assert.equal(t.run().kind, "dma");
  assert.equal(t.guest.pgdidx, slot);
  assert.equal(t.guest.pgdirs[slot]!.cr3, PGDIR2);
  assert.equal(t.guest.cpu.cr3, t.guest.pgdirs[slot]!.pfn * 4096, "the CPU uses the new shadow");
  assert.equal(shadowPte(t, va(STACK_TOP) - 1)! & 3, 3);
  assert.equal(shadowPte(t, va(STACK_TOP) - 0x1001)! & 3, 3);
  assert.equal(t.guest.pgdirs[0]!.cr3, PGDIR, "the old shadow is still cached");
});

test("NEW_PGTABLE back to a cached directory reuses its shadow, kernel mappings and all", () => {
  const t = traced([...boot, ...load(EAX, va(PAGE)), ...hcall(LHCALL_NEW_PGTABLE, PGDIR2), ...hcall(LHCALL_NEW_PGTABLE, PGDIR), ...load(ECX, va(PAGE)), ...checkpoint], {
    hostOptions: { seed: seedForOtherSlot }, memory: [directory(PGDIR2)],
  });
  assert.equal(t.run().kind, "dma");
  assert.equal(t.guest.pgdidx, 0);
  const faults = t.events.flatMap((e) => (e.type === "shadow-fault" ? [e.vaddr] : []));
  assert.equal(faults.filter((v) => v === va(PAGE)).length, 1, "the page was faulted in once, before the switches");
});

test("a reused shadow directory keeps its kernel part and loses its user part", () => {
  const t = tinyGuest([...boot, ...load(EAX, USER_VA), ...load(EAX, va(PAGE)), ...hcall(LHCALL_NEW_PGTABLE, PGDIR2), ...checkpoint], {
    hostOptions: { seed: seedForSlot0 }, memory: [directory(PGDIR2)],
  });
  assert.equal(t.run().kind, "dma");
  assert.equal(t.guest.pgdidx, 0);
  assert.equal(t.guest.pgdirs[0]!.cr3, PGDIR2, "re-tagged");
  assert.equal(t.guest.pgdirs.filter((d) => d !== undefined).length, 1);
  assert.equal(shadowPte(t, USER_VA), undefined, "user part dropped");
  assert.equal(shadowPte(t, va(PAGE))! & 1, 1, "kernel part kept");
});

// --- 7.6 FLUSH_TLB --------------------------------------------------------

test("FLUSH_TLB(0) drops the current shadow's user mappings, and only those", () => {
  const t = tinyGuest([...boot, ...load(EAX, USER_VA), ...load(EAX, va(PAGE)), ...hcall(LHCALL_FLUSH_TLB, 0), ...checkpoint]);
  assert.equal(t.run().kind, "dma");
  assert.equal(shadowPte(t, USER_VA), undefined);
  assert.equal(shadowPte(t, va(PAGE))! & 1, 1);
});

test("FLUSH_TLB(1) drops every mapping of every cached shadow except the Switcher's, then pins the stack", () => {
  const t = tinyGuest([
    ...boot, ...hcall(LHCALL_SET_STACK, 0x69, va(STACK_TOP), 2), ...load(EAX, USER_VA), ...hcall(LHCALL_NEW_PGTABLE, PGDIR2),
    ...load(EAX, va(PAGE)), ...hcall(LHCALL_FLUSH_TLB, 1), ...checkpoint,
  ], { hostOptions: { seed: seedForOtherSlot }, memory: [directory(PGDIR2)] });
  assert.equal(t.run().kind, "dma");
  const old = t.guest.pgdirs[0]!;
  for (let i = 0; i < 1023; i++) assert.equal(old.entries[i], 0, `old shadow entry ${i}`);
  assert.equal(old.entries[1023], switcherPgdEntry(t.guest));
  assert.equal(shadowPte(t, va(PAGE)), 0, "the page table is new: the page is gone");
  assert.equal(shadowPte(t, va(STACK_TOP) - 1)! & 3, 3, "the stack is pinned again");
});

// --- 7.7 SET_PTE ----------------------------------------------------------

test("SET_PTE with ACCESSED installs the entry at once, writable although clean, and the CPU sees it at once", () => {
  const t = tinyGuest([
    ...boot, ...load(EDI, va(PAGE)), ...hcall(LHCALL_SET_PTE, PGDIR, va(PAGE), OTHER | 0x23), ...load(ESI, va(PAGE)), ...checkpoint,
  ], { memory: [[PAGE, imm32(0xaaaa)], [OTHER, imm32(0xbbbb)]] });
  assert.equal(t.run().kind, "dma");
  assert.equal(shadowPte(t, va(PAGE)), OTHER | 0x23);
  assert.equal(t.guest.cpu.regs[EDI], 0xaaaa);
  assert.equal(t.guest.cpu.regs[ESI], 0xbbbb, "the CPU's TLB did not keep the old mapping");
});

test("SET_PTE without ACCESSED or DIRTY clears the shadow entry; GLOBAL never reaches the shadow", () => {
  const t = tinyGuest([
    ...boot, ...load(EAX, va(PAGE)), ...load(EAX, va(OTHER)), ...hcall(LHCALL_SET_PTE, PGDIR, va(PAGE), PAGE | 0x3),
    ...hcall(LHCALL_SET_PTE, PGDIR, va(OTHER), OTHER | 0x163), ...checkpoint,
  ]);
  assert.equal(t.run().kind, "dma");
  assert.equal(shadowPte(t, va(PAGE)), 0);
  assert.equal(shadowPte(t, va(OTHER)), OTHER | 0x63);
});

test("SET_PTE with a bad entry kills only when it would install it (ACCESSED or DIRTY set)", () => {
  const lazy = tinyGuest([...boot, ...load(EAX, va(PAGE)), ...hcall(LHCALL_SET_PTE, PGDIR, va(PAGE), 0x100003), ...checkpoint]);
  assert.equal(lazy.run().kind, "dma");
  const eager = tinyGuest([...boot, ...load(EAX, va(PAGE)), ...hcall(LHCALL_SET_PTE, PGDIR, va(PAGE), 0x100023), ...checkpoint]);
  assert.deepEqual(eager.run(), { kind: "dead", reason: "bad page table entry" });
});

test("SET_PTE for a kernel address reaches every cached shadow; for a user address only that directory's", () => {
  const slot = firstSlot(seedForOtherSlot);
  const t = tinyGuest([
    ...boot, ...load(EAX, va(PAGE)), ...load(EAX, USER_VA), ...hcall(LHCALL_NEW_PGTABLE, PGDIR2),
    ...load(EAX, va(PAGE)), ...load(EAX, USER_VA),
    ...hcall(LHCALL_SET_PTE, PGDIR2, va(PAGE), OTHER | 0x23), ...hcall(LHCALL_SET_PTE, PGDIR2, USER_VA, OTHER | 0x27), ...checkpoint,
  ], { hostOptions: { seed: seedForOtherSlot }, memory: [directory(PGDIR2)] });
  assert.equal(t.run().kind, "dma");
  assert.equal(shadowPte(t, va(PAGE), 0), OTHER | 0x23);
  assert.equal(shadowPte(t, va(PAGE), slot), OTHER | 0x23);
  assert.equal(shadowPte(t, USER_VA, slot), OTHER | 0x27);
  assert.equal(shadowPte(t, USER_VA, 0)! >>> 12, USER >>> 12, "the other directory's user mapping is untouched");
});

// --- 7.8 SET_PMD ----------------------------------------------------------

test("SET_PMD drops that directory's shadow entry; the next access faults it back in", () => {
  const t = traced([...boot, ...load(EAX, USER_VA), ...hcall(LHCALL_SET_PMD, PGDIR, USER_VA >>> 22), ...checkpoint, ...load(EAX, USER_VA), ...checkpoint]);
  assert.equal(t.run().kind, "dma");
  assert.equal(t.guest.pgdirs[0]!.entries[USER_VA >>> 22], 0);
  assert.equal(t.run().kind, "dma");
  assert.equal(t.events.filter((e) => e.type === "shadow-fault" && e.vaddr === USER_VA).length, 2);
});

test("SET_PMD for a directory without a shadow does nothing", () => {
  const t = tinyGuest([...boot, ...load(EAX, USER_VA), ...hcall(LHCALL_SET_PMD, PGDIR3, USER_VA >>> 22), ...checkpoint]);
  assert.equal(t.run().kind, "dma");
  assert.notEqual(t.guest.pgdirs[0]!.entries[USER_VA >>> 22], 0);
  assert.equal(SCRATCH, 0x9000);
});

test("LGUEST_INIT throws away every shadow mapping made before it (a 'clear all')", () => {
  const t = traced([...load(EAX, va(PAGE)), ...boot, ...checkpoint]);
  assert.equal(t.run().kind, "dma");
  assert.equal(shadowPte(t, va(PAGE)), 0, "the page faulted in before LGUEST_INIT is gone");
  assert.deepEqual(t.events.flatMap((e) => (e.type === "pagetable" ? [e.op] : [])), ["flush-all"]);
});
