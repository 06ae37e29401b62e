import type { CPU } from "./cpu.ts";
import { decode } from "./decode.ts";
import { FAULT } from "./faults.ts";
import { LAZY_ADD } from "./flags.ts";
import { Insn } from "./insn.ts";
import { EVENT_EXCEPTION, serviceAttention, takeEvent } from "./interrupts.ts";
import { AF, ARITHMETIC_FLAGS, CF, CS, DS, ES, OF, PF, SF, SS, ZF } from "./registers.ts";
import { STOP_BUDGET } from "./stop.ts";
import { aluRegImm32, aluRegReg32, aluRegRm32, incDecReg32 } from "./arithmetic.ts";
import { jcc } from "./control.ts";
import { lea32, movMemReg32, movRegMem32, movRegReg32, movzxByte32, movzxByteMemory32 } from "./moves.ts";
import { shiftByImmediate32 } from "./shifts.ts";
import { Code, I32, I64, ModuleBuilder, type Signature } from "./wasm.ts";
import { translationSettings } from "./translation-settings.ts";
import { MACHINE_CACHE, MACHINE_CACHE_BITS, MACHINE_FLAGS, MACHINE_REGISTERS, MACHINE_TLB, MACHINE_WORDS, TLB_TABLE_BYTES } from "./memory.ts";

export { translationSettings, type TranslationMode } from "./translation-settings.ts";
/** Times a page's region is made again (with the code that ran since) before new entries get regions of their own. */
const MAX_BUILDS = 8;
/** Regions of single entries per page at most. */
const MAX_REGIONS_PER_PAGE = 64;
/** Writes that throw a page's translation away before the page is left to the interpreter for good. */
export const REWRITE_LIMIT = 16;
/** Instructions per region. */
const MAX_INSTRUCTIONS = 400;
/** Instructions per block: the longest a region runs without looking at the budget. */
const MAX_BLOCK = 64;
/** Translations kept before all are thrown away: regions, and bytes of WebAssembly. */
const MAX_REGIONS = 4096;
const MAX_CODE_BYTES = 32 << 20;

const K_ADD = 0, K_ADC = 1, K_SUB = 2, K_SBB = 3, K_LOGIC = 4, K_INC = 5, K_DEC = 6, K_RESULT = 7, K_EFLAGS = 8;

function kindOf(operation: number, size: number): number {
  return operation * 4 + (size === 1 ? 1 : size === 2 ? 2 : 3);
}

const EFLAGS_KIND = kindOf(K_EFLAGS, 4);

/** Writes a region's flags (kind and operands) into the CPU's lazy record. */
function flushFlags(cpu: CPU, kind: number, a: number, b: number, r: number, c: number): void {
  const bits = 4 << (kind & 3);
  switch (kind >> 2) {
    case K_ADD: case K_ADC: cpu.recordAdd(a, b, r, bits); break;
    case K_SUB: case K_SBB: cpu.recordSub(a, b, r, bits); break;
    case K_LOGIC: cpu.recordLogic(r, bits); break;
    case K_RESULT: cpu.recordResult(r, bits, c); break;
    case K_INC:
      cpu.flags = (cpu.flags & ~CF) | (c & CF);
      cpu.recordAdd(a, 1, r, bits, ARITHMETIC_FLAGS & ~CF);
      break;
    case K_DEC:
      cpu.flags = (cpu.flags & ~CF) | (c & CF);
      cpu.recordSub(a, 1, r, bits, ARITHMETIC_FLAGS & ~CF);
      break;
    default:
      cpu.flags = (cpu.flags & ~ARITHMETIC_FLAGS) | (c & ARITHMETIC_FLAGS);
      cpu.lazyFlags = 0;
  }
}

const sizeOfBits = (bits: number) => (bits === 8 ? 1 : bits === 16 ? 2 : 4);

/** The CPU's lazy record as a kind and its operands, in the words `w` (kind, a, b, r, c). */
function recordFlags(cpu: CPU, w: Int32Array, at: number): void {
  const lazy = cpu.lazyFlags;
  if (lazy === ARITHMETIC_FLAGS) {
    w[at] = kindOf(cpu.lazyOp === LAZY_ADD ? K_ADD : K_SUB, sizeOfBits(cpu.lazyBits));
    w[at + 1] = cpu.lazyA;
    w[at + 2] = cpu.lazyB;
    w[at + 3] = cpu.lazyResult;
  } else if (lazy === 0) {
    w[at] = EFLAGS_KIND;
    w[at + 4] = cpu.flags & ARITHMETIC_FLAGS;
  } else if (lazy === (ARITHMETIC_FLAGS & ~CF) && cpu.lazyB === 1) {
    w[at] = kindOf(cpu.lazyOp === LAZY_ADD ? K_INC : K_DEC, sizeOfBits(cpu.lazyBits));
    w[at + 1] = cpu.lazyA;
    w[at + 2] = 1;
    w[at + 3] = cpu.lazyResult;
    w[at + 4] = cpu.flags & CF;
  } else if (lazy === (ZF | SF | PF)) {
    w[at] = kindOf(K_RESULT, sizeOfBits(cpu.lazyBits));
    w[at + 3] = cpu.lazyResult;
    w[at + 4] = cpu.flags & (CF | OF | AF);
  } else {
    w[at] = EFLAGS_KIND;
    w[at + 4] = cpu.eflags() & ARITHMETIC_FLAGS;
  }
}

/** A region: block number, eip, count so far, budget, eax..edi, then the flags' kind and operands. */
const REGION: Signature = { params: new Array(17).fill(I32), results: [] };
/** dispatch and exit: the same without the block number. */
const ONWARD: Signature = { params: new Array(16).fill(I32), results: [] };
const FALLBACK: Signature = { params: [I32, I32, I32], results: [I32] };
const FLAG_FUNCTION: Signature = { params: [I32, I32, I32, I32, I32, I32], results: [I32] };

/** Parameters of a region (ONWARD's are one less). */
const P_BLOCK = 0, P_EIP = 1, P_COUNT = 2, P_ROOM = 3, P_REGS = 4, P_FLAGS = 12;
const FK = P_FLAGS, FA = P_FLAGS + 1, FB = P_FLAGS + 2, FR = P_FLAGS + 3, FC = P_FLAGS + 4;

/** The translator's words in the machine area (byte offsets from its start). */
const W_EIP = MACHINE_WORDS, W_COUNT = MACHINE_WORDS + 4, W_TLB_READ = MACHINE_WORDS + 8, W_TLB_WRITE = MACHINE_WORDS + 12;

const CACHE_SLOTS = 1 << MACHINE_CACHE_BITS;
const GOLDEN = 0x9e3779b1 | 0;

/** The cache slot of physical address `pa`. */
function cacheSlot(pa: number): number {
  return Math.imul(pa, GOLDEN) >>> (32 - MACHINE_CACHE_BITS);
}

interface Runtime {
  enter: (eip: number, room: number) => void;
  dispatch: WebAssembly.ExportValue;
  exit: WebAssembly.ExportValue;
  condition: WebAssembly.ExportValue;
  eflags: WebAssembly.ExportValue;
  table: WebAssembly.Table;
}

function buildRuntime(memory: WebAssembly.Memory, machine: number): Runtime {
  const m = new ModuleBuilder();
  m.importMemory("m", "memory");
  m.defineTable(256);
  const regionType = m.type(REGION);
  const exit = m.function(ONWARD);
  const dispatch = m.function(ONWARD);
  const enter = m.function({ params: [I32, I32], results: [] });
  const eflags = m.function({ params: [I32, I32, I32, I32, I32], results: [I32] });
  const condition = m.function(FLAG_FUNCTION);

  // exit: everything back into memory, for the JavaScript side to read.
  {
    const c = exit.code;
    for (let n = 0; n < 8; n++) c.i32(0).get(3 + n).store(machine + MACHINE_REGISTERS + 4 * n);
    for (let n = 0; n < 5; n++) c.i32(0).get(11 + n).store(machine + MACHINE_FLAGS + 4 * n);
    c.i32(0).get(0).store(machine + W_EIP);
    c.i32(0).get(1).store(machine + W_COUNT);
  }
  // dispatch: the region and block at eip, through the TLB and the entry cache; exit if none.
  {
    const c = dispatch.code;
    const entry = c.local(), pa = c.local(), slot = c.local(), value = c.local();
    const passOn = () => { for (let k = 0; k < 16; k++) c.get(k); };
    c.i32(0).load(machine + W_TLB_READ).get(0).i32(12).shrU().i32(2).shl().add().load().tee(entry);
    c.i32(-1).eq().if();
    passOn();
    c.returnCall(exit.index).end();
    c.get(0).get(entry).xor().tee(pa);
    c.i32(GOLDEN).mul().i32(32 - MACHINE_CACHE_BITS).shrU().i32(3).shl().tee(slot);
    c.load(machine + MACHINE_CACHE).get(pa).ne().if();
    passOn();
    c.returnCall(exit.index).end();
    c.get(slot).load(machine + MACHINE_CACHE + 4).set(value);
    c.get(value).i32(4095).and();
    passOn();
    c.get(value).i32(12).shrU().returnCallIndirect(regionType);
  }
  // enter: from JavaScript, with the registers and flags in memory.
  {
    const c = enter.code;
    c.get(0).i32(0).get(1);
    for (let n = 0; n < 8; n++) c.i32(0).load(machine + MACHINE_REGISTERS + 4 * n);
    for (let n = 0; n < 5; n++) c.i32(0).load(machine + MACHINE_FLAGS + 4 * n);
    c.call(dispatch.index);
  }
  // eflags: the arithmetic flags of any kind, as the interpreter's record would give them.
  {
    const c = eflags.code;
    const [kind, a, b, r, extra] = [0, 1, 2, 3, 4];
    const top = c.local(), carry = c.local(), overflow = c.local(), adjust = c.local();
    c.get(kind).i32(2).shrS().i32(K_EFLAGS).eq().if().get(extra).i32(ARITHMETIC_FLAGS).and().return().end();
    c.i32(4).get(kind).i32(3).and().shl().i32(1).sub().set(top);
    c.block("done").block("result").block("logic").block("sub").block("add");
    c.get(kind).i32(2).shrS();
    c.brTable(["add", "add", "sub", "sub", "logic", "add", "sub", "result"], "result");
    c.end(); // add, adc, inc
    c.get(a).get(b).and().get(a).get(b).or().get(r).i32(-1).xor().and().or().get(top).shrU().i32(1).and().set(carry);
    c.get(a).get(r).xor().get(b).get(r).xor().and().get(top).shrU().i32(1).and().set(overflow);
    c.get(a).get(b).xor().get(r).xor().i32(AF).and().set(adjust);
    c.br("done");
    c.end(); // sub, sbb, dec
    c.get(a).i32(-1).xor().get(b).and().get(a).i32(-1).xor().get(b).or().get(r).and().or().get(top).shrU().i32(1).and().set(carry);
    c.get(a).get(b).xor().get(a).get(r).xor().and().get(top).shrU().i32(1).and().set(overflow);
    c.get(a).get(b).xor().get(r).xor().i32(AF).and().set(adjust);
    c.br("done");
    c.end(); // logic
    c.br("done");
    c.end(); // result
    c.get(extra).i32(CF).and().set(carry);
    c.get(extra).i32(11).shrU().i32(1).and().set(overflow);
    c.get(extra).i32(AF).and().set(adjust);
    c.end();
    // inc and dec keep the carry they were given
    c.get(kind).i32(2).shrS().i32(K_INC).eq().get(kind).i32(2).shrS().i32(K_DEC).eq().or().if();
    c.get(extra).i32(CF).and().set(carry).end();
    c.get(carry).get(adjust).or().get(overflow).i32(11).shl().or();
    c.get(r).i32(31).get(top).sub().shl().eqz().i32(6).shl().or();
    c.get(r).get(top).shrU().i32(1).and().i32(7).shl().or();
    c.get(r).i32(0xff).and().popcnt().i32(1).and().i32(1).xor().i32(2).shl().or();
  }
  // condition: condition code `code` of any kind, from its flags.
  {
    const c = condition.code;
    const flags = c.local(), value = c.local();
    c.get(1).get(2).get(3).get(4).get(5).call(eflags.index).set(flags);
    c.block("done").block("le").block("l").block("p").block("s").block("be").block("e").block("b").block("o");
    c.get(0).i32(1).shrU().brTable(["o", "b", "e", "be", "s", "p", "l", "le"], "le");
    c.end().get(flags).i32(11).shrU().set(value).br("done");
    c.end().get(flags).set(value).br("done");
    c.end().get(flags).i32(6).shrU().set(value).br("done");
    c.end().get(flags).get(flags).i32(6).shrU().or().set(value).br("done");
    c.end().get(flags).i32(7).shrU().set(value).br("done");
    c.end().get(flags).i32(2).shrU().set(value).br("done");
    c.end().get(flags).i32(7).shrU().get(flags).i32(11).shrU().xor().set(value).br("done");
    c.end().get(flags).i32(7).shrU().get(flags).i32(11).shrU().xor().get(flags).i32(6).shrU().or().set(value);
    c.end();
    c.get(value).get(0).xor().i32(1).and();
  }
  m.exportFunction("enter", enter.index);
  m.exportFunction("dispatch", dispatch.index);
  m.exportFunction("exit", exit.index);
  m.exportFunction("eflags", eflags.index);
  m.exportFunction("condition", condition.index);
  m.exportTable("table");
  const instance = new WebAssembly.Instance(new WebAssembly.Module(m.encode()), { m: { memory } });
  const exports = instance.exports;
  return {
    enter: exports.enter as (eip: number, room: number) => void,
    dispatch: exports.dispatch,
    exit: exports.exit,
    condition: exports.condition,
    eflags: exports.eflags,
    table: exports.table as WebAssembly.Table,
  };
}

interface PageCode {
  insns: Map<number, Insn>;
  leaders: number[];
}

const FLOW_NEXT = 0, FLOW_JUMP = 1, FLOW_BRANCH = 2, FLOW_CALL = 3, FLOW_END = 4;

/**
 * The code of a page that the interpreter has run: every instruction its
 * decoded-instruction cache holds. A leader is where a block starts: an
 * entry, a jump target, the instruction after a branch or a call, either
 * side of an instruction that falls back, and any instruction that no
 * instruction which ran falls into (reached only by jumps from elsewhere).
 */
function discoverRan(ran: (Insn | undefined)[], entries: number[]): PageCode {
  const insns = new Map<number, Insn>();
  for (let offset = 0; offset < 4096; offset++) {
    const insn = ran[offset];
    if (insn !== undefined && offset + insn.length <= 4096) insns.set(offset, insn);
  }
  const leaders = new Set<number>(entries);
  const fallenInto = new Set<number>();
  for (const [offset, insn] of insns) {
    const next = offset + insn.length;
    const flow = flowOf(insn);
    if (flow === FLOW_JUMP || flow === FLOW_BRANCH || flow === FLOW_CALL) leaders.add(next + insn.imm);
    if (flow === FLOW_BRANCH || flow === FLOW_CALL) leaders.add(next);
    if (flow !== FLOW_JUMP && flow !== FLOW_END) fallenInto.add(next);
    if (!translatable(insn)) {
      leaders.add(offset);
      leaders.add(next);
    }
  }
  for (const offset of insns.keys()) if (!fallenInto.has(offset)) leaders.add(offset);
  return { insns, leaders: [...leaders].filter((leader) => insns.has(leader)).sort((a, b) => a - b) };
}

function discover(mem8: Uint8Array, pageBase: number, entries: number[], ran: (Insn | undefined)[] | undefined): PageCode {
  const insns = new Map<number, Insn>();
  const leaders = new Set<number>(entries);
  const work = [...entries];
  while (work.length > 0 && insns.size < MAX_INSTRUCTIONS) {
    let offset = work.shift()!;
    while (!insns.has(offset) && offset < 4096 && insns.size < MAX_INSTRUCTIONS && (ran === undefined || ran[offset] !== undefined)) {
      const insn = decodeInPage(mem8, pageBase, offset);
      if (insn === undefined) break;
      insns.set(offset, insn);
      const next = offset + insn.length;
      const flow = flowOf(insn);
      if (flow === FLOW_JUMP || flow === FLOW_BRANCH || flow === FLOW_CALL) {
        const target = next + insn.imm;
        if (target >= 0 && target < 4096 && !leaders.has(target)) {
          leaders.add(target);
          work.push(target);
        }
      }
      if (!translatable(insn)) {
        leaders.add(offset);
        leaders.add(next);
      }
      if (flow === FLOW_JUMP || flow === FLOW_END) break;
      if (flow === FLOW_BRANCH || flow === FLOW_CALL) leaders.add(next);
      offset = next;
    }
  }
  return { insns, leaders: [...leaders].filter((leader) => insns.has(leader)).sort((a, b) => a - b) };
}

const CROSSES = { crosses: true };

function decodeInPage(mem8: Uint8Array, pageBase: number, offset: number): Insn | undefined {
  try {
    return decode((k) => {
      if (offset + k >= 4096) throw CROSSES;
      return mem8[pageBase + offset + k];
    }, new Insn(unused), true);
  } catch (error) {
    if (error === CROSSES) return undefined;
    throw error;
  }
}

function unused(): never {
  throw new Error("a decoded instruction of a region was run as a handler");
}

function flowOf(insn: Insn): number {
  const opcode = insn.opcode;
  if (insn.size === 4 && !insn.lock) {
    if (opcode === 0xe9 || opcode === 0xeb) return FLOW_JUMP;
    if ((opcode >= 0x70 && opcode <= 0x7f) || (opcode >= 0x180 && opcode <= 0x18f)) return FLOW_BRANCH;
    if (opcode === 0xe8) return FLOW_CALL;
  }
  if (opcode === 0xc2 || opcode === 0xc3 || opcode === 0xca || opcode === 0xcb || opcode === 0xcf) return FLOW_END;
  if (opcode === 0xcc || opcode === 0xcd || opcode === 0xce || opcode === 0xf4 || opcode === 0xea) return FLOW_END;
  if (opcode === 0xe9 || opcode === 0xeb || opcode === 0x10b) return FLOW_END;
  if (opcode === 0xff && insn.entry !== undefined && (insn.modrm >> 3 & 7) >= 2 && (insn.modrm >> 3 & 7) <= 5) return FLOW_END;
  if (insn.entry === undefined) return FLOW_END;
  return FLOW_NEXT;
}

function usesMemory(insn: Insn): boolean {
  const opcode = insn.opcode;
  return insn.modrm >= 0 || (opcode >= 0xa0 && opcode <= 0xa3) || (opcode >= 0x50 && opcode <= 0x5f) ||
    opcode === 0x68 || opcode === 0x6a;
}

function translatable(insn: Insn): boolean {
  const entry = insn.entry;
  if (entry === undefined || insn.lock || insn.addr16) return false;
  if (insn.rm < 0 && usesMemory(insn) && insn.seg !== DS && insn.seg !== SS && insn.seg !== ES) return false;
  const size = insn.size;
  const opcode = insn.opcode;
  switch (entry.mnemonic) {
    case "add": case "or": case "adc": case "sbb": case "and": case "sub": case "xor": case "cmp": case "test":
      return true;
    case "mov":
      return opcode <= 0x8b || (opcode >= 0xa0 && opcode <= 0xa3) || (opcode >= 0xb0 && opcode <= 0xc7);
    case "inc": case "dec": case "not": case "neg":
      return true;
    case "lea":
      return size === 4 && insn.rm < 0;
    case "movzx": case "movsx":
      return true;
    case "push":
      return size === 4 && ((opcode >= 0x50 && opcode <= 0x57) || opcode === 0x68 || opcode === 0x6a);
    case "pop":
      return size === 4 && opcode >= 0x58 && opcode <= 0x5f;
    case "j":
      return size === 4;
    case "jmp":
      return size === 4 && (opcode === 0xe9 || opcode === 0xeb || (opcode === 0xff && (insn.modrm >> 3 & 7) === 4));
    case "call":
      return size === 4 && (opcode === 0xe8 || (opcode === 0xff && (insn.modrm >> 3 & 7) === 2));
    case "ret":
      return size === 4 && (opcode === 0xc3 || opcode === 0xc2);
    case "nop":
      return opcode === 0x90 && insn.rep === 0;
    case "cdq": case "cwd": case "cbw": case "cwde":
      return size === 4;
    case "imul":
      return size === 4 && (opcode === 0x69 || opcode === 0x6b || opcode === 0x1af || opcode === 0xf7);
    case "mul":
      return size === 4 && opcode === 0xf7;
    case "div": case "idiv":
      return size === 4 && opcode === 0xf7;
    case "shl": case "shr": case "sar": case "rol": case "ror":
      return true;
    case "bt": case "bts": case "btr": case "btc": case "shld": case "shrd": case "bsf": case "bsr": case "bswap":
      return size === 4;
    case "xchg":
      return size === 4 && (opcode >= 0x91 && opcode <= 0x97 || opcode === 0x87);
    default:
      if (opcode >= 0x190 && opcode <= 0x19f) return true; // setcc
      if (opcode >= 0x140 && opcode <= 0x14f) return size === 4; // cmovcc
      return false;
  }
}

/** Imports of a region module, by function index. */
const F_DISPATCH = 0, F_EXIT = 1, F_FALLBACK = 2, F_CONDITION = 3, F_EFLAGS = 4;

class Generator {
  readonly c: Code;
  readonly fallbacks: Insn[] = [];
  /** Each leader's block number. */
  readonly blockIndex = new Map<number, number>();
  /** What is known of the flags while a block is written: a kind, or -1 (only the run time knows). */
  kind = -1;
  /** The instruction being written: its page offset, index in its block, next offset. */
  offset = 0;
  index = 0;
  next = 0;
  // The region's locals: the page's linear base, the page offset being run,
  // the count at which to stop, the TLB tables for reads and writes; an
  // instruction's destination (x), source (y) and result (z); a memory
  // access's linear address, TLB entry and physical address; two spare
  // values, and a 64-bit one for multiplication and division.
  readonly base: number;
  readonly pc: number;
  readonly stop: number;
  readonly tlbRead: number;
  readonly tlbWrite: number;
  readonly x: number;
  readonly y: number;
  readonly z: number;
  readonly linear: number;
  readonly entry: number;
  readonly physical: number;
  readonly scratch: number;
  readonly spare: number;
  readonly wide: number;

  constructor(code: Code, readonly machine: number) {
    this.c = code;
    this.base = code.local();
    this.pc = code.local();
    this.stop = code.local();
    this.tlbRead = code.local();
    this.tlbWrite = code.local();
    this.x = code.local();
    this.y = code.local();
    this.z = code.local();
    this.linear = code.local();
    this.entry = code.local();
    this.physical = code.local();
    this.scratch = code.local();
    this.spare = code.local();
    this.wide = code.local(I64);
  }

  /** Pushes register n at a size (bytes and words zero-extended). */
  reg(n: number, size: number): void {
    const c = this.c;
    if (size === 4) c.get(P_REGS + n);
    else if (size === 2) c.get(P_REGS + n).i32(0xffff).and();
    else if (n < 4) c.get(P_REGS + n).i32(0xff).and();
    else c.get(P_REGS + n - 4).i32(8).shrU().i32(0xff).and();
  }

  /** Sets register n at a size to the value `value` pushes. */
  setReg(n: number, size: number, value: () => void): void {
    const c = this.c;
    if (size === 4) {
      value();
      c.set(P_REGS + n);
    } else if (size === 2) {
      c.get(P_REGS + n).i32(-65536).and();
      value();
      c.i32(0xffff).and().or().set(P_REGS + n);
    } else if (n < 4) {
      c.get(P_REGS + n).i32(-256).and();
      value();
      c.i32(0xff).and().or().set(P_REGS + n);
    } else {
      c.get(P_REGS + n - 4).i32(-65281).and();
      value();
      c.i32(0xff).and().i32(8).shl().or().set(P_REGS + n - 4);
    }
  }

  /** Pushes the linear address of the memory operand (flat segments: its offset). */
  address(insn: Insn): void {
    const c = this.c;
    let terms = 0;
    if (insn.base >= 0) {
      c.get(P_REGS + insn.base);
      terms++;
    }
    if (insn.index >= 0) {
      c.get(P_REGS + insn.index);
      if (insn.scale) c.i32(insn.scale).shl();
      if (terms++ > 0) c.add();
    }
    if (terms === 0) c.i32(insn.disp | 0);
    else if (insn.disp !== 0) c.i32(insn.disp | 0).add();
  }

  /** Leaves the region before the instruction being written (to be used inside an `if`). */
  exit(): void {
    const c = this.c;
    c.i32(this.offset).set(this.pc);
    if (this.index > 0) c.get(P_COUNT).i32(this.index).add().set(P_COUNT);
    c.br("out");
  }

  /** Pushes the arguments of dispatch and exit after the eip, which `eip` pushes. */
  onward(eip: () => void): void {
    const c = this.c;
    eip();
    c.get(P_COUNT).get(P_ROOM);
    for (let n = 0; n < 8; n++) c.get(P_REGS + n);
    for (let n = 0; n < 5; n++) c.get(P_FLAGS + n);
  }

  /** Goes to page offset `target` (the count already brought up to date). */
  goto(target: number): void {
    const c = this.c;
    const block = this.blockIndex.get(target);
    if (block !== undefined) {
      c.i32(target).set(this.pc).i32(block).set(P_BLOCK).br("loop");
    } else {
      this.onward(() => c.get(this.base).i32(target).add());
      c.returnCall(F_DISPATCH);
    }
  }

  /** Goes to the linear address in local `t`. */
  gotoAddress(t: number): void {
    this.onward(() => this.c.get(t));
    this.c.returnCall(F_DISPATCH);
  }

  /** Looks `size` bytes at the address in local a up in `table`, leaves if that fails, sets local p. */
  lookup(table: number, size: number): void {
    const c = this.c;
    c.get(this.linear).i32(12).shrU().i32(2).shl().get(table).add().load().tee(this.entry).i32(-1).eq();
    if (size > 1) c.get(this.linear).i32(0xfff).and().i32(4096 - size).gtU().or();
    c.if();
    this.exit();
    c.end();
    c.get(this.linear).get(this.entry).xor().set(this.physical);
  }

  /** Pushes `size` bytes read at the physical address in local p. */
  loadP(size: number): void {
    const c = this.c;
    c.get(this.physical);
    if (size === 4) c.load();
    else if (size === 2) c.load16();
    else c.load8();
  }

  /** Stores the value `value` pushes at the physical address in local p. */
  storeP(size: number, value: () => void): void {
    const c = this.c;
    c.get(this.physical);
    value();
    if (size === 4) c.store();
    else if (size === 2) c.store16();
    else c.store8();
  }

  /** Reads `size` bytes at the address `address` pushes into local `into`. */
  read(size: number, address: () => void, into: number): void {
    address();
    this.c.set(this.linear);
    this.lookup(this.tlbRead, size);
    this.loadP(size);
    this.c.set(into);
  }

  /** Reads the E operand into local `into`. */
  readE(insn: Insn, size: number, into: number): void {
    if (insn.rm >= 0) {
      this.reg(insn.rm, size);
      this.c.set(into);
    } else {
      this.read(size, () => this.address(insn), into);
    }
  }

  /** Prepares a write of the memory E operand: looks it up, leaving if it must. */
  prepareWrite(insn: Insn, size: number): void {
    this.address(insn);
    this.c.set(this.linear);
    this.lookup(this.tlbWrite, size);
  }

  /** Writes the E operand: a register, or memory prepared by prepareWrite. */
  writeE(insn: Insn, size: number, value: () => void): void {
    if (insn.rm >= 0) this.setReg(insn.rm, size, value);
    else this.storeP(size, value);
  }

  setFlags(kind: number, a: () => void, b: () => void, r: () => void, extra?: () => void): void {
    const c = this.c;
    c.i32(kind).set(FK);
    a();
    c.set(FA);
    b();
    c.set(FB);
    r();
    c.set(FR);
    if (extra) {
      extra();
      c.set(FC);
    }
    this.kind = kind;
  }

  /** Pushes condition `code` (0 or 1, or any non-zero for true). */
  condition(code: number): void {
    if (this.kind > 0 && this.knownCondition(this.kind, code)) return;
    const c = this.c;
    c.i32(code);
    for (let n = 0; n < 5; n++) c.get(P_FLAGS + n);
    c.call(F_CONDITION);
  }

  /** Pushes the arithmetic flags (all of them, as EFLAGS bits). */
  eflags(): void {
    const c = this.c;
    if (this.kind === EFLAGS_KIND) {
      c.get(FC).i32(ARITHMETIC_FLAGS).and();
      return;
    }
    for (let n = 0; n < 5; n++) c.get(P_FLAGS + n);
    c.call(F_EFLAGS);
  }

  /** Pushes CF as 0 or 1. */
  carry(): void {
    const c = this.c;
    const operation = this.kind >> 2;
    if (this.kind > 0 && operation !== K_ADC && operation !== K_SBB) {
      this.knownCondition(this.kind, 2);
      if (operation === K_SUB || operation === K_ADD) return; // comparisons give 0 or 1
      c.i32(0).ne();
      return;
    }
    this.eflags();
    c.i32(CF).and();
  }

  /** Pushes the sign bit of fR at a size, as 0 or 1. */
  private sign(size: number): void {
    this.c.get(FR).i32(size * 8 - 1).shrU().i32(1).and();
  }

  /** Sign-extends the value on the stack from a size. */
  private extend(size: number): void {
    if (size === 1) this.c.extend8();
    else if (size === 2) this.c.extend16();
  }

  /** Condition `code` for a kind known here, pushed; false if there is no short way. */
  knownCondition(kind: number, code: number): boolean {
    const c = this.c;
    const operation = kind >> 2;
    const size = (kind & 3) === 1 ? 1 : (kind & 3) === 2 ? 2 : 4;
    const top = size * 8 - 1;
    const test = code >> 1;
    const negate = (code & 1) === 1;
    const finish = () => {
      if (negate) c.eqz();
    };
    if (operation === K_ADC || operation === K_SBB) return false;
    if (test === 2) { // zero
      c.get(FR).eqz();
      finish();
      return true;
    }
    if (test === 4) { // sign
      this.sign(size);
      finish();
      return true;
    }
    if (test === 5) { // parity
      c.get(FR).i32(0xff).and().popcnt().i32(1).and().eqz();
      finish();
      return true;
    }
    if (operation === K_SUB) {
      switch (test) {
        case 0: c.get(FA).get(FB).xor().get(FA).get(FR).xor().and().i32(top).shrU().i32(1).and(); break;
        case 1: c.get(FA).get(FB).ltU(); break;
        case 3: c.get(FA).get(FB).leU(); break;
        case 6: c.get(FA); this.extend(size); c.get(FB); this.extend(size); c.ltS(); break;
        default: c.get(FA); this.extend(size); c.get(FB); this.extend(size); c.leS(); break;
      }
      finish();
      return true;
    }
    const carry = () => {
      switch (operation) {
        case K_ADD: c.get(FR).get(FA).ltU(); break;
        case K_LOGIC: c.i32(0); break;
        case K_INC: case K_DEC: case K_RESULT: case K_EFLAGS: c.get(FC).i32(1).and(); break;
      }
    };
    const overflow = () => {
      switch (operation) {
        case K_ADD: c.get(FA).get(FR).xor().get(FB).get(FR).xor().and().i32(top).shrU().i32(1).and(); break;
        case K_LOGIC: c.i32(0); break;
        case K_INC: c.get(FR).i32(size === 4 ? -0x80000000 : 1 << top).eq(); break;
        case K_DEC: c.get(FR).i32(size === 4 ? 0x7fffffff : (1 << top) - 1).eq(); break;
        default: c.get(FC).i32(11).shrU().i32(1).and(); break;
      }
    };
    const zero = () => {
      if (operation === K_EFLAGS) c.get(FC).i32(6).shrU().i32(1).and();
      else c.get(FR).eqz();
    };
    const signBit = () => {
      if (operation === K_EFLAGS) c.get(FC).i32(7).shrU().i32(1).and();
      else this.sign(size);
    };
    if (operation === K_EFLAGS && (test === 2 || test === 4 || test === 5)) return false;
    switch (test) {
      case 0: overflow(); break;
      case 1: carry(); break;
      case 3: carry(); zero(); c.or(); break;
      case 6: signBit(); overflow(); c.xor(); break;
      default: signBit(); overflow(); c.xor(); zero(); c.or(); break;
    }
    finish();
    return true;
  }

  /**
   * The instruction is run by its handler, called through the import
   * `fallback` with the registers and flags in memory; it answers 0 to go on
   * with the next instruction, 1 to go on wherever eip now is, 2 to leave.
   */
  fallback(insn: Insn): void {
    const c = this.c;
    const m = this.machine;
    const k = this.fallbacks.length;
    this.fallbacks.push(insn);
    for (let n = 0; n < 8; n++) c.i32(0).get(P_REGS + n).store(m + MACHINE_REGISTERS + 4 * n);
    for (let n = 0; n < 5; n++) c.i32(0).get(P_FLAGS + n).store(m + MACHINE_FLAGS + 4 * n);
    c.i32(k).get(this.base).i32(this.offset).add().get(P_COUNT).call(F_FALLBACK).set(this.scratch);
    for (let n = 0; n < 8; n++) c.i32(0).load(m + MACHINE_REGISTERS + 4 * n).set(P_REGS + n);
    for (let n = 0; n < 5; n++) c.i32(0).load(m + MACHINE_FLAGS + 4 * n).set(P_FLAGS + n);
    c.get(P_COUNT).i32(1).add().set(P_COUNT);
    c.get(this.scratch).if();
    c.get(this.scratch).i32(1).eq().if();
    this.onward(() => c.i32(0).load(m + W_EIP));
    c.returnCall(F_DISPATCH).else();
    this.onward(() => c.i32(0).load(m + W_EIP));
    c.returnCall(F_EXIT).end();
    c.end();
    this.goto(this.next);
  }

  /** Writes one instruction; returns true if it transferred control (and ended the block). */
  instruction(insn: Insn): boolean {
    const c = this.c;
    const opcode = insn.opcode;
    const size = insn.size;
    const mnemonic = insn.entry!.mnemonic;
    const operands = insn.entry!.operands;
    const { x, y, z } = this;
    const get = (local: number) => () => c.get(local);
    const immediate = size === 4 ? insn.imm | 0 : insn.imm & (size === 1 ? 0xff : 0xffff);
    switch (mnemonic) {
      case "add": case "or": case "adc": case "sbb": case "and": case "sub": case "xor": case "cmp": case "test": {
        const operation = mnemonic === "test" ? 4 : insn.op;
        const fromImmediate = operands[1]?.[0] === "I";
        const accumulator = operands[0] === "AL" || operands[0] === "eAX";
        const intoRegister = operands[0][0] === "G" || accumulator;
        const writes = operation !== 7 && mnemonic !== "test";
        // x: destination value, y: source value
        if (intoRegister) {
          const destination = accumulator ? 0 : insn.reg;
          if (fromImmediate) c.i32(immediate).set(y);
          else this.readE(insn, size, y);
          this.reg(destination, size);
          c.set(x);
        } else {
          if (fromImmediate) c.i32(immediate).set(y);
          else { this.reg(insn.reg, size); c.set(y); }
          if (insn.rm >= 0) {
            this.reg(insn.rm, size);
            c.set(x);
          } else if (writes) {
            this.prepareWrite(insn, size);
            this.loadP(size);
            c.set(x);
          } else {
            this.readE(insn, size, x);
          }
        }
        if (operation === 2 || operation === 3) {
          this.carry();
          c.set(this.scratch);
        }
        let kind: number;
        c.get(x).get(y);
        switch (operation) {
          case 0: c.add(); kind = K_ADD; break;
          case 1: c.or(); kind = K_LOGIC; break;
          case 2: c.add().get(this.scratch).add(); kind = K_ADC; break;
          case 3: c.sub().get(this.scratch).sub(); kind = K_SBB; break;
          case 4: c.and(); kind = K_LOGIC; break;
          case 6: c.xor(); kind = K_LOGIC; break;
          default: c.sub(); kind = K_SUB; break;
        }
        if (size < 4) c.i32(size === 1 ? 0xff : 0xffff).and();
        c.set(z);
        if (writes) {
          if (intoRegister) this.setReg(accumulator ? 0 : insn.reg, size, get(z));
          else this.writeE(insn, size, get(z));
        }
        if (kind === K_LOGIC) this.setFlags(kindOf(kind, size), get(z), () => c.i32(0), get(z));
        else this.setFlags(kindOf(kind, size), get(x), get(y), get(z));
        break;
      }
      case "inc": case "dec": {
        const n = operands[0][0] === "Z" ? insn.reg : insn.rm;
        if (n >= 0) {
          this.reg(n, size);
          c.set(x);
        } else {
          this.prepareWrite(insn, size);
          this.loadP(size);
          c.set(x);
        }
        this.carry();
        c.set(this.scratch);
        c.get(x).i32(1);
        if (mnemonic === "inc") c.add();
        else c.sub();
        if (size < 4) c.i32(size === 1 ? 0xff : 0xffff).and();
        c.set(z);
        if (n >= 0) this.setReg(n, size, get(z));
        else this.storeP(size, get(z));
        this.setFlags(kindOf(mnemonic === "inc" ? K_INC : K_DEC, size), get(x), () => c.i32(1), get(z), get(this.scratch));
        break;
      }
      case "not": case "neg": {
        if (insn.rm >= 0) {
          this.reg(insn.rm, size);
          c.set(x);
        } else {
          this.prepareWrite(insn, size);
          this.loadP(size);
          c.set(x);
        }
        if (mnemonic === "not") c.get(x).i32(-1).xor();
        else c.i32(0).get(x).sub();
        if (size < 4) c.i32(size === 1 ? 0xff : 0xffff).and();
        c.set(z);
        this.writeE(insn, size, get(z));
        if (mnemonic === "neg") this.setFlags(kindOf(K_SUB, size), () => c.i32(0), get(x), get(z));
        break;
      }
      case "shl": case "shr": case "sar": case "rol": case "ror": {
        const byCl = opcode === 0xd2 || opcode === 0xd3;
        const fixed = opcode === 0xd0 || opcode === 0xd1 ? 1 : insn.imm & 31;
        const bits = size * 8;
        const valueMask = size === 4 ? -1 : (1 << bits) - 1;
        if (insn.rm >= 0) {
          this.reg(insn.rm, size);
          c.set(x);
        } else {
          this.prepareWrite(insn, size);
          this.loadP(size);
          c.set(x);
        }
        if (!byCl && fixed === 0) break; // no change and no flags (the operand was still read)
        const count = this.scratch;
        if (byCl) c.get(P_REGS + 1).i32(31).and().tee(count).if();
        else c.i32(fixed).set(count);
        const top = () => c.i32(bits - 1);
        // z: the result; y: CF, OF (and AF for the shifts) as EFLAGS bits
        switch (mnemonic) {
          case "shl":
            c.get(x).get(count).shl().i32(valueMask).and().set(z);
            c.get(x).get(count).i32(1).sub().shl(); top(); c.shrU().i32(1).and().set(y);
            c.get(y).get(z); top(); c.shrU().get(y).xor().i32(11).shl().or().i32(AF).or().set(y);
            break;
          case "shr":
            c.get(x).get(count).shrU().set(z);
            c.get(x).get(count).i32(1).sub().shrU().i32(1).and();
            c.get(z); top(); c.shrU().get(z).i32(bits - 2).shrU().xor().i32(1).and().i32(11).shl().or().i32(AF).or().set(y);
            break;
          case "sar":
            c.get(x);
            this.extend(size);
            c.set(x);
            c.get(x).get(count).shrS().i32(valueMask).and().set(z);
            c.get(x).get(count).i32(1).sub().shrS().i32(1).and().i32(AF).or().set(y);
            break;
          case "rol":
          case "ror": {
            const left = mnemonic === "rol";
            if (size === 4) {
              c.get(x).get(count);
              if (left) c.rotl(); else c.rotr();
              c.set(z);
            } else {
              // r = count mod bits; a rotation by 0 leaves the value (and still sets the flags)
              c.get(count).i32(bits - 1).and().set(this.spare);
              c.get(x).get(this.spare);
              if (left) c.shl(); else c.shrU();
              c.get(x).i32(bits).get(this.spare).sub();
              if (left) c.shrU(); else c.shl();
              c.or().i32(valueMask).and().set(z);
            }
            if (left) {
              c.get(z).i32(1).and();
              c.get(z); top(); c.shrU().get(z).xor().i32(1).and().i32(11).shl().or().set(y);
            } else {
              c.get(z); top(); c.shrU().i32(1).and();
              c.get(z); top(); c.shrU().get(z).i32(bits - 2).shrU().xor().i32(1).and().i32(11).shl().or().set(y);
            }
            break;
          }
        }
        this.writeE(insn, size, get(z));
        if (mnemonic === "rol" || mnemonic === "ror") {
          // CF and OF change; the other flags stay as they were
          this.eflags();
          c.i32(~(CF | OF)).and().get(y).or().set(FC);
          c.i32(EFLAGS_KIND).set(FK);
        } else {
          this.setFlags(kindOf(K_RESULT, size), () => c.i32(0), () => c.i32(0), get(z), get(y));
        }
        if (byCl) {
          c.end();
          this.kind = -1; // a count of 0 leaves the flags as they were
        } else {
          this.kind = mnemonic === "rol" || mnemonic === "ror" ? EFLAGS_KIND : kindOf(K_RESULT, size);
        }
        break;
      }
      case "shld": case "shrd": {
        const byCl = opcode === 0x1a5 || opcode === 0x1ad;
        const left = mnemonic === "shld";
        if (insn.rm >= 0) {
          c.get(P_REGS + insn.rm).set(x);
        } else {
          this.prepareWrite(insn, 4);
          this.loadP(4);
          c.set(x);
        }
        const count = this.scratch;
        if (byCl) c.get(P_REGS + 1).i32(31).and().tee(count).if();
        else {
          if ((insn.imm & 31) === 0) break;
          c.i32(insn.imm & 31).set(count);
        }
        const b = P_REGS + insn.reg;
        if (left) {
          c.get(x).get(count).shl().get(b).i32(32).get(count).sub().shrU().or().set(z);
          c.get(x).i32(32).get(count).sub().shrU().i32(1).and().set(y);
          c.get(y).get(z).i32(31).shrU().get(y).xor().i32(11).shl().or().i32(AF).or().set(y);
        } else {
          c.get(x).get(count).shrU().get(b).i32(32).get(count).sub().shl().or().set(z);
          c.get(x).get(count).i32(1).sub().shrU().i32(1).and();
          c.get(z).i32(31).shrU().get(z).i32(30).shrU().xor().i32(1).and().i32(11).shl().or().i32(AF).or().set(y);
        }
        this.writeE(insn, 4, get(z));
        this.setFlags(kindOf(K_RESULT, 4), () => c.i32(0), () => c.i32(0), get(z), get(y));
        if (byCl) {
          c.end();
          this.kind = -1;
        }
        break;
      }
      case "bt": case "bts": case "btr": case "btc": {
        // x: the word, t: the bit number
        const fromRegister = opcode !== 0x1ba;
        const writes = mnemonic !== "bt";
        if (fromRegister) c.get(P_REGS + insn.reg).i32(31).and().set(this.scratch);
        else c.i32(insn.imm & 31).set(this.scratch);
        if (insn.rm >= 0) {
          c.get(P_REGS + insn.rm).set(x);
        } else {
          this.address(insn);
          if (fromRegister) c.get(P_REGS + insn.reg).i32(5).shrS().i32(2).shl().add();
          c.set(this.linear);
          this.lookup(writes ? this.tlbWrite : this.tlbRead, 4);
          this.loadP(4);
          c.set(x);
        }
        if (writes) {
          const changed = () => {
            if (mnemonic === "bts") c.get(x).i32(1).get(this.scratch).shl().or();
            else if (mnemonic === "btr") c.get(x).i32(1).get(this.scratch).shl().i32(-1).xor().and();
            else c.get(x).i32(1).get(this.scratch).shl().xor();
          };
          if (insn.rm >= 0) this.setReg(insn.rm, 4, changed);
          else this.storeP(4, changed);
        }
        // CF is the bit; the other flags stay as they were
        this.eflags();
        c.i32(~CF).and().get(x).get(this.scratch).shrU().i32(1).and().or().set(FC);
        c.i32(EFLAGS_KIND).set(FK);
        this.kind = EFLAGS_KIND;
        break;
      }
      case "bsf": case "bsr": {
        this.readE(insn, 4, y);
        c.get(y).eqz().if();
        c.i32(ZF | PF).set(FC);
        c.else();
        if (mnemonic === "bsf") c.get(y).ctz();
        else c.i32(31).get(y).clz().sub();
        c.tee(z).set(P_REGS + insn.reg);
        c.get(z).popcnt().i32(1).and().i32(1).xor().i32(2).shl().set(FC);
        c.end();
        c.i32(EFLAGS_KIND).set(FK);
        this.kind = EFLAGS_KIND;
        break;
      }
      case "bswap": {
        const n = P_REGS + (opcode & 7);
        c.get(n).i32(0xff00ff00 | 0).and().i32(8).shrU().get(n).i32(0x00ff00ff).and().i32(8).shl().or().i32(16).rotl().set(n);
        break;
      }
      case "imul": case "mul": {
        // x * y into z (low) and y (high); t: overflowed
        if (opcode === 0x1af) {
          this.readE(insn, 4, y);
          c.get(P_REGS + insn.reg).set(x);
        } else if (opcode === 0xf7) {
          this.readE(insn, 4, y);
          c.get(P_REGS + 0).set(x);
        } else {
          this.readE(insn, 4, x);
          c.i32(insn.imm | 0).set(y);
        }
        const signed = mnemonic === "imul";
        c.get(x);
        if (signed) c.i64ExtendS(); else c.i64ExtendU();
        c.get(y);
        if (signed) c.i64ExtendS(); else c.i64ExtendU();
        c.i64Mul().set(this.wide);
        c.get(this.wide).i64Wrap().set(z);
        c.get(this.wide).i64(32n).i64ShrU().i64Wrap().set(y);
        if (signed) c.get(y).get(z).i32(31).shrS().ne().set(this.scratch);
        else c.get(y).i32(0).ne().set(this.scratch);
        if (opcode === 0xf7) {
          c.get(z).set(P_REGS + 0);
          c.get(y).set(P_REGS + 2);
        } else {
          c.get(z).set(P_REGS + insn.reg);
        }
        this.eflags();
        c.i32(~(CF | OF)).and().i32(0).i32(CF | OF).get(this.scratch).select().or().set(FC);
        c.i32(EFLAGS_KIND).set(FK);
        this.kind = EFLAGS_KIND;
        break;
      }
      case "div": case "idiv": {
        // edx:eax / y; leaves for the interpreter (which raises #DE) on a zero divisor or a quotient too big
        this.readE(insn, 4, y);
        const signed = mnemonic === "idiv";
        c.get(P_REGS + 2).i64ExtendU().i64(32n).i64Shl().get(P_REGS + 0).i64ExtendU().i64Or().set(this.wide);
        c.get(y).eqz();
        if (signed) {
          // the quotient of -2^63 / -1 does not fit either; its check below would trap in WebAssembly
          c.get(y).i32(-1).eq().get(this.wide).i64(-(1n << 63n)).i64Eq().and().or();
        }
        c.if();
        this.exit();
        c.end();
        c.get(this.wide).get(y);
        if (signed) c.i64ExtendS().i64DivS(); else c.i64ExtendU().i64DivU();
        c.set(this.wide);
        // the quotient must fit in 32 bits (signed or unsigned)
        c.get(this.wide);
        if (signed) c.i64Wrap().i64ExtendS(); else c.i64Wrap().i64ExtendU();
        c.get(this.wide).i64Ne().if();
        this.exit();
        c.end();
        c.get(this.wide).i64Wrap().set(z);
        // the remainder
        c.get(P_REGS + 2).i64ExtendU().i64(32n).i64Shl().get(P_REGS + 0).i64ExtendU().i64Or().get(y);
        if (signed) c.i64ExtendS().i64RemS(); else c.i64ExtendU().i64RemU();
        c.i64Wrap().set(P_REGS + 2);
        c.get(z).set(P_REGS + 0);
        break;
      }
      case "mov": {
        const first = operands[0], second = operands[1];
        if (first[0] === "Z") {
          this.setReg(insn.reg, size, () => c.i32(immediate));
        } else if (second[0] === "I") {
          if (insn.rm < 0) this.prepareWrite(insn, size);
          this.writeE(insn, size, () => c.i32(immediate));
        } else if (first === "AL" || first === "eAX") {
          this.readE(insn, size, y);
          this.setReg(0, size, get(y));
        } else if (second === "AL" || second === "eAX") {
          if (insn.rm < 0) this.prepareWrite(insn, size);
          this.writeE(insn, size, () => this.reg(0, size));
        } else if (first[0] === "G") {
          this.readE(insn, size, y);
          this.setReg(insn.reg, size, get(y));
        } else {
          if (insn.rm < 0) this.prepareWrite(insn, size);
          this.writeE(insn, size, () => this.reg(insn.reg, size));
        }
        break;
      }
      case "lea":
        this.setReg(insn.reg, 4, () => this.address(insn));
        break;
      case "movzx": case "movsx": {
        const from = opcode & 1 ? 2 : 1;
        this.readE(insn, from, y);
        this.setReg(insn.reg, size, () => {
          c.get(y);
          if (mnemonic === "movsx") this.extend(from);
        });
        break;
      }
      case "xchg": {
        if (opcode === 0x87) {
          if (insn.rm >= 0) {
            c.get(P_REGS + insn.rm).set(y);
            c.get(P_REGS + insn.reg).set(P_REGS + insn.rm);
            c.get(y).set(P_REGS + insn.reg);
          } else {
            this.prepareWrite(insn, 4);
            this.loadP(4);
            c.set(y);
            this.storeP(4, () => c.get(P_REGS + insn.reg));
            c.get(y).set(P_REGS + insn.reg);
          }
        } else {
          c.get(P_REGS + insn.reg).set(y);
          c.get(P_REGS + 0).set(P_REGS + insn.reg);
          c.get(y).set(P_REGS + 0);
        }
        break;
      }
      case "nop":
        break;
      case "cbw": case "cwde":
        c.get(P_REGS + 0).extend16().set(P_REGS + 0);
        break;
      case "cwd": case "cdq":
        c.get(P_REGS + 0).i32(31).shrS().set(P_REGS + 2);
        break;
      case "j": {
        c.get(P_COUNT).i32(this.index + 1).add().set(P_COUNT);
        this.condition(insn.op);
        c.if();
        this.goto(this.next + insn.imm);
        c.end();
        this.goto(this.next);
        return true;
      }
      case "jmp":
        if (opcode === 0xff) {
          this.readE(insn, 4, this.scratch);
          c.get(P_COUNT).i32(this.index + 1).add().set(P_COUNT);
          this.gotoAddress(this.scratch);
        } else {
          c.get(P_COUNT).i32(this.index + 1).add().set(P_COUNT);
          this.goto(this.next + insn.imm);
        }
        return true;
      case "call": {
        if (opcode === 0xff) this.readE(insn, 4, this.scratch);
        c.get(P_REGS + 4).i32(4).sub().tee(this.spare).set(this.linear);
        this.lookup(this.tlbWrite, 4);
        this.storeP(4, () => c.get(this.base).i32(this.next).add());
        c.get(this.spare).set(P_REGS + 4);
        c.get(P_COUNT).i32(this.index + 1).add().set(P_COUNT);
        if (opcode === 0xff) this.gotoAddress(this.scratch);
        else this.goto(this.next + insn.imm);
        return true;
      }
      case "ret": {
        c.get(P_REGS + 4).set(this.linear);
        this.lookup(this.tlbRead, 4);
        this.loadP(4);
        c.set(this.scratch);
        c.get(P_REGS + 4).i32(4 + (opcode === 0xc2 ? insn.imm & 0xffff : 0)).add().set(P_REGS + 4);
        c.get(P_COUNT).i32(this.index + 1).add().set(P_COUNT);
        this.gotoAddress(this.scratch);
        return true;
      }
      case "push": {
        if (opcode === 0x68 || opcode === 0x6a) c.i32(insn.imm | 0).set(y);
        else c.get(P_REGS + insn.reg).set(y);
        c.get(P_REGS + 4).i32(4).sub().tee(this.spare).set(this.linear);
        this.lookup(this.tlbWrite, 4);
        this.storeP(4, get(y));
        c.get(this.spare).set(P_REGS + 4);
        break;
      }
      case "pop":
        c.get(P_REGS + 4).set(this.linear);
        this.lookup(this.tlbRead, 4);
        this.loadP(4);
        c.set(y);
        c.get(P_REGS + 4).i32(4).add().set(P_REGS + 4);
        c.get(y).set(P_REGS + insn.reg);
        break;
      default:
        if (opcode >= 0x190 && opcode <= 0x19f) { // setcc
          if (insn.rm < 0) this.prepareWrite(insn, 1);
          this.writeE(insn, 1, () => {
            this.condition(opcode & 15);
            c.i32(0).ne();
          });
        } else { // cmovcc
          this.readE(insn, 4, y);
          this.condition(opcode & 15);
          c.if().get(y).set(P_REGS + insn.reg).end();
        }
        break;
    }
    return false;
  }
}

/** The module of one region: its code and what its imports need. */
function generate(code: PageCode, machine: number, forced: boolean): { bytes: Uint8Array<ArrayBuffer>; fallbacks: Insn[]; blockIndex: Map<number, number> } {
  const m = new ModuleBuilder();
  m.importFunction("r", "dispatch", ONWARD);
  m.importFunction("r", "exit", ONWARD);
  m.importFunction("r", "fallback", FALLBACK);
  m.importFunction("r", "condition", FLAG_FUNCTION);
  m.importFunction("r", "eflags", { params: [I32, I32, I32, I32, I32], results: [I32] });
  m.importMemory("m", "memory");
  const region = m.function(REGION);
  const g = new Generator(region.code, machine);
  const c = g.c;
  // The blocks: from each leader along fall-through to the next leader, an
  // instruction that ends a block, or MAX_BLOCK instructions (a cut, whose
  // next instruction becomes a leader too).
  const leaders = new Set(code.leaders);
  const blocks = new Map<number, number[]>();
  const work = [...code.leaders];
  while (work.length > 0) {
    const leader = work.pop()!;
    if (blocks.has(leader)) continue;
    const block: number[] = [];
    for (let at = leader; ; ) {
      const insn = code.insns.get(at);
      if (insn === undefined) break;
      if (block.length > 0 && (leaders.has(at) || !translatable(insn))) break; // a fallback is a block of its own
      if (block.length >= MAX_BLOCK) {
        leaders.add(at);
        work.push(at);
        break;
      }
      block.push(at);
      if (flowOf(insn) !== FLOW_NEXT || !translatable(insn)) break;
      at += insn.length;
    }
    blocks.set(leader, block);
  }
  const ordered = [...leaders].sort((a, b) => a - b);
  ordered.forEach((leader, k) => g.blockIndex.set(leader, k));
  c.get(P_EIP).i32(-4096).and().set(g.base);
  c.get(P_EIP).i32(4095).and().set(g.pc);
  c.get(P_ROOM).i32(forced ? 1 : MAX_BLOCK).sub().set(g.stop);
  c.i32(0).load(machine + W_TLB_READ).set(g.tlbRead);
  c.i32(0).load(machine + W_TLB_WRITE).set(g.tlbWrite);
  c.block("out");
  c.loop("loop");
  c.get(P_COUNT).get(g.stop).gtS().brIf("out");
  const blockLabels = ordered.map((_, k) => `b${k}`);
  for (let k = blockLabels.length - 1; k >= 0; k--) c.block(blockLabels[k]);
  c.get(P_BLOCK).brTable(blockLabels, "out");
  for (const leader of ordered) {
    c.end(); // the block's label: its code follows
    const block = blocks.get(leader)!;
    g.kind = -1;
    let ended = false;
    block.forEach((at, index) => {
      const insn = code.insns.get(at)!;
      g.offset = at;
      g.index = index;
      g.next = at + insn.length;
      if (!translatable(insn)) {
        g.fallback(insn);
        ended = true;
        return;
      }
      if (forced && index > 0) {
        c.get(P_COUNT).i32(index).add().get(P_ROOM).geS().if();
        g.exit();
        c.end();
      }
      ended = g.instruction(insn);
    });
    if (!ended) {
      const last = code.insns.get(block[block.length - 1])!;
      g.offset = block[block.length - 1];
      c.get(P_COUNT).i32(block.length).add().set(P_COUNT);
      g.goto(g.offset + last.length);
    }
  }
  c.end(); // loop
  c.end(); // out
  g.onward(() => c.get(g.base).get(g.pc).add());
  c.returnCall(F_EXIT);
  m.exportFunction("run", region.index);
  return { bytes: m.encode(), fallbacks: g.fallbacks, blockIndex: g.blockIndex };
}

interface Region {
  /** Its slot in the runtime's table. */
  slot: number;
  /** Block numbers by page offset: where it can be entered. */
  blockIndex: Map<number, number>;
  /** Bytes of WebAssembly. */
  bytes: number;
}

/** The translations of one physical page. */
interface PageRegions {
  /** The page's region: all the code of the page that has run, as it was when last translated. */
  main: Region | undefined;
  /** How many times the page's region was made. */
  builds: number;
  /** Regions of single entries, once the page's region has been made MAX_BUILDS times. */
  extras: Region[];
  /** The region to enter at each offset. */
  byOffset: (Region | undefined)[];
  /** Entries at offsets no region has: how often each was seen. */
  heat: Uint16Array;
  /** Physical addresses this page put into the entry cache. */
  cached: Set<number>;
}

export class Translator {
  readonly cpu: CPU;
  readonly forced: boolean;
  readonly hotEntry = translationSettings.hotEntry;
  /** cpu.instructions from which the translator runs the CPU (0 when forced). */
  readonly startAt: number;
  readonly pages: (PageRegions | undefined)[];
  readonly rewrites: Uint8Array;
  regionCount = 0;
  codeBytes = 0;
  maxRegions = MAX_REGIONS;
  maxCodeBytes = MAX_CODE_BYTES;
  /** Regions made, translations thrown away, whole flushes. */
  translations = 0;
  invalidations = 0;
  flushes = 0;
  /** Entries from JavaScript, and instructions run in regions (with the fallbacks they called). */
  entries = 0;
  translatedInstructions = 0;
  fallbackCalls = 0;
  /** Milliseconds spent generating and compiling. */
  compileMilliseconds = 0;
  private readonly runtime: Runtime;
  private readonly machine: number;
  private readonly wasm: WebAssembly.Memory;
  private readonly words: Int32Array;
  private readonly cache: Int32Array;
  private freeSlots: number[] = [];
  private nextSlot = 0;
  /** cpu.instructions when the region now running was entered. */
  private entryCount = 0;

  constructor(cpu: CPU, forced: boolean) {
    this.cpu = cpu;
    this.forced = forced;
    this.startAt = forced ? 0 : translationSettings.warmUp;
    const pages = cpu.codePages.length;
    this.pages = new Array(pages);
    this.rewrites = new Uint8Array(pages);
    const { buffer, offset, wasm } = cpu.machine;
    this.machine = offset;
    this.wasm = wasm!;
    this.words = new Int32Array(buffer, offset, MACHINE_CACHE / 4);
    this.cache = new Int32Array(buffer, offset + MACHINE_CACHE, 2 * CACHE_SLOTS).fill(-1);
    this.runtime = buildRuntime(this.wasm, offset);
  }

  /** CPU.run, with translated regions. */
  run(budget: number): number {
    const cpu = this.cpu;
    cpu.stopReason = STOP_BUDGET;
    const limit = cpu.instructions + budget;
    for (;;) {
      try {
        while (cpu.instructions < limit) {
          if (cpu.attention !== 0 && serviceAttention(cpu)) break;
          if (cpu.attention !== 0 || !this.runRegion(limit)) this.interpretBlock(limit);
        }
        return cpu.stopReason;
      } catch (error) {
        if (error !== FAULT) throw error;
        cpu.eip = cpu.instructionStart;
        if (!takeEvent(cpu, cpu.exceptionVector, cpu.exceptionErrorCode, EVENT_EXCEPTION)) return cpu.stopReason;
      }
    }
  }

  private interpretBlock(limit: number): void {
    const cpu = this.cpu;
    do {
      const start = cpu.eip;
      cpu.instructionStart = start;
      const offset = (start - cpu.fetchEipBase) >>> 0;
      let insn = offset < 4096 ? cpu.fetchPage[offset] : undefined;
      if (insn === undefined) insn = cpu.fetchSlowly();
      const next = (start + insn.length) | 0;
      cpu.eip = next;
      switch (insn.hot) {
        case 1: movRegReg32(cpu, insn); break;
        case 2: aluRegReg32(cpu, insn); break;
        case 3: jcc(cpu, insn); break;
        case 4: movRegMem32(cpu, insn); break;
        case 5: movMemReg32(cpu, insn); break;
        case 6: movzxByte32(cpu, insn); break;
        case 7: aluRegImm32(cpu, insn); break;
        case 8: incDecReg32(cpu, insn); break;
        case 9: lea32(cpu, insn); break;
        case 10: aluRegRm32(cpu, insn); break;
        case 11: shiftByImmediate32(cpu, insn); break;
        case 12: movzxByteMemory32(cpu, insn); break;
        default: insn.exec(cpu, insn);
      }
      cpu.instructions++;
      if (cpu.eip !== next) return;
    } while (cpu.attention === 0 && cpu.instructions < limit);
  }

  /** Runs translated code from eip if it may; false if it ran nothing. */
  private runRegion(limit: number): boolean {
    const cpu = this.cpu;
    if (!cpu.code32 || cpu.codeLimitChecked || cpu.segBase[CS] !== 0 || cpu.stackMask !== -1) return false;
    if (!flatData(cpu) || cpu.mustInterpret()) return false;
    const words = this.words;
    const user = cpu.cpl === 3;
    const tlbBase = this.machine + MACHINE_TLB;
    words[W_TLB_READ >> 2] = tlbBase + (user ? 2 : 0) * TLB_TABLE_BYTES;
    words[W_TLB_WRITE >> 2] = tlbBase + (user ? 3 : 1) * TLB_TABLE_BYTES;
    if (this.enter(limit)) return true;
    // Nothing ran: no region here in the entry cache (or no room for a block).
    const eip = cpu.eip;
    const entry = cpu.tlbRead[eip >>> 12];
    if (entry === -1) return false;
    const page = (eip ^ entry) >>> 12;
    const offset = eip & 0xfff;
    const known = this.pages[page]?.byOffset[offset];
    if (known !== undefined) {
      if (this.cache[2 * cacheSlot(eip ^ entry)] === (eip ^ entry)) return false; // cached: the budget was too small
      this.remember(page, offset, known);
      return this.enter(limit);
    }
    if (this.consider(page, offset) === undefined) return false;
    return this.enter(limit);
  }

  /** Calls the runtime's enter; true if instructions ran. */
  private enter(limit: number): boolean {
    const cpu = this.cpu;
    const words = this.words;
    const before = cpu.instructions;
    recordFlags(cpu, words, MACHINE_FLAGS >> 2);
    this.entryCount = before;
    words[W_COUNT >> 2] = 0;
    this.runtime.enter(cpu.eip, limit - before);
    const count = words[W_COUNT >> 2];
    if (count === 0) return false;
    this.entries++;
    this.translatedInstructions += count;
    const f = MACHINE_FLAGS >> 2;
    flushFlags(cpu, words[f], words[f + 1], words[f + 2], words[f + 3], words[f + 4]);
    cpu.eip = words[W_EIP >> 2];
    cpu.instructions = before + count;
    return true;
  }

  /** The import `fallback`: runs instruction `insn` at linear `eip` in the interpreter. */
  private fallback(insn: Insn, eip: number, count: number): number {
    const cpu = this.cpu;
    const words = this.words;
    const f = MACHINE_FLAGS >> 2;
    this.fallbackCalls++;
    flushFlags(cpu, words[f], words[f + 1], words[f + 2], words[f + 3], words[f + 4]);
    cpu.instructions = this.entryCount + count;
    cpu.instructionStart = eip;
    const next = (eip + insn.length) | 0;
    cpu.eip = next;
    insn.exec(cpu, insn);
    recordFlags(cpu, words, f);
    if (cpu.attention !== 0 || cpu.mustInterpret()) {
      words[W_EIP >> 2] = cpu.eip;
      return 2;
    }
    if (cpu.eip !== next) {
      words[W_EIP >> 2] = cpu.eip;
      return 1;
    }
    return 0;
  }

  /** Counts an entry at an offset no region has; translates when it is hot. */
  private consider(page: number, offset: number): Region | undefined {
    if (this.rewrites[page] >= REWRITE_LIMIT) return undefined;
    let regions = this.pages[page];
    if (regions === undefined) {
      regions = { main: undefined, builds: 0, extras: [], byOffset: new Array(4096), heat: new Uint16Array(4096), cached: new Set() };
      this.pages[page] = regions;
    }
    if (regions.extras.length >= MAX_REGIONS_PER_PAGE) return undefined;
    if (!this.forced) {
      const heat = regions.heat[offset] + 1;
      regions.heat[offset] = heat;
      if (heat < this.hotEntry) return undefined;
      regions.heat[offset] = 0;
    }
    return this.translate(page, offset);
  }

  /**
   * Makes the page's region again, now with everything of the page that has
   * run and an entry at `offset`; or, when the page's region has been made
   * MAX_BUILDS times, a region of its own for the entry.
   */
  private translate(page: number, offset: number): Region {
    const cpu = this.cpu;
    const started = performance.now();
    if (this.regionCount >= this.maxRegions || this.codeBytes > this.maxCodeBytes) this.forgetAll();
    let regions = this.pages[page];
    if (regions === undefined) {
      regions = { main: undefined, builds: 0, extras: [], byOffset: new Array(4096), heat: new Uint16Array(4096), cached: new Set() };
      this.pages[page] = regions;
    }
    if (!cpu.codePages[page]) cpu.protectCode(page);
    const whole = regions.builds < MAX_BUILDS;
    const entries = [offset];
    if (whole && regions.main !== undefined) entries.push(...regions.main.blockIndex.keys());
    const ran = this.forced ? undefined : cpu.codeCache[page];
    const code = whole && ran !== undefined ? discoverRan(ran, entries) : discover(cpu.mem8, page << 12, entries, ran);
    const region = this.compile(code);
    if (whole) {
      const old = regions.main;
      if (old !== undefined) this.drop(regions, old);
      regions.main = region;
      regions.builds++;
      for (const leader of region.blockIndex.keys()) this.enterAt(page, regions, leader, region);
    } else {
      regions.extras.push(region);
      for (const leader of region.blockIndex.keys()) {
        if (regions.byOffset[leader] === undefined || leader === offset) this.enterAt(page, regions, leader, region);
      }
    }
    this.regionCount++;
    this.codeBytes += region.bytes;
    this.translations++;
    this.compileMilliseconds += performance.now() - started;
    return region;
  }

  /** Compiles a region's module, instantiates it, and puts it in a slot of the runtime's table. */
  private compile(code: PageCode): Region {
    const { bytes, fallbacks, blockIndex } = generate(code, this.machine, this.forced);
    const compiled = new WebAssembly.Module(bytes);
    const runtime = this.runtime;
    const instance = new WebAssembly.Instance(compiled, {
      r: {
        dispatch: runtime.dispatch,
        exit: runtime.exit,
        condition: runtime.condition,
        eflags: runtime.eflags,
        fallback: (k: number, eip: number, count: number) => this.fallback(fallbacks[k], eip, count),
      },
      m: { memory: this.wasm },
    });
    const slot = this.freeSlots.pop() ?? this.nextSlot++;
    if (slot >= runtime.table.length) runtime.table.grow(Math.max(256, runtime.table.length));
    runtime.table.set(slot, instance.exports.run);
    return { slot, blockIndex, bytes: bytes.length };
  }

  /** Makes `region` the one entered at `offset` of `page`, in the table and the entry cache. */
  private enterAt(page: number, regions: PageRegions, offset: number, region: Region): void {
    regions.byOffset[offset] = region;
    this.remember(page, offset, region);
  }

  /** Takes a region that is being replaced out of its page's tables, and frees its slot. */
  private drop(regions: PageRegions, region: Region): void {
    for (const leader of region.blockIndex.keys()) {
      if (regions.byOffset[leader] === region) regions.byOffset[leader] = undefined;
    }
    // The entry cache must not name the slot once it is reused by another region.
    for (const pa of regions.cached) {
      const slot = cacheSlot(pa);
      if (this.cache[2 * slot] === pa && this.cache[2 * slot + 1] >>> 12 === region.slot) this.cache[2 * slot] = -1;
    }
    this.free(region);
  }

  /** Gives a region's slot back, and lets its code be collected. */
  private free(region: Region): void {
    this.runtime.table.set(region.slot, null);
    this.freeSlots.push(region.slot);
    this.regionCount--;
    this.codeBytes -= region.bytes;
  }

  /** Puts the entry at `offset` of `page` into the entry cache. */
  private remember(page: number, offset: number, region: Region): void {
    const pa = (page << 12) | offset;
    const slot = cacheSlot(pa);
    this.cache[2 * slot] = pa;
    this.cache[2 * slot + 1] = region.slot * 4096 + region.blockIndex.get(offset)!;
    this.pages[page]!.cached.add(pa);
  }

  /** How many regions physical page `page` has. */
  regionsOf(page: number): number {
    const regions = this.pages[page];
    return regions === undefined ? 0 : (regions.main !== undefined ? 1 : 0) + regions.extras.length;
  }

  /** A write to `page`, or the Host's DMA into it: its translations are stale. */
  forget(page: number): void {
    const regions = this.pages[page];
    if (regions === undefined) return;
    this.pages[page] = undefined;
    for (const pa of regions.cached) {
      const slot = cacheSlot(pa);
      if (this.cache[2 * slot] === pa) this.cache[2 * slot] = -1;
    }
    if (regions.main === undefined && regions.extras.length === 0) return; // only counts of entries: nothing ran from it
    for (const region of [...(regions.main ? [regions.main] : []), ...regions.extras]) this.free(region);
    if (this.rewrites[page] < 255) this.rewrites[page]++;
    this.invalidations++;
    this.cpu.attention = 1;
  }

  /** Throws every translation away (the memory bound was reached). */
  forgetAll(): void {
    this.pages.fill(undefined);
    this.cache.fill(-1);
    for (let slot = 0; slot < this.nextSlot; slot++) this.runtime.table.set(slot, null);
    this.freeSlots = [];
    this.nextSlot = 0;
    this.regionCount = 0;
    this.codeBytes = 0;
    this.flushes++;
  }
}

function flatData(cpu: CPU): boolean {
  return cpu.segFastRead[DS] + cpu.segFastWrite[DS] + cpu.segFastRead[ES] + cpu.segFastWrite[ES] +
    cpu.segFastRead[SS] + cpu.segFastWrite[SS] === 6 && (cpu.segBase[DS] | cpu.segBase[ES] | cpu.segBase[SS]) === 0;
}
