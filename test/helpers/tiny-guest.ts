// A tiny hand-built Guest for the Host tests: 1 MiB of RAM mapped at
// PAGE_OFFSET by page tables built here, code at a fixed place, an
// lguest_data ready to register, and a user page or two below PAGE_OFFSET.
import { PhysicalMemory } from "../../src/cpu/memory.ts";
import { Host, type HostOptions, type RunResult } from "../../src/host/host.ts";
import type { Guest } from "../../src/host/guest.ts";
import { LHCALL_LGUEST_INIT, LHCALL_LOAD_GDT, LHCALL_SET_STACK } from "../../src/host/constants.ts";
import { descriptor, ESP, hcall, imm32, iret, mov, pushImm } from "./x86.ts";

export const PAGE_OFFSET = 0xc0000000;
export const RAM_SIZE = 0x100000;
/** Guest-physical layout. */
export const CODE = 0x1000; // the entry point, virtual 0xC0001000
export const HANDLER = 0x4000; // trap handlers go here and above
export const DATA = 0x8000; // struct lguest_data
export const SCRATCH = 0x9000; // tables, messages, DMA descriptors
export const STACK_TOP = 0x30000; // the kernel stack: pages 0x2E000 and 0x2F000
export const USER = 0x40000; // a user code page, at USER_VA
export const USER_STACK = 0x41000; // a user stack page, at USER_VA + 0x1000
export const USER_VA = 0x00400000;
export const PGDIR = 0xf0000, KERNEL_PTES = 0xf1000, USER_PTES = 0xf2000;

export const va = (gpa: number) => (gpa + PAGE_OFFSET) >>> 0;

/** Set up a stack and register lguest_data: what every tiny Guest does first. */
export const boot = [...mov(ESP, va(STACK_TOP)), ...hcall(LHCALL_LGUEST_INIT, DATA)];

export interface TinyGuestOptions {
  /** Share a Host with other Guests. */
  host?: Host;
  hostOptions?: HostOptions;
  /** Pages mapped just above RAM (device pages), in order from frame 256. */
  pages?: Uint8Array[];
  sharedPages?: Uint8Array[];
  /** Shared pages whose other Guests may be in other Launchers (H:535). */
  sharedBeyondHost?: Uint8Array[];
  /** Flags of the kernel's page table entries (default present and writable). */
  kernelPteFlags?: number;
  /** Anything else to put in RAM before the Guest starts: [gpa, bytes]. */
  memory?: [number, number[]][];
  /** Instead of RAM plus the pages. */
  pfnLimit?: number;
  /** The guest id a Launcher holds for the machine (L:138); the Host's first free slot without it. */
  id?: number;
}

export interface TinyGuest {
  host: Host;
  guest: Guest;
  memory: PhysicalMemory;
  ram: DataView;
  run(max?: number): RunResult;
  u32(gpa: number): number;
}

export function tinyGuest(code: number[], options: TinyGuestOptions = {}): TinyGuest {
  const memory = new PhysicalMemory(RAM_SIZE);
  const ram = new DataView(memory.ram.buffer);
  const pages = options.pages ?? [];
  pages.forEach((page, i) => memory.mapPage(RAM_SIZE / 4096 + i, page));
  for (let i = 0; i < 64; i++) memory.ram[DATA + 0x14 + i] = 0xff;
  ram.setUint32(DATA, 0x200, true);
  for (let page = 0; page < RAM_SIZE / 4096; page++) {
    ram.setUint32(KERNEL_PTES + page * 4, (page << 12) | (options.kernelPteFlags ?? 0x3), true);
  }
  ram.setUint32(PGDIR + (PAGE_OFFSET >>> 22) * 4, KERNEL_PTES | 0x7, true);
  ram.setUint32(PGDIR + (USER_VA >>> 22) * 4, USER_PTES | 0x7, true);
  ram.setUint32(USER_PTES, USER | 0x7, true);
  ram.setUint32(USER_PTES + 4, USER_STACK | 0x7, true);
  memory.ram.set(code, CODE);
  for (const [gpa, bytes] of options.memory ?? []) memory.ram.set(bytes, gpa);
  const host = options.host ?? new Host(options.hostOptions);
  const result = host.initialize({
    memory, pfnLimit: options.pfnLimit ?? RAM_SIZE / 4096 + pages.length, pgdir: PGDIR, start: va(CODE), pageOffset: PAGE_OFFSET,
    sharedPages: options.sharedPages, sharedBeyondHost: options.sharedBeyondHost, id: options.id,
  });
  if (!result.ok) throw new Error(`initialize: ${result.error}: ${result.message}`);
  const guest = result.guest;
  return {
    host, guest, memory, ram,
    run: (max = 200_000) => host.run(guest, max),
    u32: (gpa) => ram.getUint32(gpa, true),
  };
}

/** Linux's user selectors. */
export const USER_CS = 0x73, USER_DS = 0x7b;
/** Where tests keep a GDT to load. */
export const GDT_TABLE = 0xa000;

/** A GDT as a Linux Guest sends it: kernel segments with DPL 0 (the Host makes them 1), user segments with DPL 3. */
export function linuxGdt(extra: Record<number, [number, number]> = {}): [number, number[]] {
  const words = new Array<number>(64).fill(0);
  const set = (index: number, [low, high]: [number, number]) => {
    words[index * 2] = low;
    words[index * 2 + 1] = high;
  };
  set(12, descriptor(0, 0xfffff, 0x9a));
  set(13, descriptor(0, 0xfffff, 0x92));
  set(14, descriptor(0, 0xfffff, 0xfa));
  set(15, descriptor(0, 0xfffff, 0xf2));
  for (const [index, value] of Object.entries(extra)) set(Number(index), value);
  return [GDT_TABLE, words.flatMap((word) => imm32(word))];
}

/** Load that GDT and a two-page kernel stack ending at STACK_TOP. */
export const kernelSetup = [
  ...hcall(LHCALL_LOAD_GDT, GDT_TABLE, 32),
  ...hcall(LHCALL_SET_STACK, 0x69, va(STACK_TOP), 2),
];

/** iret to ring 3 at `eip` with the stack at `esp` (the user pages below PAGE_OFFSET). */
export function enterUser(eip = USER_VA, esp = USER_VA + 0x2000): number[] {
  return [...pushImm(USER_DS), ...pushImm(esp), ...pushImm(0x202), ...pushImm(USER_CS), ...pushImm(eip), ...iret];
}

/** Words of guest memory at a virtual address in the linear map. */
export function wordsAt(t: TinyGuest, virtual: number, count: number): number[] {
  return Array.from({ length: count }, (_, k) => t.u32((virtual - PAGE_OFFSET + 4 * k) >>> 0));
}

/** The words on top of the Guest's (kernel) stack. */
export function stackTop(t: TinyGuest, count: number): number[] {
  return wordsAt(t, t.guest.cpu.regs[4] >>> 0, count);
}
