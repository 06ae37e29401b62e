#!/usr/bin/env python3
"""Generate the golden i386 disassembly corpus from GNU objdump.

Usage (from the repository root):
    python3 test/disasm/generate.py            # writes test/disasm/golden-*.txt
    python3 test/disasm/generate.py --verify 2000
                                              # additionally re-runs 2000 randomly
                                              # chosen cases one per file and checks
                                              # that the batched result is identical
    python3 test/disasm/generate.py --stats    # print length-model mismatches

Each case is a byte string.  The golden result for a case is defined as
"what objdump prints for the first instruction of a file that contains exactly
the case bytes, loaded at address 0":

    objdump -D -z -b binary -m i386 [-M intel] case.bin

Running one objdump process per case is slow, so cases are batched: every case
is followed by 16 bytes of 0x90 (nop) filler, which guarantees that objdump is
back in sync at the next case (no x86 instruction is longer than 15 bytes and a
fresh 0x90 is always a one-byte instruction).  The batched result is accepted
only if
  * objdump printed an instruction starting exactly at the case offset,
  * the first instruction did not consume any filler byte, and
  * the text is identical when the same batch file is disassembled with
    --adjust-vma=0x1235 (i.e. the text does not depend on the address, which
    rules out jump/call targets),
  * the text does not contain "(bad)" (objdump may have read bytes beyond the
    ones it reports as consumed, e.g. VEX/EVEX/XOP attempts on C4/C5/62/8F,
    and at the end of a file it then prints ".byte 0x.." instead), and
  * for systematic cases (shorter than 16 bytes) the first instruction used
    all of the case bytes.
Otherwise the case is disassembled again on its own (file = the case bytes,
address 0) and that result is recorded.  So jump targets are always relative
to the start of the case, and a lone prefix is shown as objdump shows it at the
end of a section.

The script is deterministic (own PRNG, fixed seed, fixed ordering).
"""

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
OBJDUMP = os.environ.get("OBJDUMP", "/usr/bin/objdump")
FILLER = b"\x90" * 16
SHIFT_VMA = 0x1235

# --------------------------------------------------------------------------
# deterministic PRNG (xorshift64*), independent of the Python version


class Rng:
    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF or 1

    def next64(self):
        x = self.s
        x ^= (x >> 12)
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= (x >> 27)
        self.s = x
        return (x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        return (self.next64() >> 11) % n

    def chance(self, num, den):
        return self.below(den) < num

    def byte(self):
        return self.below(256)

    def choice(self, seq):
        return seq[self.below(len(seq))]


# --------------------------------------------------------------------------
# value cycles for displacements / immediates (distinctive, some negative)


class Cyc:
    def __init__(self, vals):
        self.vals = vals
        self.i = 0

    def __call__(self):
        v = self.vals[self.i % len(self.vals)]
        self.i += 1
        return v


def le(v, n):
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "little")


DISP8 = Cyc([0x12, 0xF0, 0x7F, 0x80])
DISP16 = Cyc([0x1234, 0xFFF0, 0x8000])
DISP32 = Cyc([0x12345678, 0xFFFFFFF0, 0x80000000, 0x00000012])
IMM8 = Cyc([0x12, 0xF0, 0x7F, 0x80, 0x01])
IMM16 = Cyc([0x1234, 0xFEDC])
IMM32 = Cyc([0x12345678, 0xFEDCBA98, 0x00000080])


def reset_cycles():
    for c in (DISP8, DISP16, DISP32, IMM8, IMM16, IMM32):
        c.i = 0


# --------------------------------------------------------------------------
# ModRM forms.  A form is (mod, rm, tail) where tail = SIB/displacement bytes.

SIBS = [  # (scale, index, base)
    (0, 4, 0),  # (%eax)          index none
    (0, 4, 4),  # (%esp)
    (0, 0, 0),  # (%eax,%eax,1)
    (1, 1, 2),  # (%edx,%ecx,2)
    (2, 3, 5),  # base 5: disp32 only with mod 0, %ebp otherwise
    (3, 7, 6),  # (%esi,%edi,8)
    (3, 5, 4),  # (%esp,%ebp,8)
    (1, 4, 5),  # index none with scale 2, base 5  (%eiz)
    (2, 6, 1),  # (%ecx,%esi,4)
    (0, 4, 5),  # mod 0: disp32 only, no base no index
]


def sib_byte(ss, idx, base):
    return (ss << 6) | (idx << 3) | base


def form32(mod, rm, sib=None):
    tail = b""
    if mod != 3 and rm == 4:
        if sib is None:
            sib = (2, 3, 1)
        tail += bytes([sib_byte(*sib)])
        if mod == 0 and sib[2] == 5:
            tail += le(DISP32(), 4)
    if mod == 0 and rm == 5:
        tail += le(DISP32(), 4)
    elif mod == 1:
        tail += le(DISP8(), 1)
    elif mod == 2:
        tail += le(DISP32(), 4)
    return (mod, rm, tail)


def form16(mod, rm):
    tail = b""
    if mod == 0 and rm == 6:
        tail = le(DISP16(), 2)
    elif mod == 1:
        tail = le(DISP8(), 1)
    elif mod == 2:
        tail = le(DISP16(), 2)
    return (mod, rm, tail)


def full_forms32():
    """Yield (reg, form) pairs: every mod x every reg x every rm (rm 4 with a
    default SIB), plus the SIB variants for each mod 0-2 with reg cycling."""
    out = []
    for reg in range(8):
        for mod in range(4):
            for rm in range(8):
                out.append((reg, lambda mod=mod, rm=rm: form32(mod, rm)))
    i = 0
    for mod in range(3):
        for sib in SIBS:
            out.append((i % 8, lambda mod=mod, sib=sib: form32(mod, 4, sib)))
            i += 3
    return out


def forms16_cycling():
    out = []
    i = 0
    for mod in range(3):
        for rm in range(8):
            out.append((i % 8, lambda mod=mod, rm=rm: form16(mod, rm)))
            i += 1
    out.append((i % 8, lambda: form16(3, 2)))
    return out


def modrm_byte(mod, reg, rm):
    return (mod << 6) | (reg << 3) | rm


# --------------------------------------------------------------------------
# opcode tables (our own model, used to build complete instructions and to
# cross-check the lengths objdump reports)
#
# immediate kinds: '' none, 'b' imm8, 'w' imm16, 'z' imm16/32 (operand size),
# 'p' ptr16:16/32, 'o' moffs (address size), 'e' enter (imm16, imm8)

ONE = {}  # opcode -> (has_modrm, imm_kind or callable(reg, mod) -> kind)
PREFIXES = {0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x66, 0x67, 0xF0, 0xF2, 0xF3}
for base in range(0, 0x40, 8):
    ONE[base + 0] = (True, "")
    ONE[base + 1] = (True, "")
    ONE[base + 2] = (True, "")
    ONE[base + 3] = (True, "")
    ONE[base + 4] = (False, "b")
    ONE[base + 5] = (False, "z")
    ONE[base + 6] = (False, "")
    ONE[base + 7] = (False, "")
for op in range(0x40, 0x60):
    ONE[op] = (False, "")
ONE.update({
    0x60: (False, ""), 0x61: (False, ""), 0x62: (True, ""), 0x63: (True, ""),
    0x68: (False, "z"), 0x69: (True, "z"), 0x6A: (False, "b"), 0x6B: (True, "b"),
    0x6C: (False, ""), 0x6D: (False, ""), 0x6E: (False, ""), 0x6F: (False, ""),
})
for op in range(0x70, 0x80):
    ONE[op] = (False, "b")
ONE.update({0x80: (True, "b"), 0x81: (True, "z"), 0x82: (True, "b"), 0x83: (True, "b")})
for op in range(0x84, 0x90):
    ONE[op] = (True, "")
for op in range(0x90, 0xA0):
    ONE[op] = (False, "")
ONE[0x9A] = (False, "p")
for op in range(0xA0, 0xA4):
    ONE[op] = (False, "o")
for op in range(0xA4, 0xB0):
    ONE[op] = (False, "")
ONE[0xA8] = (False, "b")
ONE[0xA9] = (False, "z")
for op in range(0xB0, 0xB8):
    ONE[op] = (False, "b")
for op in range(0xB8, 0xC0):
    ONE[op] = (False, "z")
ONE.update({
    0xC0: (True, "b"), 0xC1: (True, "b"), 0xC2: (False, "w"), 0xC3: (False, ""),
    0xC4: (True, ""), 0xC5: (True, ""),
    0xC6: (True, lambda reg, mod: "b" if reg == 0 or (reg == 7 and mod == 3) else ""),
    0xC7: (True, lambda reg, mod: "z" if reg == 0 or (reg == 7 and mod == 3) else ""),
    0xC8: (False, "e"), 0xC9: (False, ""), 0xCA: (False, "w"), 0xCB: (False, ""),
    0xCC: (False, ""), 0xCD: (False, "b"), 0xCE: (False, ""), 0xCF: (False, ""),
    0xD0: (True, ""), 0xD1: (True, ""), 0xD2: (True, ""), 0xD3: (True, ""),
    0xD4: (False, "b"), 0xD5: (False, "b"), 0xD6: (False, ""), 0xD7: (False, ""),
})
for op in range(0xD8, 0xE0):
    ONE[op] = (True, "")
for op in range(0xE0, 0xE8):
    ONE[op] = (False, "b")
ONE.update({
    0xE8: (False, "z"), 0xE9: (False, "z"), 0xEA: (False, "p"), 0xEB: (False, "b"),
    0xEC: (False, ""), 0xED: (False, ""), 0xEE: (False, ""), 0xEF: (False, ""),
    0xF1: (False, ""), 0xF4: (False, ""), 0xF5: (False, ""),
    0xF6: (True, lambda reg, mod: "b" if reg in (0, 1) else ""),
    0xF7: (True, lambda reg, mod: "z" if reg in (0, 1) else ""),
    0xF8: (False, ""), 0xF9: (False, ""), 0xFA: (False, ""), 0xFB: (False, ""),
    0xFC: (False, ""), 0xFD: (False, ""), 0xFE: (True, ""), 0xFF: (True, ""),
})
ONE[0x0F] = (False, "")  # escape; alone it is incomplete
for p in PREFIXES:
    ONE[p] = (False, "")
ONE[0x9B] = (False, "")

# 0F map entries present on an i686 without MMX/SSE
TWO = {}
for op, mr, imm in [
    (0x00, True, ""), (0x01, True, ""), (0x02, True, ""), (0x03, True, ""),
    (0x06, False, ""), (0x08, False, ""), (0x09, False, ""), (0x0B, False, ""),
    (0x0D, True, ""),
    (0x30, False, ""), (0x31, False, ""), (0x32, False, ""), (0x33, False, ""),
    (0x34, False, ""), (0x35, False, ""),
    (0xA0, False, ""), (0xA1, False, ""), (0xA2, False, ""), (0xA3, True, ""),
    (0xA4, True, "b"), (0xA5, True, ""), (0xA8, False, ""), (0xA9, False, ""),
    (0xAA, False, ""), (0xAB, True, ""), (0xAC, True, "b"), (0xAD, True, ""),
    (0xAF, True, ""), (0xB0, True, ""), (0xB1, True, ""), (0xB2, True, ""),
    (0xB3, True, ""), (0xB4, True, ""), (0xB5, True, ""), (0xB6, True, ""),
    (0xB7, True, ""), (0xB9, True, ""), (0xBA, True, "b"), (0xBB, True, ""),
    (0xBC, True, ""), (0xBD, True, ""), (0xBE, True, ""), (0xBF, True, ""),
    (0xC0, True, ""), (0xC1, True, ""), (0xC7, True, ""), (0xFF, True, ""),
]:
    TWO[op] = (mr, imm)
for op in range(0x18, 0x20):
    TWO[op] = (True, "")
for op in range(0x20, 0x24):
    TWO[op] = (True, "")  # mov cr/dr: mod field ignored (always register)
for op in range(0x40, 0x50):
    TWO[op] = (True, "")
for op in range(0x80, 0x90):
    TWO[op] = (False, "z")
for op in range(0x90, 0xA0):
    TWO[op] = (True, "")
for op in range(0xC8, 0xD0):
    TWO[op] = (False, "")
I686_TWO = sorted(TWO)


def imm_bytes(kind, opsize16, addrsize16):
    if kind == "":
        return b""
    if kind == "b":
        return le(IMM8(), 1)
    if kind == "w":
        return le(IMM16(), 2)
    if kind == "z":
        return le(IMM16(), 2) if opsize16 else le(IMM32(), 4)
    if kind == "p":
        off = le(IMM16(), 2) if opsize16 else le(IMM32(), 4)
        return off + le(0xABCD, 2)
    if kind == "o":
        return le(DISP16(), 2) if addrsize16 else le(DISP32(), 4)
    if kind == "e":
        return le(IMM16(), 2) + le(IMM8(), 1)
    raise ValueError(kind)


# --------------------------------------------------------------------------
# case construction

class Corpus:
    def __init__(self):
        self.sections = []  # (name, description, [(bytes, expected_len or None)])
        self.seen = set()

    def section(self, name, desc):
        self.sections.append((name, desc, []))

    def add(self, b, expect=None):
        b = bytes(b)
        if b in self.seen:
            return
        self.seen.add(b)
        self.sections[-1][2].append((b, expect))


def insn_modrm(prefix, opbytes, reg, form, immkind, opsize16=False, addr16=False):
    mod, rm, tail = form
    kind = immkind(reg, mod) if callable(immkind) else immkind
    b = bytes(prefix) + bytes(opbytes) + bytes([modrm_byte(mod, reg, rm)]) + tail
    b += imm_bytes(kind, opsize16, addr16)
    return b


def build_systematic():
    reset_cycles()
    C = Corpus()
    modrm_ops1 = [op for op in range(256) if op in ONE and ONE[op][0] and not 0xD8 <= op <= 0xDF]
    plain_ops1 = [op for op in range(256) if op in ONE and not ONE[op][0]
                  and op not in PREFIXES and op not in (0x0F, 0x9B)]
    modrm_ops2 = [op for op in I686_TWO if TWO[op][0] and not 0x20 <= op <= 0x23]
    plain_ops2 = [op for op in I686_TWO if not TWO[op][0]]

    # ---- one-byte map, no ModRM ------------------------------------------
    C.section("onebyte-standalone-prefixes",
              "prefix bytes, 0x0F and fwait alone (file ends after the byte)")
    for op in sorted(PREFIXES) + [0x0F, 0x9B]:
        C.add([op], 1)
    C.section("onebyte-plain", "one-byte opcodes without ModRM (with immediates/rel/ptr)")
    for op in plain_ops1:
        b = bytes([op]) + imm_bytes(ONE[op][1], False, False)
        C.add(b, len(b))
        if ONE[op][1] in ("b", "z", "w", "e", "p", "o"):
            b = bytes([op]) + imm_bytes(ONE[op][1], False, False)
            C.add(b, len(b))  # second immediate value
    C.section("onebyte-plain-66", "0x66 operand-size prefix on opcodes without ModRM")
    for op in plain_ops1:
        b = b"\x66" + bytes([op]) + imm_bytes(ONE[op][1], True, False)
        C.add(b, len(b))
    C.section("onebyte-plain-67", "0x67 address-size prefix on opcodes without ModRM")
    for op in plain_ops1:
        b = b"\x67" + bytes([op]) + imm_bytes(ONE[op][1], False, True)
        C.add(b, len(b))
    C.section("onebyte-plain-66-67", "0x66 0x67 / 0x67 0x66 on opcodes without ModRM")
    for op in plain_ops1:
        b = b"\x66\x67" + bytes([op]) + imm_bytes(ONE[op][1], True, True)
        C.add(b, len(b))
        if op in (0xA0, 0xA1, 0xA2, 0xA3, 0xE3, 0xE8, 0xE9, 0x9A, 0xEA) or 0xA4 <= op <= 0xAF or 0x6C <= op <= 0x6F:
            b = b"\x67\x66" + bytes([op]) + imm_bytes(ONE[op][1], True, True)
            C.add(b, len(b))
    C.section("onebyte-plain-seg", "segment overrides 26/2E/36/3E/64/65 on opcodes without ModRM")
    for seg in (0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65):
        for op in plain_ops1:
            b = bytes([seg, op]) + imm_bytes(ONE[op][1], False, False)
            C.add(b, len(b))
    C.section("onebyte-plain-rep", "F2/F3 on opcodes without ModRM (string ops and others)")
    for rp in (0xF3, 0xF2):
        for op in plain_ops1:
            b = bytes([rp, op]) + imm_bytes(ONE[op][1], False, False)
            C.add(b, len(b))
    C.section("onebyte-plain-lock", "F0 lock on opcodes without ModRM (all invalid)")
    for op in plain_ops1:
        b = bytes([0xF0, op]) + imm_bytes(ONE[op][1], False, False)
        C.add(b, len(b))
    C.section("string-prefix-combos", "string instructions with rep + 66/67/segment combinations")
    for op in list(range(0xA4, 0xB0)) + [0x6C, 0x6D, 0x6E, 0x6F, 0xD7]:
        if op in (0xA8, 0xA9):
            continue
        for pre in ([0xF3, 0x66], [0x66, 0xF3], [0xF3, 0x67], [0xF2, 0x66], [0xF3, 0x2E],
                    [0x26, 0xF3], [0x64, 0x67], [0xF3, 0x65, 0x67, 0x66], [0xF2, 0xF3],
                    [0xF3, 0xF2], [0xF0, 0xF3], [0x3E, 0x36]):
            b = bytes(pre + [op])
            C.add(b, len(b))

    # ---- one-byte map with ModRM -----------------------------------------
    C.section("onebyte-modrm", "one-byte opcodes with ModRM: every mod x reg x rm, SIB variants")
    for op in modrm_ops1:
        for reg, mk in full_forms32():
            b = insn_modrm([], [op], reg, mk(), ONE[op][1])
            C.add(b, len(b))
    C.section("onebyte-modrm-66", "0x66 operand size on one-byte ModRM opcodes")
    for op in modrm_ops1:
        for reg in range(8):
            for mod, rm, sib in ((3, (reg + 1) % 8, None), (0, reg, None), (1, 4, SIBS[reg]),
                                 (2, 5, None)):
                if mod == 0 and rm in (4, 5):
                    rm = 0
                b = insn_modrm([0x66], [op], reg, form32(mod, rm, sib), ONE[op][1], opsize16=True)
                C.add(b, len(b))
    C.section("onebyte-modrm-67", "0x67 16-bit addressing on one-byte ModRM opcodes (all rm x mod 0-2, disp16)")
    for op in modrm_ops1:
        for reg, mk in forms16_cycling():
            b = insn_modrm([0x67], [op], reg, mk(), ONE[op][1], addr16=True)
            C.add(b, len(b))
        # a second pass with the reg field shifted so every reg meets every rm
        for reg, mk in forms16_cycling():
            b = insn_modrm([0x67], [op], (reg + 4) % 8, mk(), ONE[op][1], addr16=True)
            C.add(b, len(b))
    C.section("onebyte-modrm-seg", "segment overrides on one-byte ModRM opcodes")
    for op in modrm_ops1:
        i = 0
        for seg in (0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65):
            for mod, rm, sib in ((0, 0, None), (1, 5, None), (0, 4, (0, 4, 4)), (3, 1, None)):
                reg = i % 8
                i += 1
                b = insn_modrm([seg], [op], reg, form32(mod, rm, sib), ONE[op][1])
                C.add(b, len(b))
    C.section("onebyte-modrm-rep", "F2/F3 on one-byte ModRM opcodes (objdump prints repz/repnz, xacquire/xrelease, bnd)")
    for op in modrm_ops1:
        for rp in (0xF2, 0xF3):
            for reg in range(8):
                b = insn_modrm([rp], [op], reg, form32(0, (reg + 3) % 8 if (reg + 3) % 8 not in (4, 5) else 0), ONE[op][1])
                C.add(b, len(b))
    C.section("onebyte-modrm-lock", "F0 lock on one-byte ModRM opcodes (memory = valid for ALU/inc/dec/not/neg/xchg, register = invalid)")
    for op in modrm_ops1:
        for reg in range(8):
            for mod, rm in ((0, 0), (3, 1)):
                b = insn_modrm([0xF0], [op], reg, form32(mod, rm), ONE[op][1])
                C.add(b, len(b))
    C.section("onebyte-modrm-combos", "prefix combinations on ModRM opcodes")
    combos = ([0x66, 0x67], [0x67, 0x66], [0x2E, 0x66, 0x67], [0x66, 0x26], [0xF0, 0x66],
              [0xF0, 0x2E], [0xF2, 0xF0], [0xF3, 0xF0], [0xF0, 0xF2], [0x66, 0x66],
              [0x67, 0x67], [0x26, 0x65], [0x64, 0x64], [0xF0, 0x67, 0x66])
    for op in modrm_ops1:
        for ci, pre in enumerate(combos):
            reg = ci % 8
            a16 = 0x67 in pre
            o16 = 0x66 in pre
            f = form16(1, ci % 8) if a16 else form32(ci % 3, (ci * 3) % 8, SIBS[ci % len(SIBS)])
            b = insn_modrm(pre, [op], reg, f, ONE[op][1], opsize16=o16, addr16=a16)
            C.add(b, len(b))

    # ---- x87 ---------------------------------------------------------------
    C.section("x87", "D8-DF with all 256 ModRM values; memory forms twice (different disp/SIB)")
    for op in range(0xD8, 0xE0):
        for m in range(256):
            mod, reg, rm = m >> 6, (m >> 3) & 7, m & 7
            b = bytes([op]) + bytes([m]) + form32(mod, rm, SIBS[m % len(SIBS)])[2]
            C.add(b, len(b))
            if mod != 3:
                b = bytes([op]) + bytes([m]) + form32(mod, rm, SIBS[(m + 5) % len(SIBS)])[2]
                C.add(b, len(b))
    C.section("x87-fwait", "9B (fwait) followed by every D8-DF ModRM value (register forms) and each /r memory form")
    for op in range(0xD8, 0xE0):
        for m in range(256):
            if m < 0xC0 and (m >> 6) != 0:
                continue
            mod, rm = m >> 6, m & 7
            b = bytes([0x9B, op, m]) + form32(mod, rm)[2]
            C.add(b, len(b))
    C.section("x87-prefixed", "x87 with 66, 67, segment overrides, F2/F3")
    for op in range(0xD8, 0xE0):
        for reg in range(8):
            b = bytes([0x66, op, modrm_byte(0, reg, 0)])
            C.add(b, len(b))
            b = bytes([0x66, op, modrm_byte(3, reg, 1)])
            C.add(b, len(b))
            b = bytes([0x9B, 0x66, op, modrm_byte(0, reg, 3)])
            C.add(b, len(b))
            f = form16(reg % 3, (reg * 3 + op) % 8)
            b = bytes([0x67, op, modrm_byte(f[0], reg, f[1])]) + f[2]
            C.add(b, len(b))
            seg = (0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65)[(reg + op) % 6]
            b = bytes([seg, op, modrm_byte(1, reg, 5)]) + le(DISP8(), 1)
            C.add(b, len(b))
            b = bytes([(0xF2, 0xF3)[reg & 1], op, modrm_byte(0, reg, 2)])
            C.add(b, len(b))

    # ---- 0F map -------------------------------------------------------------
    C.section("0f-plain", "0F opcodes without ModRM (i686): base, 66, 67, F3, F2, segment")
    for op in plain_ops2:
        for pre, o16 in (([], False), ([0x66], True), ([0x67], False), ([0xF3], False),
                         ([0xF2], False), ([0x2E], False), ([0x3E], False)):
            b = bytes(pre + [0x0F, op]) + imm_bytes(TWO[op][1], o16, False)
            C.add(b, len(b))
    C.section("0f-modrm", "0F opcodes with ModRM (i686): every mod x reg x rm, SIB variants")
    for op in modrm_ops2:
        for reg, mk in full_forms32():
            b = insn_modrm([], [0x0F, op], reg, mk(), TWO[op][1])
            C.add(b, len(b))
    C.section("0f-movcrdr", "0F 20-23 mov to/from control/debug registers: all 256 ModRM values (mod is ignored)")
    for op in range(0x20, 0x24):
        for m in range(256):
            b = bytes([0x0F, op, m])
            C.add(b, 3)
        for pre in ([0x66], [0x67], [0xF3], [0xF0], [0x2E]):
            b = bytes(pre + [0x0F, op, 0xC1 + (op << 3) % 64])
            C.add(b, len(b))
    C.section("0f-modrm-66", "0x66 on 0F ModRM opcodes")
    for op in modrm_ops2:
        for reg in range(8):
            for mod, rm, sib in ((3, (reg + 2) % 8, None), (0, 4, (1, 1, 2)), (2, 5, None)):
                b = insn_modrm([0x66], [0x0F, op], reg, form32(mod, rm, sib), TWO[op][1], opsize16=True)
                C.add(b, len(b))
    C.section("0f-modrm-67", "0x67 16-bit addressing on 0F ModRM opcodes")
    for op in modrm_ops2:
        for reg, mk in forms16_cycling():
            b = insn_modrm([0x67], [0x0F, op], reg, mk(), TWO[op][1], addr16=True)
            C.add(b, len(b))
    C.section("0f-modrm-seg", "segment overrides on 0F ModRM opcodes")
    for op in modrm_ops2:
        i = op
        for seg in (0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65):
            for mod, rm in ((0, 0), (2, 4), (3, 2)):
                b = insn_modrm([seg], [0x0F, op], i % 8, form32(mod, rm), TWO[op][1])
                i += 1
                C.add(b, len(b))
    C.section("0f-modrm-rep-lock", "F2/F3/F0 on 0F ModRM opcodes (lock cmpxchg/xadd/bts/btr/btc/cmpxchg8b; newer decodings such as popcnt/tzcnt/lzcnt/endbr)")
    for op in modrm_ops2:
        for pre in ([0xF0], [0xF3], [0xF2]):
            for reg in range(8):
                for mod, rm in ((0, (reg + 1) % 4), (3, (reg + 2) % 8)):
                    b = insn_modrm(pre, [0x0F, op], reg, form32(mod, rm), TWO[op][1])
                    C.add(b, len(b))
        for pre in ([0xF0, 0x66], [0x66, 0xF0], [0xF3, 0x66], [0x66, 0xF2]):
            b = insn_modrm(pre, [0x0F, op], 1, form32(0, 6), TWO[op][1], opsize16=True)
            C.add(b, len(b))

    # ---- whole 0F map, including everything newer than i686 ----------------
    C.section("0f-map-all", "OPTIONAL: every 0F xx (and 0F 38 xx / 0F 3A xx) with a few ModRM forms and "
              "prefixes none/66/F2/F3; most entries outside the i686 set are MMX/SSE/later and may be skipped")
    tails = [bytes([0x00]) + b"\x11\x22\x33\x44\x55", bytes([0xC1]) + b"\x11\x22\x33\x44\x55",
             bytes([0x84, 0x91]) + le(0x12345678, 4) + b"\x11\x22"]
    for op in range(256):
        for pre in ([], [0x66], [0xF3], [0xF2]):
            for t in tails:
                if op in (0x38, 0x3A):
                    continue
                C.add(bytes(pre + [0x0F, op]) + t, None)
    for esc in (0x38, 0x3A):
        for op in range(256):
            for pre in ([], [0x66]):
                for t in tails[:2]:
                    C.add(bytes(pre + [0x0F, esc, op]) + t, None)

    # ---- assorted explicit cases -----------------------------------------
    C.section("misc", "explicit cases: far pointers, enter, ret imm16, int, moffs, in/out, nops, segment moves")
    extra = [
        "ea78563412cdab", "66ea7856cdab", "9a78563412cdab", "669a7856cdab",
        "c8341212", "c800000000", "c8ffff1f", "66c8341201", "c20400", "c2ffff", "ca0800", "66c20400",
        "66ca0800", "cd80", "cd03", "cc", "ce", "f1", "cdff",
        "a078563412", "a178563412", "a278563412", "a378563412", "67a03412", "67a13412", "67a23412",
        "67a33412", "66a178563412", "6667a13412", "64a100000000", "65a30000", "2ea10000000090",
        "e412", "e512", "66e512", "e612", "e712", "66e712", "ec", "ed", "66ed", "ee", "ef", "66ef",
        "90", "6690", "f390", "f3f390", "6790", "0f1f00", "0f1f4000", "0f1f440000", "660f1f440000",
        "0f1f8000000000", "0f1f840000000000", "660f1f840000000000", "662e0f1f840000000000",
        "8cc0", "8cc8", "8cd0", "8cd8", "8ce0", "8ce8", "8cf0", "8cf8", "668cc0", "8c00", "668c00",
        "8ec0", "8ed0", "8ee8", "8ec8", "8ef0", "8e00", "668ed8",
        "8d00", "8dc0", "8d0424", "8d0425", "8d042578563412", "8d04e5785634124", "8d4c2404",
        "0fa0", "0fa1", "0fa8", "0fa9", "660fa0", "660fa9", "06", "07", "0e", "16", "17", "1e", "1f",
        "6606", "661f", "0f00c0", "0f0000", "0f00d8", "0f01f0", "0f01e0", "0f0138", "0f01f8",
        "0f01f9", "0f01d0", "0f01d1", "0f01c1", "0f01c8", "0f01c9", "0f01ca", "0f01cb", "0f01ee",
        "f30f1efb", "f30f1efa", "f30f1ec8", "0f1efb", "0f0b", "0fb9c0", "0fffc0", "0f05", "0f07",
        "0f0e", "0f77", "0fae00", "0faef0", "0f31", "0f34", "0f35", "0fa2",
        "d6", "0fc8", "0fcc", "660fc8", "0fc70e", "0fc7c8", "f00fc70e", "0fc70f", "0fc7f0", "0fc7f8",
        "0f0d00", "0f0d08", "0f0d10", "0f1800", "0f1808", "0f1810", "0f1818", "0f1820",
        "f3c3", "f2c3", "f3c20400", "f2e800000000", "f2e9fbffffff", "f275fe", "2e74fe", "3e74fe",
        "2e0f84fcffffff", "3e0f84fcffffff", "66e9fdff", "66ebfe", "e9fbffffff", "ebfe", "e8fbffffff",
        "67e3fd", "e3fe", "66e3fe", "e2fe", "67e2fd", "66e2fe", "e0fe", "e1fe",
        "ff10", "ff18", "ff20", "ff28", "ffd0", "ffe0", "66ff10", "66ff20", "66ff18", "66ff28",
        "ffd8", "ffe8", "fff8", "fe00", "fe08", "fe10", "fec0", "fec8",
        "9b", "9bd9e0", "9b9bdbe3", "dbe3", "9bdbe2", "dbe2", "9bdd38", "dd38", "9bdfe0",
        "c4c0", "c5c0", "c400", "c500", "62c0", "6200", "8fc0", "8fe8", "8f00", "8fc8",
        "d4", "d40a", "d50a", "d412", "d50a90", "0f", "66", "67", "f0", "f2f3",
    ]
    for h in extra:
        h = h if len(h) % 2 == 0 else h[:-1]
        C.add(bytes.fromhex(h), None)
    return C


def build_random(n_struct=4000, n_raw=1500, seed=0x1386D15A55):
    r = Rng(seed)
    C = Corpus()
    prefw = [0x66] * 4 + [0x67] * 3 + [0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65] + [0xF0, 0xF2, 0xF3] * 2 + [0x9B]
    one_ops = [op for op in range(256) if op not in PREFIXES and op != 0x0F]
    C.section("random-structured",
              "prefixes (0-4, biased to 66/67/seg/rep/lock), then an opcode from the one-byte map or the "
              "i686 0F set (10% any 0F xx), then ModRM biased to SIB / disp32 forms, then random bytes; 16 bytes per case")
    count = 0
    while count < n_struct:
        b = []
        k = r.choice([0, 0, 0, 1, 1, 1, 2, 2, 3, 4])
        for _ in range(k):
            b.append(r.choice(prefw))
        if r.chance(1, 4):
            b.append(0x0F)
            b.append(r.byte() if r.chance(1, 10) else r.choice(I686_TWO))
        else:
            b.append(r.choice(one_ops))
        m = r.byte()
        x = r.below(10)
        if x < 3:  # SIB
            m = (m & 0xF8) | 4
            if m >> 6 == 3:
                m &= 0x3F
        elif x < 4:  # disp32 only
            m = (m & 0x38) | 5
        b.append(m)
        s = r.byte()
        if r.chance(1, 4):
            s = (s & 0xF8) | 5
        if r.chance(1, 5):
            s = (s & 0xC7) | (4 << 3)
        b.append(s)
        while len(b) < 16:
            b.append(r.byte())
        before = len(C.seen)
        C.add(bytes(b), None)
        count += len(C.seen) - before
    C.section("random-raw", "uniformly random 16-byte sequences")
    count = 0
    while count < n_raw:
        before = len(C.seen)
        C.add(bytes(r.byte() for _ in range(16)), None)
        count += len(C.seen) - before
    return C


# --------------------------------------------------------------------------
# objdump driver

LINE_RE = re.compile(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*(?:\t(.*))?$")


def objdump_cmd(syntax, path, vma=0):
    cmd = [OBJDUMP, "-D", "-z", "-b", "binary", "-m", "i386"]
    if syntax == "intel":
        cmd += ["-M", "intel"]
    if vma:
        cmd += ["--adjust-vma=0x%x" % vma]
    cmd.append(path)
    return cmd


def parse(out):
    """address -> [nbytes, text]; continuation lines add to the byte count."""
    res = {}
    last = None
    for line in out.splitlines():
        m = LINE_RE.match(line)
        if not m:
            continue
        addr = int(m.group(1), 16)
        nb = len(m.group(2).split())
        if m.group(3) is None:
            if last is not None:
                res[last][0] += nb
            continue
        res[addr] = [nb, m.group(3)]
        last = addr
    return res


def run_objdump(syntax, path, vma=0):
    p = subprocess.run(objdump_cmd(syntax, path, vma), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True)
    return parse(p.stdout.decode("utf-8", "replace"))


def run_alone(syntax, case, tmpdir, idx):
    path = os.path.join(tmpdir, "alone-%s-%d.bin" % (syntax, idx))
    with open(path, "wb") as f:
        f.write(case)
    r = run_objdump(syntax, path).get(0)
    os.unlink(path)
    if r is None:
        raise RuntimeError("objdump printed nothing for %s" % case.hex())
    return (r[0], r[1])


def disassemble(cases, syntax, tmpdir, tag):
    """Return [(len, text)] for each case (see module docstring)."""
    offs = []
    data = bytearray()
    for c in cases:
        offs.append(len(data))
        data += c + FILLER
    path = os.path.join(tmpdir, "batch-%s-%s.bin" % (tag, syntax))
    with open(path, "wb") as f:
        f.write(data)
    with ThreadPoolExecutor(2) as ex:
        fa = ex.submit(run_objdump, syntax, path, 0)
        fb = ex.submit(run_objdump, syntax, path, SHIFT_VMA)
        ra, rb = fa.result(), fb.result()
    os.unlink(path)
    results = [None] * len(cases)
    redo = []
    for i, (c, off) in enumerate(zip(cases, offs)):
        a = ra.get(off)
        b = rb.get(off + SHIFT_VMA)
        if (a is None or b is None or a[0] > len(c) or a[1] != b[1] or a[0] != b[0]
                or "(bad)" in a[1] or (a[0] < len(c) and len(c) < 16)):
            redo.append(i)
        else:
            results[i] = (a[0], a[1])
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda i: run_alone(syntax, cases[i], tmpdir, i), redo))
    for i, o in zip(redo, outs):
        results[i] = o
    return results, len(redo)


# --------------------------------------------------------------------------

def objdump_version():
    p = subprocess.run([OBJDUMP, "--version"], stdout=subprocess.PIPE, check=True)
    return p.stdout.decode().splitlines()[0]


def write_golden(path, corpus, results, syntax, title):
    cmd = "objdump -D -z -b binary -m i386%s case.bin" % (" -M intel" if syntax == "intel" else "")
    lines = [
        "# %s" % title,
        "# objdump: %s" % objdump_version(),
        "# command: %s   (file = the case bytes, address 0; first instruction only)" % cmd,
        "# generated by: python3 test/disasm/generate.py   (deterministic; do not edit)",
        "# format: <case bytes, hex><TAB><bytes consumed by the first instruction><TAB><objdump text>",
        "# lines starting with '# section:' start a group of related cases",
    ]
    n = 0
    k = 0
    for name, desc, cases in corpus.sections:
        lines.append("# section: %s -- %s (%d cases)" % (name, desc, len(cases)))
        for (b, _e) in cases:
            ln, text = results[k]
            k += 1
            if "\t" in text or "\n" in text:
                raise RuntimeError("unexpected tab in objdump text: %r" % text)
            lines.append("%s\t%d\t%s" % (b.hex(), ln, text))
            n += 1
    data = ("\n".join(lines) + "\n").encode()
    with open(path, "wb") as f:
        f.write(data)
    return n, len(data)


def main():
    args = sys.argv[1:]
    verify = 0
    if "--verify" in args:
        verify = int(args[args.index("--verify") + 1])
    stats = "--stats" in args
    outdir = HERE
    sysc = build_systematic()
    randc = build_random()
    tmpdir = tempfile.mkdtemp(prefix="lguest-disasm-")
    summary = []
    for corpus, base, title in ((sysc, "golden", "systematic i386 corpus"),
                                (randc, "golden-random", "random i386 corpus (seeded)")):
        cases = [b for _n, _d, cs in corpus.sections for (b, _e) in cs]
        expects = [e for _n, _d, cs in corpus.sections for (_b, e) in cs]
        per_syntax = {}
        for syntax in ("att", "intel"):
            res, nredo = disassemble(cases, syntax, tmpdir, base)
            per_syntax[syntax] = res
            n, size = write_golden(os.path.join(outdir, "%s-%s.txt" % (base, syntax)),
                                   corpus, res, syntax, title + " (%s syntax)" % syntax.upper())
            summary.append("%s-%s.txt: %d cases, %d bytes, %d re-run alone" % (base, syntax, n, size, nredo))
        # sanity: both syntaxes must agree on lengths
        for i, (a, b) in enumerate(zip(per_syntax["att"], per_syntax["intel"])):
            if a[0] != b[0]:
                print("LENGTH DIFFERS att/intel: %s %r %r" % (cases[i].hex(), a, b), file=sys.stderr)
        if stats:
            mism = {}
            for c, e, r in zip(cases, expects, per_syntax["att"]):
                if e is not None and r[0] != e:
                    key = r[1].split()[0] if r[1] else "?"
                    mism.setdefault(key, []).append((c.hex(), e, r[0], r[1]))
            for k2 in sorted(mism):
                v = mism[k2]
                print("%-14s %5d  e.g. %s" % (k2, len(v), v[:3]), file=sys.stderr)
        if verify:
            rr = Rng(0xC0FFEE)
            idx = sorted(set(rr.below(len(cases)) for _ in range(verify)))
            bad = 0
            for syntax in ("att", "intel"):
                outs = []
                with ThreadPoolExecutor(4) as ex:
                    outs = list(ex.map(lambda i: run_alone(syntax, cases[i], tmpdir, i), idx))
                for i, o in zip(idx, outs):
                    if o != per_syntax[syntax][i]:
                        bad += 1
                        print("VERIFY MISMATCH %s %s: batch %r alone %r" % (syntax, cases[i].hex(), per_syntax[syntax][i], o), file=sys.stderr)
            summary.append("verify %s: %d cases x 2 syntaxes re-run alone, %d mismatches" % (base, len(idx), bad))
    os.rmdir(tmpdir)
    for s in summary:
        print(s)


if __name__ == "__main__":
    main()
