// Hostile Guests: every way the spec says a Guest can get itself killed,
// each with exactly the spec's reason (the Host's wording where the spec
// gives only the start of it), and after each death the same Host starts a
// new Guest in the freed slot and runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Host } from "../src/host/host.ts";
import {
  LHCALL_FLUSH_TLB, LHCALL_LOAD_GDT, LHCALL_LOAD_TLS, LHCALL_NEW_PGTABLE, LHCALL_SET_STACK,
} from "../src/host/constants.ts";
import {
  boot, CODE, enterUser, GDT_TABLE, KERNEL_PTES, linuxGdt, PAGE_OFFSET, RAM_SIZE, STACK_TOP, tinyGuest, USER, va, type TinyGuestOptions,
} from "./helpers/tiny-guest.ts";
import { hcall, imm32, jmpSelf, mov, EAX } from "./helpers/x86.ts";

const setStack = hcall(LHCALL_SET_STACK, 0x69, va(STACK_TOP), 2);
const firstSlot = (seed: number) => new Host({ seed }).random32() % 4;
const seedForOtherSlot = [...Array(100).keys()].find((s) => firstSlot(s) !== 0)!;
const after = (code: number[]) => va(CODE + code.length);

interface Hostile {
  rule: string;
  code: number[];
  reason: string;
  options?: TinyGuestOptions;
}

const hostile: Hostile[] = [
  {
    rule: "NEW_PGTABLE to a fresh shadow whose page tables do not map the kernel stack kills with 'bad stack page'",
    code: [...boot, ...setStack, ...hcall(LHCALL_NEW_PGTABLE, 0xf5000), ...jmpSelf],
    reason: `bad stack page ${"0x" + (va(STACK_TOP) - 1).toString(16)}`,
    options: { hostOptions: { seed: seedForOtherSlot } },
  },
  {
    rule: "FLUSH_TLB(1) kills with 'bad stack page' when the stack is no longer mapped",
    code: [...boot, ...setStack, ...[0xc7, 0x05, ...imm32(va(KERNEL_PTES + ((STACK_TOP >>> 12) - 1) * 4)), ...imm32(0)], ...hcall(LHCALL_FLUSH_TLB, 1), ...jmpSelf],
    reason: `bad stack page ${"0x" + (va(STACK_TOP) - 1).toString(16)}`,
  },
  {
    rule: "SET_STACK in the Switcher's range kills with 'attempt to access switcher pages'",
    code: [...boot, ...hcall(LHCALL_SET_STACK, 0x69, 0xffc02000, 1), ...jmpSelf],
    reason: "attempt to access switcher pages",
  },
  {
    rule: "LOAD_GDT from outside guest memory kills with 'bad read address'",
    code: [...boot, ...hcall(LHCALL_LOAD_GDT, RAM_SIZE - 8, 32), ...jmpSelf],
    reason: "bad read address 0xffff8 len 256",
  },
  {
    rule: "LOAD_TLS from outside guest memory kills with 'bad read address'",
    code: [...boot, ...hcall(LHCALL_LOAD_TLS, 0xfffffff0), ...jmpSelf],
    reason: "bad read address 0xfffffff0 len 24",
  },
  {
    rule: "a Guest kernel's write to CR3 is a #GP that, unhandled, kills with 'unhandled trap 13'",
    code: [...boot, 0x0f, 0x22, 0xd8, ...jmpSelf],
    reason: `unhandled trap 13 at 0x${after(boot).toString(16)} (0x0)`,
  },
  {
    rule: "sysenter is a #GP in the Guest (SYSENTER_CS is 0), killing a Guest without a handler",
    code: [...boot, 0x0f, 0x34],
    reason: `unhandled trap 13 at 0x${after(boot).toString(16)} (0x0)`,
  },
  {
    rule: "a trap whose direct delivery cannot push its frame is a page fault, the Guest's to handle (or die of)",
    code: [...boot, ...hcall(6, 6, ...gateWords(0xf)), ...mov(4, PAGE_OFFSET + 0x200000), 0x0f, 0x0b],
    reason: `unhandled trap 14 at 0x${va(CODE + boot.length + 22 + 5).toString(16)} (0xc01ffff4)`,
  },
  {
    rule: "a double fault is never the Guest's: #DE from ring 3 with no ring-1 stack kills with 'unhandled trap 8'",
    code: [...boot, ...hcall(LHCALL_LOAD_GDT, GDT_TABLE, 32), ...hcall(6, 0, ...gateWords(0xf)), ...enterUser()],
    reason: "unhandled trap 8 at 0x400002 (0x0)",
    options: { memory: [linuxGdt(), [USER, [0x31, 0xc9, 0xf7, 0xf1]]] },
  },
  {
    rule: "an iret with NT set asks for a task switch, which kills the Guest",
    code: [...boot, 0x9c, 0x58, 0x0d, ...imm32(0x4000), 0x50, 0x9d, 0xcf],
    reason: "the CPU cannot do this: iret with NT set: returning from a nested task is not implemented",
  },
  {
    rule: "the Guest kernel may read and run the Switcher's code page, but its hlt is a #GP the Host cannot read back",
    code: [...boot, ...mov(EAX, 0xffc00000), 0xff, 0xe0],
    reason: "bad read address 0x3fc00000 len 1",
  },
];

/** The words of a trap gate at the top of RAM's linear map (a handler address that is not mapped). */
function gateWords(type: number): [number, number] {
  const handler = va(0x5000);
  return [((0x60 << 16) | (handler & 0xffff)) >>> 0, ((handler & 0xffff0000) | 0x8000 | (type << 8)) >>> 0];
}

for (const { rule, code, reason, options } of hostile) {
  test(rule, () => {
    const host = options?.hostOptions ? new Host(options.hostOptions) : new Host();
    const t = tinyGuest(code, { ...options, host });
    assert.deepEqual(t.run(), { kind: "dead", reason });
    host.release(t.guest);
    const next = tinyGuest([...boot, ...jmpSelf], { host });
    assert.equal(next.guest.id, 0, "the slot is free again");
    assert.deepEqual(next.run(1_000), { kind: "timeslice", halted: false, timerAt: undefined });
  });
}
