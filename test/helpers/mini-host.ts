// A test double of the lguest Host, written from the interface spec
// (/work/shared/spec/lguest-abi.md, sections 2.4 to 9.1), just big enough to
// run the book's Guest kernel on our CPU before the book's Host exists. It
// is NOT the book's Host and is not tangled from the book: it keeps the
// rules a Guest can observe (hypercalls and their kill reasons, the async
// ring, shadow page tables with four cached directories, demand faulting
// with accessed and dirty bits, direct and reflected traps, the no-interrupt
// window, halting, the one-shot timer, the console's DMA) and skips what our
// Guest never exercises (inter-guest DMA, I/O port emulation, LOAD_TLS
// checks beyond the fix-up, more than one guest).
import { CPU } from "../../src/cpu/cpu.ts";
import { PhysicalMemory } from "../../src/cpu/memory.ts";
import { CS, DS, EAX, EBX, ECX, EDX, ES, ESI, ESP, FS, GS, SS } from "../../src/cpu/registers.ts";
import {
  STOP_BUDGET, STOP_EXCEPTION, STOP_HALT, STOP_INTERRUPT, STOP_SHUTDOWN, STOP_UNSUPPORTED,
} from "../../src/cpu/stop.ts";
import { layOutGuest, type GuestLayout } from "../../src/launcher/layout.ts";

const PAGE = 4096;
const SWITCHER = 0xffc00000;
const GDT_VA = SWITCHER, IDT_VA = SWITCHER + 0x1000, TSS_VA = SWITCHER + 0x2000;
const LGUEST_DATA_SIZE = 1128;
const KERNEL_CS = 0x61, KERNEL_DS = 0x69;
const FLAT_CODE_DPL1 = 0x00cfbb00, FLAT_DATA_DPL1 = 0x00cfb300;

export interface MiniHostOptions {
  /** Virtual nanoseconds per guest instruction (the clock of the timer). */
  nsPerInstruction?: number;
  /** Instructions per run of the CPU before the host looks around. */
  slice?: number;
  /** The wall clock at boot, in seconds since 1970. */
  wallClock?: number;
}

interface Shadow {
  cr3: number;
  pfn: number;
  page: Uint32Array;
}

interface HostPage {
  pfn: number;
  bytes: Uint8Array;
  words: Uint32Array;
}

interface Binding {
  key: number;
  dmas: number;
  count: number;
  irq: number;
}

export class MiniHost {
  readonly layout: GuestLayout;
  readonly memory: PhysicalMemory;
  readonly cpu: CPU;
  /** Everything the guest sent to the console. */
  output = "";
  /** Why the guest died, once it has. */
  dead?: string;
  /** Counters a test can look at. */
  readonly hypercalls = new Map<number, number>();
  /** The first thousand hypercalls, in the order the host ran them. */
  readonly callLog: number[] = [];
  readonly reflected = new Map<number, number>();
  shadowEvictions = 0;

  private readonly pfnLimit: number;
  private readonly pageOffset: number;
  private readonly ns: number;
  private readonly slice: number;
  private readonly wallClock: number;
  private nextHostPfn: number;
  private readonly freePages: HostPage[] = [];
  private readonly ptePages = new Map<number, HostPage>();
  private readonly shadows: (Shadow | undefined)[] = [undefined, undefined, undefined, undefined];
  private current = 0;
  private readonly gdt: HostPage;
  private readonly idtPage: HostPage;
  private readonly tss: HostPage;
  private readonly switcherPte: HostPage;
  private readonly guestGdt = new Uint32Array(64);
  private readonly guestIdt = new Uint32Array(130); // 64 entries + the syscall entry, 2 words each
  private lguestData = 0;
  private noirqStart = 0;
  private noirqEnd = 0;
  private nextHcall = 0;
  private pendingHcall = false;
  private pendingIrqs = 0;
  private halted = false;
  private guestTs = false;
  private timerAt = -1;
  private idleNs = 0;
  private esp1 = 0;
  private ss1 = 0;
  private stackPages = 0;
  private readonly bindings: Binding[] = [];
  private pendingDma: { dma: number; key: number } | undefined;
  private readonly typed: number[] = [];
  private random = 12345;

  constructor(layout: GuestLayout, options: MiniHostOptions = {}) {
    this.layout = layout;
    this.pfnLimit = layout.pfnLimit;
    this.pageOffset = layout.pageOffset;
    this.ns = options.nsPerInstruction ?? 10;
    this.slice = options.slice ?? 20000;
    this.wallClock = options.wallClock ?? 1717243200;
    this.memory = new PhysicalMemory(layout.ram);
    this.memory.mapPage(layout.memoryBytes / PAGE, layout.descriptorPage);
    for (const device of layout.devices) {
      for (let k = 0; k < device.pages; k++) {
        this.memory.mapPage(device.pfn + k, device.memory.subarray(k * PAGE, (k + 1) * PAGE));
      }
    }
    this.nextHostPfn = this.pfnLimit + 16;
    this.cpu = new CPU(this.memory);
    this.gdt = this.hostPage();
    this.idtPage = this.hostPage();
    this.tss = this.hostPage();
    this.switcherPte = this.hostPage();
    this.switcherPte.words[0] = (this.gdt.pfn << 12) | 1;
    this.switcherPte.words[1] = (this.idtPage.pfn << 12) | 1;
    this.switcherPte.words[2] = (this.tss.pfn << 12) | 1;
    this.guestGdt[24] = 0x0000ffff; // entry 12: flat code, DPL 1 (spec 6.2)
    this.guestGdt[25] = FLAT_CODE_DPL1;
    this.guestGdt[26] = 0x0000ffff; // entry 13: flat data, DPL 1
    this.guestGdt[27] = FLAT_DATA_DPL1;
    this.writeGdt();
    this.setUpCpu(layout);
  }

  // ---- memory ----------------------------------------------------------

  private hostPage(): HostPage {
    const page = this.freePages.pop();
    if (page) {
      page.bytes.fill(0);
      return page;
    }
    const bytes = new Uint8Array(PAGE);
    const pfn = this.nextHostPfn++;
    this.memory.mapPage(pfn, bytes);
    return { pfn, bytes, words: new Uint32Array(bytes.buffer) };
  }

  /** The original's lguest_address_ok (spec 1.2). */
  private addressOk(addr: number, len: number): boolean {
    const end = addr + len;
    return end <= 0xffffffff && Math.floor(end / PAGE) < this.pfnLimit;
  }

  private read32(gpa: number, what = "bad read address"): number {
    if (!this.addressOk(gpa, 4)) {
      this.kill(`${what} ${hex(gpa)}`);
      return 0;
    }
    return this.memory.read32(gpa) >>> 0;
  }

  private write32(gpa: number, value: number, what = "bad write address"): void {
    if (!this.addressOk(gpa, 4)) {
      this.kill(`${what} ${hex(gpa)}`);
      return;
    }
    this.memory.write32(gpa, value);
  }

  private kill(reason: string): void {
    this.dead ??= reason;
  }

  // ---- the CPU at the guest's first instruction (spec 1.6) --------------

  private setUpCpu(layout: GuestLayout): void {
    const cpu = this.cpu;
    cpu.regs.fill(0);
    cpu.regs[ESI] = 0;
    cpu.eip = layout.entry;
    cpu.setPrivilege(1);
    cpu.setSegmentCache(CS, KERNEL_CS, 0, 0xffffffff, FLAT_CODE_DPL1);
    for (const seg of [DS, ES, SS]) cpu.setSegmentCache(seg, KERNEL_DS, 0, 0xffffffff, FLAT_DATA_DPL1);
    cpu.setSegmentCache(FS, 0, 0, 0, 0);
    cpu.setSegmentCache(GS, 0, 0, 0, 0);
    cpu.stackMask = -1;
    cpu.setEflags(0x202, -1);
    cpu.gdtBase = GDT_VA;
    cpu.gdtLimit = 32 * 8 - 1;
    cpu.idtBase = IDT_VA;
    cpu.idtLimit = 256 * 8 - 1;
    cpu.trSelector = 16 * 8;
    cpu.trBase = TSS_VA;
    cpu.trLimit = 0x67;
    cpu.trType = 9;
    cpu.stopOnVector.fill(1);
    cpu.softwareDpl.fill(0);
    cpu.softwareDpl[31] = 1;
    const shadow = this.newShadow(layout.pgdir);
    this.shadows[0] = shadow;
    this.current = 0;
    cpu.cr3 = shadow.pfn << 12;
    cpu.cr0 = 0x80010011; // PG, WP, ET, PE
    cpu.flushTlb();
  }

  private writeGdt(): void {
    const words = this.gdt.words;
    words.set(this.guestGdt);
    words[20] = 0x0000ffff; words[21] = 0x00cf9b00; // 10: LGUEST_CS
    words[22] = 0x0000ffff; words[23] = 0x00cf9300; // 11: LGUEST_DS
    // 16: the TSS, a 32-bit available TSS of 0x68 bytes at TSS_VA
    words[32] = ((TSS_VA & 0xffff) << 16) | 0x67;
    words[33] = (TSS_VA & 0xff000000) | 0x8900 | ((TSS_VA >>> 16) & 0xff);
    words[62] = 0; words[63] = 0;
  }

  // ---- shadow page tables (spec 7) ---------------------------------------

  private newShadow(cr3: number): Shadow {
    const page = this.hostPage();
    page.words[1023] = (this.switcherPte.pfn << 12) | 3;
    return { cr3, pfn: page.pfn, page: page.words };
  }

  private dropEntry(shadow: Shadow, index: number): void {
    const entry = shadow.page[index];
    if (entry & 1) {
      const pte = this.ptePages.get(entry >>> 12);
      if (pte) {
        this.ptePages.delete(entry >>> 12);
        this.freePages.push(pte);
      }
    }
    shadow.page[index] = 0;
  }

  private dropUser(shadow: Shadow): void {
    for (let i = 0; i < this.pageOffset >>> 22; i++) this.dropEntry(shadow, i);
  }

  private checkPte(pte: number): boolean {
    if (pte & 0x88 || pte >>> 12 >= this.pfnLimit) {
      this.kill(`bad page table entry ${hex(pte)}`);
      return false;
    }
    return true;
  }

  /** spec 7.3: true if the fault was the shadow's, not the guest's. */
  demandPage(vaddr: number, errcode: number): boolean {
    vaddr >>>= 0;
    const shadow = this.shadows[this.current]!;
    const gpgdAddr = (shadow.cr3 & ~0xfff) + (vaddr >>> 22) * 4;
    const gpgd = this.read32(gpgdAddr);
    if (this.dead || !(gpgd & 1)) return false;
    if (vaddr >>> 22 >= 1023) {
      this.kill("attempt to access switcher pages");
      return false;
    }
    let spgd = shadow.page[vaddr >>> 22];
    if (!(spgd & 1)) {
      if (gpgd & 0xfff & ~0x67 || gpgd >>> 12 >= this.pfnLimit) {
        this.kill(`bad page directory entry ${hex(gpgd)}`);
        return false;
      }
      const pte = this.hostPage();
      this.ptePages.set(pte.pfn, pte);
      spgd = ((pte.pfn << 12) | (gpgd & 0xfff)) >>> 0;
      shadow.page[vaddr >>> 22] = spgd;
    }
    const gpteAddr = (gpgd & ~0xfff) + ((vaddr >>> 12) & 1023) * 4;
    let gpte = this.read32(gpteAddr);
    if (this.dead || !(gpte & 1)) return false;
    if (errcode & 2 && !(gpte & 2)) return false;
    if (errcode & 4 && !(gpte & 4)) return false;
    if (!this.checkPte(gpte)) return false;
    gpte |= 0x20;
    if (errcode & 2) gpte |= 0x40;
    let spte = gpte & ~0x100;
    if (!(gpte & 0x40)) spte &= ~2;
    this.ptePages.get(spgd >>> 12)!.words[(vaddr >>> 12) & 1023] = spte >>> 0;
    this.write32(gpteAddr, gpte >>> 0);
    this.cpu.flushTlb();
    return true;
  }

  private pinStack(): void {
    for (let i = 0; i < this.stackPages; i++) {
      const va = (this.esp1 - 1 - i * PAGE) >>> 0;
      if (!this.demandPage(va, 2)) {
        this.kill(`bad stack page ${hex(va)}`);
        return;
      }
    }
  }

  private newPgtable(cr3: number): void {
    let slot = this.shadows.findIndex((s) => s && s.cr3 === cr3);
    let blank = false;
    if (slot < 0) {
      this.random = (this.random * 1103515245 + 12345) >>> 0;
      slot = (this.random >>> 16) % 4;
      if (!this.shadows[slot]) {
        this.shadows[slot] = this.newShadow(cr3);
        blank = true;
      } else {
        this.shadowEvictions++;
      }
      const shadow = this.shadows[slot]!;
      shadow.cr3 = cr3;
      this.dropUser(shadow);
    }
    this.current = slot;
    this.cpu.cr3 = this.shadows[slot]!.pfn << 12;
    this.cpu.flushTlb();
    if (blank) this.pinStack();
  }

  private flushAll(): void {
    for (const shadow of this.shadows) {
      if (shadow) for (let i = 0; i < 1023; i++) this.dropEntry(shadow, i);
    }
    this.cpu.flushTlb();
    this.pinStack();
  }

  private setPte(cr3: number, vaddr: number, pte: number): void {
    vaddr >>>= 0;
    if (vaddr >>> 22 >= 1023) {
      this.kill("attempt to access switcher pages");
      return;
    }
    const apply = (shadow: Shadow) => {
      const spgd = shadow.page[vaddr >>> 22];
      if (!(spgd & 1)) return;
      let spte = 0;
      if (pte & 0x60) {
        if (!this.checkPte(pte)) return;
        spte = pte & ~0x100;
      }
      this.ptePages.get(spgd >>> 12)!.words[(vaddr >>> 12) & 1023] = spte >>> 0;
    };
    if (vaddr >= this.pageOffset) {
      for (const shadow of this.shadows) if (shadow) apply(shadow);
    } else {
      const shadow = this.shadows.find((s) => s && s.cr3 === cr3);
      if (shadow) apply(shadow);
    }
    this.cpu.flushTlb();
  }

  // ---- segments (spec 6) -------------------------------------------------

  private fixUpGdt(first: number, last: number): void {
    for (let i = first; i <= last; i++) {
      if (i === 10 || i === 11 || i === 16 || i === 31) continue;
      let b = this.guestGdt[i * 2 + 1];
      if (this.guestGdt[i * 2] === 0 && b === 0) continue;
      if (!(b & 0x6000)) b |= 0x2000;
      b |= 0x100;
      this.guestGdt[i * 2 + 1] = b >>> 0;
    }
    this.writeGdt();
    this.refreshSegments();
  }

  /** spec 6.4: loaded selectors take their descriptors from the new GDT. */
  private refreshSegments(): void {
    const cpu = this.cpu;
    for (const seg of [CS, SS]) {
      const selector = cpu.segSelector[seg];
      const index = selector >>> 3;
      const low = this.guestGdt[index * 2], high = this.guestGdt[index * 2 + 1];
      if (!(high & 0x8000)) {
        this.kill(`unhandled trap 256 (segment ${selector} not present)`);
        return;
      }
      cpu.setSegmentCache(seg, selector, 0, 0xffffffff, high);
      void low;
    }
    for (const seg of [DS, ES, FS, GS]) {
      const stop = cpu.stopOnVector[13];
      try {
        cpu.loadSegment(seg, cpu.segSelector[seg]);
      } catch {
        this.kill("unhandled trap 256");
      }
      cpu.stopOnVector[13] = stop;
    }
    cpu.interruptShadow = false;
  }

  // ---- traps (spec 5) ------------------------------------------------------

  private loadIdtEntry(num: number, lo: number, hi: number): void {
    if (num === 2 || num === 8 || num === 15 || num === 31) return;
    let slot: number;
    if (num < 64) slot = num;
    else if (num === 0x80) slot = 64;
    else return;
    if (!(hi & 0x8000)) {
      this.guestIdt[slot * 2] = 0;
      this.guestIdt[slot * 2 + 1] = 0;
    } else {
      const type = (hi >>> 8) & 0xf;
      if (type !== 0xe && type !== 0xf) {
        this.kill(`bad IDT type ${type}`);
        return;
      }
      this.guestIdt[slot * 2] = ((KERNEL_CS << 16) | (lo & 0xffff)) >>> 0;
      this.guestIdt[slot * 2 + 1] = (hi & 0xffffef00) >>> 0;
    }
    const direct = (num < 32 || num === 0x80) && ![7, 13, 14, 31, 2, 8, 15].includes(num) &&
      (this.guestIdt[slot * 2 + 1] & 0x8f00) === 0x8f00;
    const words = this.idtPage.words;
    words[num * 2] = direct ? this.guestIdt[slot * 2] : 0;
    words[num * 2 + 1] = direct ? this.guestIdt[slot * 2 + 1] : 0;
    this.cpu.stopOnVector[num] = direct ? 0 : 1;
  }

  private idtEntry(num: number): [number, number] | undefined {
    const slot = num < 64 ? num : num === 0x80 ? 64 : -1;
    if (slot < 0) return undefined;
    const lo = this.guestIdt[slot * 2], hi = this.guestIdt[slot * 2 + 1];
    return hi & 0x8000 ? [lo, hi] : undefined;
  }

  /** spec 5.4 (b). Returns false if the trap cannot be delivered. */
  private reflect(trap: number, errorCode: number): boolean {
    const entry = trap < 64 ? this.idtEntry(trap) : undefined;
    if (!entry) return false;
    this.reflected.set(trap, (this.reflected.get(trap) ?? 0) + 1);
    const cpu = this.cpu;
    const ss = cpu.segSelector[SS];
    const esp = cpu.regs[ESP] >>> 0;
    let stack: number, newSs: number;
    const push = (value: number) => {
      stack -= 4;
      this.write32(stack, value >>> 0, "bad stack push");
    };
    if ((ss & 3) !== 1) {
      stack = (this.esp1 - this.pageOffset) >>> 0;
      newSs = this.ss1;
      push(ss);
      push(esp);
    } else {
      stack = (esp - this.pageOffset) >>> 0;
      newSs = ss;
    }
    let flags = cpu.eflags();
    if (this.lguestData && !(this.read32(this.lguestData) & 0x200)) flags &= ~0x200;
    push(flags);
    push(cpu.segSelector[CS]);
    push(cpu.eip);
    if ([8, 10, 11, 12, 13, 14, 17].includes(trap)) push(errorCode);
    if (this.dead) return true;
    cpu.setPrivilege(1);
    cpu.setSegmentCache(SS, newSs, 0, 0xffffffff, FLAT_DATA_DPL1);
    cpu.stackMask = -1;
    cpu.regs[ESP] = (stack + this.pageOffset) | 0;
    cpu.setSegmentCache(CS, KERNEL_CS, 0, 0xffffffff, FLAT_CODE_DPL1);
    const [lo, hi] = entry;
    cpu.eip = ((lo & 0xffff) | (hi & 0xffff0000)) | 0;
    if (((hi >>> 8) & 0xf) === 0xe) this.write32(this.lguestData, 0);
    return true;
  }

  private writeTime(): void {
    const ns = this.now();
    const seconds = this.wallClock + Math.floor(ns / 1e9);
    this.write32(this.lguestData + 0xc, seconds);
    this.write32(this.lguestData + 0x10, ns % 1e9);
  }

  private now(): number {
    return this.cpu.instructions * this.ns + this.idleNs;
  }

  /** spec 5.5 */
  private maybeDeliverInterrupt(): void {
    if (!this.lguestData) return;
    const blocked = this.read32(this.lguestData + 4);
    const candidates = this.pendingIrqs & ~blocked;
    if (!candidates) return;
    const irq = 31 - Math.clz32(candidates & -candidates);
    const eip = this.cpu.eip >>> 0;
    if (eip >= this.noirqStart && eip < this.noirqEnd) return;
    if (this.halted) {
      this.write32(this.lguestData, 0x200);
      this.halted = false;
    } else if (this.read32(this.lguestData) === 0) {
      return;
    }
    if (this.idtEntry(32 + irq)) {
      this.pendingIrqs &= ~(1 << irq);
      this.reflect(32 + irq, -1);
    }
    this.writeTime();
  }

  // ---- hypercalls (spec 3) -------------------------------------------------

  private doHypercalls(): void {
    const cpu = this.cpu;
    if (!this.lguestData) {
      if (!this.pendingHcall) return;
      this.pendingHcall = false;
      const call = cpu.regs[EAX] >>> 0;
      this.count(call);
      if (call !== 1) {
        this.kill(`hypercall ${call} before LGUEST_INIT`);
        return;
      }
      this.lguestInit(cpu.regs[EDX] >>> 0);
      return;
    }
    const status = this.lguestData + 0x14;
    if (this.addressOk(status, 64)) {
      const snapshot = this.layout.ram.slice(status, status + 64);
      for (let n = 0; n < 64 && !this.dead; n++) {
        const slot = this.nextHcall;
        if (snapshot[slot] === 0xff) break;
        this.nextHcall = (slot + 1) % 64;
        const regs = this.lguestData + 0x54 + slot * 16;
        const [eax, edx, ebx, ecx] = [0, 4, 8, 12].map((k) => this.read32(regs + k));
        this.count(eax);
        this.hypercall(eax, edx, ebx, ecx);
        this.memory.write8(status + slot, 0xff);
        if (this.pendingDma) break;
      }
    }
    if (this.pendingHcall && !this.pendingDma && !this.dead) {
      this.pendingHcall = false;
      const call = cpu.regs[EAX] >>> 0;
      this.count(call);
      const result = this.hypercall(call, cpu.regs[EDX] >>> 0, cpu.regs[EBX] >>> 0, cpu.regs[ECX] >>> 0);
      if (result !== undefined) cpu.regs[EAX] = result;
    }
  }

  private count(call: number): void {
    this.hypercalls.set(call, (this.hypercalls.get(call) ?? 0) + 1);
    if (this.callLog.length < 1000) this.callLog.push(call);
  }

  private lguestInit(gpa: number): void {
    if (!this.addressOk(gpa, LGUEST_DATA_SIZE)) {
      this.kill("bad guest page");
      return;
    }
    this.lguestData = gpa;
    this.noirqStart = this.read32(gpa + 0x460);
    this.noirqEnd = this.read32(gpa + 0x464);
    this.write32(gpa + 0x454, 0x00400000);
    this.memory.write8(gpa + 0x458, 0);
    this.memory.write8(gpa + 0x459, 0);
    this.write32(gpa + 0x45c, 0);
    this.writeTime();
    this.flushAll();
  }

  private hypercall(call: number, edx: number, ebx: number, ecx: number): number | undefined {
    switch (call) {
      case 0: // FLUSH_ASYNC
        return undefined;
      case 1:
        this.kill("already have lguest_data");
        return undefined;
      case 2: { // CRASH
        if (!this.addressOk(edx, 128)) {
          this.kill(`bad read address ${hex(edx)}`);
          return undefined;
        }
        const bytes = this.layout.ram.slice(edx, edx + 128);
        bytes[127] = 0;
        const end = bytes.indexOf(0);
        this.kill(`CRASH: ${new TextDecoder().decode(bytes.subarray(0, end))}`);
        return undefined;
      }
      case 3: // LOAD_GDT
        if (ebx > 32) {
          this.kill(`too many gdt entries ${ebx}`);
          return undefined;
        }
        if (!this.addressOk(edx, ebx * 8)) {
          this.kill(`bad gdt address ${hex(edx)}`);
          return undefined;
        }
        for (let i = 0; i < ebx * 2; i++) this.guestGdt[i] = this.memory.read32(edx + i * 4) >>> 0;
        this.fixUpGdt(0, 31);
        return undefined;
      case 4:
        this.newPgtable(edx);
        return undefined;
      case 5:
        if (edx) this.flushAll();
        else {
          this.dropUser(this.shadows[this.current]!);
          this.cpu.flushTlb();
        }
        return undefined;
      case 6:
        this.loadIdtEntry(edx, ebx, ecx);
        return undefined;
      case 7: // SET_STACK
        if ((edx & 3) !== 1) {
          this.kill(`bad stack segment ${hex(edx)}`);
          return undefined;
        }
        if (ecx > 2) {
          this.kill(`too many stack pages ${ecx}`);
          return undefined;
        }
        this.ss1 = edx;
        this.esp1 = ebx;
        this.stackPages = ecx;
        this.tss.words[1] = 0; // esp0, ss0: the host's (unused here)
        this.tss.words[3] = ebx;
        this.tss.words[4] = edx;
        this.tss.words[25] = 0x68 << 16; // the I/O bitmap is past the end
        this.pinStack();
        return undefined;
      case 8:
        this.guestTs = edx !== 0;
        return undefined;
      case 9:
        this.timerAt = edx === 0 ? -1 : this.now() + edx;
        return undefined;
      case 10:
        this.halted = true;
        return undefined;
      case 12: return this.bindDma(edx, ebx, ecx);
      case 13:
        this.sendDma(edx, ebx);
        return undefined;
      case 14:
        this.setPte(edx, ebx, ecx);
        return undefined;
      case 15: {
        if (ebx >= 1023) return undefined;
        const shadow = this.shadows.find((s) => s && s.cr3 === edx);
        if (shadow) {
          this.dropEntry(shadow, ebx);
          this.cpu.flushTlb();
        }
        return undefined;
      }
      case 16:
        if (!this.addressOk(edx, 24)) {
          this.kill("bad TLS address");
          return undefined;
        }
        for (let i = 0; i < 6; i++) this.guestGdt[12 + i] = this.memory.read32(edx + i * 4) >>> 0;
        this.fixUpGdt(6, 8);
        return undefined;
      default:
        this.kill(`Bad hypercall ${call}`);
        return undefined;
    }
  }

  // ---- DMA (spec 8, 9.1) -----------------------------------------------------

  private validKey(key: number): boolean {
    return (key & 3) === 0 && key < this.pfnLimit * PAGE;
  }

  private bindDma(key: number, dmas: number, ecx: number): number {
    if (!this.validKey(key)) {
      this.kill("bad dma key");
      return 0;
    }
    const count = (ecx >>> 8) & 0xffff, irq = ecx & 0xff;
    if (irq >= 32) return 0;
    if (irq === 0) {
      const at = this.bindings.findIndex((b) => b.key === key && b.dmas === dmas);
      if (at < 0) return 0;
      this.bindings.splice(at, 1);
      return 1;
    }
    if (this.bindings.length >= 32) return 0;
    this.bindings.push({ key, dmas, count, irq });
    return 1;
  }

  private sendDma(key: number, dma: number): void {
    if (!this.validKey(key)) {
      this.kill("bad sending DMA key");
      return;
    }
    this.pendingDma = { dma, key };
  }

  /** What the example launcher does with a send to key 0 (spec 9.1). */
  private serviceLauncherDma(): void {
    const { dma, key } = this.pendingDma!;
    this.pendingDma = undefined;
    const top = this.pfnLimit * PAGE;
    if (dma + 100 > top) {
      this.kill(`launcher: bad DMA descriptor ${hex(dma)}`);
      return;
    }
    let total = 0;
    for (let i = 0; i < 16; i++) {
      const len = this.memory.read8(dma + 68 + 2 * i) | (this.memory.read8(dma + 69 + 2 * i) << 8);
      if (len === 0) break;
      const addr = this.memory.read32(dma + 4 + 4 * i) >>> 0;
      if (addr >= top || addr + len >= top) {
        this.kill(`launcher: bad DMA buffer ${hex(addr)} length ${len}`);
        return;
      }
      if (key === 0) this.output += new TextDecoder("latin1").decode(this.layout.ram.slice(addr, addr + len));
      total += len;
    }
    this.memory.write32(dma, total);
  }

  /** LHREQ_GETDMA then LHREQ_IRQ, as the launcher does for stdin (spec 2.7, 9.1). */
  private deliverInput(): void {
    if (this.typed.length === 0) return;
    const binding = [...this.bindings].reverse().find((b) => b.key === 0);
    if (!binding) return;
    let entry = binding.dmas + (binding.count - 1) * 100;
    for (let i = 0; i < binding.count; i++) {
      if (this.memory.read32(binding.dmas + i * 100) === 0) {
        entry = binding.dmas + i * 100;
        break;
      }
    }
    if (this.memory.read32(entry) !== 0) return; // busy: wait for the guest
    let n = 0;
    for (let i = 0; i < 16 && this.typed.length; i++) {
      const len = this.memory.read8(entry + 68 + 2 * i) | (this.memory.read8(entry + 69 + 2 * i) << 8);
      if (len === 0) break;
      const addr = this.memory.read32(entry + 4 + 4 * i) >>> 0;
      for (let k = 0; k < len && this.typed.length; k++) {
        this.memory.write8(addr + k, this.typed.shift()!);
        n++;
      }
    }
    this.memory.write32(entry, n);
    this.pendingIrqs |= 1 << binding.irq;
  }

  /** Queues keystrokes, as if typed on the launcher's terminal. */
  type(text: string): void {
    for (const byte of new TextEncoder().encode(text)) this.typed.push(byte);
  }

  // ---- the main loop (spec 2.4) ------------------------------------------------

  /** Runs until `done()` is true, the guest dies, or `maxInstructions` more have run. */
  run(done: () => boolean = () => false, maxInstructions = 200_000_000): void {
    const cpu = this.cpu;
    const limit = cpu.instructions + maxInstructions;
    while (!this.dead && !done()) {
      if (cpu.instructions >= limit) throw new Error(`guest still running after ${maxInstructions} instructions; output:\n${this.output}`);
      this.doHypercalls();
      if (this.pendingDma) {
        this.serviceLauncherDma();
        continue;
      }
      this.deliverInput();
      this.maybeDeliverInterrupt();
      if (this.dead) break;
      if (this.halted) {
        if (this.timerAt < 0) throw new Error(`guest halted with no timer; output:\n${this.output}`);
        this.idleNs += Math.max(0, this.timerAt - this.now());
        this.fireTimer();
        continue;
      }
      cpu.cr0 = this.guestTs ? cpu.cr0 | 8 : cpu.cr0 & ~8;
      let budget = this.slice;
      if (this.timerAt >= 0) budget = Math.max(1, Math.min(budget, Math.ceil((this.timerAt - this.now()) / this.ns)));
      const stop = cpu.run(budget);
      this.fireTimer();
      if (stop === STOP_BUDGET) continue;
      this.dispatch(stop);
    }
  }

  private fireTimer(): void {
    if (this.timerAt >= 0 && this.now() >= this.timerAt) {
      this.timerAt = -1;
      this.pendingIrqs |= 1;
    }
  }

  private dispatch(stop: number): void {
    const cpu = this.cpu;
    if (stop === STOP_SHUTDOWN || stop === STOP_UNSUPPORTED || stop === STOP_HALT) {
      this.kill(`cpu stopped (${stop}): ${cpu.stopMessage} at ${hex(cpu.eip)}`);
      return;
    }
    const trap = cpu.exceptionVector;
    const errorCode = cpu.exceptionErrorCode;
    if (stop === STOP_INTERRUPT && trap === 31) {
      this.pendingHcall = true;
      return;
    }
    if (stop !== STOP_EXCEPTION && stop !== STOP_INTERRUPT) throw new Error(`unexpected stop ${stop}`);
    if (trap === 14) {
      if (this.demandPage(cpu.cr2, errorCode)) return;
      if (this.dead) return;
      if (this.lguestData) this.write32(this.lguestData + 8, cpu.cr2 >>> 0);
    }
    if (trap === 7 && !this.guestTs) return;
    if (!this.reflect(trap, errorCode)) {
      this.kill(`unhandled trap ${trap} at ${hex(cpu.eip)} (${hex(trap === 14 ? cpu.cr2 >>> 0 : errorCode >>> 0)})`);
    }
  }
}

function hex(n: number): string {
  return "0x" + (n >>> 0).toString(16);
}

/** Lays out a guest with the launcher's code (console only) and makes a host for it. */
export function bootGuest(kernel: Uint8Array<ArrayBuffer>, kernelArguments: string[], options: MiniHostOptions & { memoryBytes?: number } = {}): MiniHost {
  const layout = layOutGuest({
    memoryBytes: options.memoryBytes ?? 32 * 1024 * 1024,
    kernel,
    kernelName: "guest",
    devices: [{ type: 1, features: 0, pages: 0, description: "console" }],
    kernelArguments,
  });
  return new MiniHost(layout, options);
}
