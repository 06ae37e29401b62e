// The disassembler against GNU objdump 2.40 (Debian 12), using the golden
// corpus in test/disasm/ (see its README.md for how it was made and for
// objdump's quirks). Every case must come out exactly as objdump printed
// it, text and length, in AT&T and in Intel syntax, including the opcodes a
// P6 does not have, which both print as (bad). The only cases not compared
// are those where objdump decodes something a P6 does not (a newer
// instruction, a VEX prefix...); each such class is a skipped test that
// says why and how many, so the summary counts them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decode } from "../src/cpu/decode.ts";
import { disassemble, formatInstruction, type Disassembly, type Syntax } from "../src/cpu/disassemble.ts";
import { instructionTooLong } from "../src/cpu/faults.ts";
import { Insn } from "../src/cpu/insn.ts";

interface GoldenCase {
  section: string;
  hex: string;
  bytes: Uint8Array;
  length: number;
  text: string;
}

function readGolden(name: string): GoldenCase[] {
  const cases: GoldenCase[] = [];
  let section = "";
  for (const line of readFileSync(new URL(`disasm/${name}`, import.meta.url), "utf8").split("\n")) {
    if (line.startsWith("# section: ")) section = line.slice(11).split(" ")[0];
    if (line === "" || line.startsWith("#")) continue;
    const [hex, length, text] = line.split("\t");
    const bytes = new Uint8Array(hex.length / 2);
    for (let k = 0; k < bytes.length; k++) bytes[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
    cases.push({ section, hex, bytes, length: Number(length), text });
  }
  return cases;
}

function decodeCase(bytes: Uint8Array): Insn {
  // Zeros after the case, so that a cut-off instruction still names its opcode.
  return decode((k) => (k < bytes.length ? bytes[k] : 0), new Insn(() => {}), true);
}

const prefixWords = new Set([
  "data16", "addr16", "lock", "rep", "repz", "repnz", "es", "cs", "ss", "ds", "fs", "gs",
  "bnd", "notrack", "xacquire", "xrelease",
]);

/** objdump's mnemonic: the first word that is not a prefix. */
function mnemonicOf(text: string): string {
  return text.split(" ").find((word) => word !== "" && !prefixWords.has(word)) ?? text;
}

/**
 * Why a case is not compared with objdump, or undefined when it must match.
 * Every case is compared; one that disagrees with objdump is a mismatch
 * unless it falls in one of these classes, each of
 * which is reported below as a skipped test with its count: the summary's
 * "skipped" is the number of classes, and each one says why and how many.
 * An opcode our tables leave out is #UD on our P6 (test/cpu-census.test.ts
 * holds us to that), and prints as (bad): it is compared whenever objdump
 * prints (bad) too.
 */
const reasons = {
  vex: "objdump reads a VEX, EVEX or XOP prefix where a P6 has les, lds, bound or pop (invalid forms to us, printed (bad))",
  lockCr: "objdump reads lock mov %crN as AMD's %cr(N+8)",
  undocumented: "objdump prints (bad) for an undocumented instruction every P6 runs (salc, the x87's register aliases)",
  x87: "objdump decodes an x87 form the P6 lacks (SSE3's fisttp, the 287's frstpm); we print (bad)",
  hint: "objdump decodes a newer instruction (MPX, cldemote) in the hint-NOP space, which a P6 runs as nop",
  reinterpreted: "objdump decodes a newer instruction in an encoding a P6 runs as something else (tzcnt is a repz bsf to it)",
  undefined: "an invalid opcode on a P6 with our CPUID (see the census); objdump decodes an instruction a P6 lacks (MMX, SSE, 3DNow!, VMX, syscall, the 486's test registers...)",
  prefix: "objdump rejects a 66/f2/f3 prefix that a P6 ignores",
  mandatory: "invalid on a P6 and to objdump, which takes a 66/f2/f3 as part of a newer opcode and does not print it",
  amd3dnow: "invalid on a P6; objdump tries AMD's 3DNow! at 0F 0F and gives up after one byte",
} as const;

const prefixBytes = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

/** The text without its prefix words. */
function withoutPrefixes(text: string): string {
  return text.split(" ").filter((word) => !prefixWords.has(word)).join(" ");
}

/** Newer instructions objdump finds in encodings a P6 runs as something else. */
const reinterpreted = new Set(["tzcnt", "lzcnt", "wbnoinvd"]);
/** Newer instructions objdump finds in the hint-NOP space 0F 18 to 0F 1F. */
const hintSpace = /^(bnd|cldemote)/;

function reasonToSkip(c: GoldenCase, insn: Insn, ours: Disassembly): string | undefined {
  const objdumpName = mnemonicOf(c.text);
  const objdumpBad = objdumpName === "(bad)" || objdumpName === ".byte";
  const at = insn.prefixes.length;
  const opcode = c.bytes[at];
  const next = at + 1 < c.bytes.length ? c.bytes[at + 1] : 0;
  if (((opcode === 0xc4 || opcode === 0xc5 || opcode === 0x62) && next >= 0xc0) || (opcode === 0x8f && (next & 0x38) !== 0)) {
    return reasons.vex;
  }
  if (insn.lock && (insn.opcode === 0x120 || insn.opcode === 0x122)) return reasons.lockCr;
  // an x87 register form, after any prefixes and fwaits
  const escapeAt = c.bytes.findIndex((byte) => !prefixBytes.has(byte) && byte !== 0x9b);
  const alias = c.bytes[escapeAt] >= 0xd8 && c.bytes[escapeAt] <= 0xdf && c.bytes[escapeAt + 1] >= 0xc0;
  if ((insn.opcode === 0xd6 || alias) && objdumpBad && !ours.text.includes("(bad)")) return reasons.undocumented;
  if (ours.text.includes("(bad)") && /^(fisttp|frstpm)/.test(objdumpName)) return reasons.x87;
  if (insn.opcode >= 0x118 && insn.opcode <= 0x11f && hintSpace.test(objdumpName)) return reasons.hint;
  if (reinterpreted.has(objdumpName)) return reasons.reinterpreted;
  if (ours.text.endsWith("(bad)") && !objdumpBad) return reasons.undefined;
  if (insn.opcode === 0x10f && objdumpBad) return reasons.amd3dnow;
  if (ours.text.endsWith("(bad)") && objdumpBad && ours.text !== c.text && ours.length === c.length &&
    withoutPrefixes(ours.text) === withoutPrefixes(c.text)) return reasons.mandatory;
  const mandatory = insn.prefixes.some((byte) => byte === 0x66 || byte === 0xf2 || byte === 0xf3);
  if (insn.opcode > 0xff && mandatory && c.text.endsWith("(bad)") && !ours.text.endsWith("(bad)")) return reasons.prefix;
  return undefined;
}

interface Comparison {
  compared: number;
  mismatches: string[];
  /** reason -> objdump mnemonic -> count */
  skipped: Map<string, Map<string, number>>;
  skippedCount: number;
}

function compare(cases: GoldenCase[], syntax: Syntax): Comparison {
  const result: Comparison = { compared: 0, mismatches: [], skipped: new Map(), skippedCount: 0 };
  for (const c of cases) {
    const ours = disassemble(c.bytes, 0, 0, syntax);
    const agree = ours.text === c.text && ours.length === c.length;
    const reason = agree ? undefined : reasonToSkip(c, decodeCase(c.bytes), ours);
    if (reason) {
      const names = result.skipped.get(reason) ?? new Map<string, number>();
      const name = mnemonicOf(c.text);
      names.set(name, (names.get(name) ?? 0) + 1);
      result.skipped.set(reason, names);
      result.skippedCount++;
      continue;
    }
    result.compared++;
    if (!agree) {
      result.mismatches.push(`${c.section} ${c.hex}: objdump ${c.length} "${c.text}", ours ${ours.length} "${ours.text}"`);
    }
  }
  return result;
}

function summary(name: string, result: Comparison): string[] {
  const lines = [
    `${name}: ${result.compared} compared, ${result.compared - result.mismatches.length} matched, ` +
      `${result.skippedCount} skipped`,
  ];
  for (const [reason, names] of result.skipped) {
    const total = [...names.values()].reduce((a, b) => a + b, 0);
    const top = [...names].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([n, k]) => `${n} ${k}`);
    lines.push(`  skipped, ${reason}: ${total} (${top.join(", ")}${names.size > 12 ? ", ..." : ""})`);
  }
  return lines;
}

for (const [file, syntax] of [
  ["golden-att.txt", "att"],
  ["golden-intel.txt", "intel"],
  ["golden-random-att.txt", "att"],
  ["golden-random-intel.txt", "intel"],
] as const) {
  const result = compare(readGolden(file), syntax);
  test(`${file}: every case a P6 decodes prints as objdump prints it`, (t) => {
    for (const line of summary(file, result)) t.diagnostic(line);
    assert.ok(result.compared > 0, "some cases were compared");
    if (process.env.DISASM_MISMATCHES) console.log(result.mismatches.join("\n"));
    assert.deepEqual(result.mismatches.slice(0, 25), [], `${result.mismatches.length} mismatches`);
  });
  for (const [reason, names] of result.skipped) {
    const total = [...names.values()].reduce((a, b) => a + b, 0);
    const top = [...names].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, k]) => `${n} ${k}`);
    test(`${file}: ${total} cases not compared (${top.join(", ")}${names.size > 8 ? ", ..." : ""})`, { skip: reason }, () => {});
  }
}

function bytesOf(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}

test("branch targets are absolute, from the instruction's address (objdump --adjust-vma=0xc0101ffe)", () => {
  const address = 0xc0101ffe;
  for (const [hex, text] of [
    ["eb80", "jmp    0xc0101f80"],
    ["e9f0ffffff", "jmp    0xc0101ff3"],
    ["66e9f0ff", "jmpw   0x1ff2"],
    ["0f84f0ffffff", "je     0xc0101ff4"],
    ["66e81234", "callw  0x5414"],
    ["e2fe", "loop   0xc0101ffe"],
    ["7000", "jo     0xc0102000"],
    ["66eb80", "data16 jmp 0xc0101f81"],
  ]) {
    assert.equal(disassemble(bytesOf(hex), 0, address).text, text, hex);
  }
});

test("an instruction cut off by the end of the data is one byte: .byte, or its first prefix's name", () => {
  assert.deepEqual(disassemble(bytesOf("8b"), 0, 0), { text: ".byte 0x8b", length: 1 });
  assert.deepEqual(disassemble(bytesOf("660512"), 0, 0), { text: "data16", length: 1 });
  assert.deepEqual(disassemble(bytesOf("2e8b"), 0, 0), { text: "cs", length: 1 });
  assert.deepEqual(disassemble(bytesOf("902e8b"), 1, 1), { text: "cs", length: 1 });
});

test("fwait: objdump folds a 9b into the x87 instruction after it, and gives up at the end of the data", () => {
  // Each line checked against objdump 2.40: the listing of the bytes alone, from address 0.
  for (const [hex, listing] of [
    ["9bdfe0", ["fstsw  %ax"]],
    ["9b9bdbe3", ["finit"]],
    ["9b669bd903", ["data16 flds (%ebx)"]],
    ["9b9b66d903", ["fwait", "data16 flds (%ebx)"]],
    ["2e9b9bd903", ["cs fwait", "flds   (%ebx)"]],
    ["9bf09b92", ["lock fwait", "fwait", "xchg   %eax,%edx"]],
    ["9bd9", ["fwait", ".byte 0xd9"]],
    ["669bd9", ["data16", "fwait", ".byte 0xd9"]],
    ["9b669b", ["fwait", "data16", "fwait"]],
  ] as const) {
    const bytes = bytesOf(hex);
    const texts: string[] = [];
    for (let offset = 0; offset < bytes.length; offset += disassemble(bytes, offset, offset).length) {
      texts.push(disassemble(bytes, offset, offset).text);
    }
    assert.deepEqual(texts, listing, hex);
  }
});

test("the tracer prints an fwait as the CPU runs it, on its own", () => {
  const bytes = bytesOf("9bdfe0");
  const insn = decode((k) => bytes[k], new Insn(() => {}), true);
  assert.equal(formatInstruction(insn, 0), "fwait");
});

test("disassemble reads at an offset in a larger buffer", () => {
  const code = bytesOf("5589e583ec10c9c3");
  const listing: string[] = [];
  for (let offset = 0; offset < code.length;) {
    const { text, length } = disassemble(code, offset, 0x1000 + offset);
    listing.push(text);
    offset += length;
  }
  assert.deepEqual(listing, ["push   %ebp", "mov    %esp,%ebp", "sub    $0x10,%esp", "leave", "ret"]);
  assert.throws(() => disassemble(code, code.length, 0), RangeError);
});

test("formatInstruction prints an instruction the CPU has already decoded", () => {
  const bytes = bytesOf("f0268344b3f0ff");
  const insn = decode((k) => bytes[k], new Insn(() => {}), true);
  assert.equal(formatInstruction(insn, 0), "lock addl $0xffffffff,%es:-0x10(%ebx,%esi,4)");
  assert.equal(formatInstruction(insn, 0, "intel"), "lock add DWORD PTR es:[ebx+esi*4-0x10],0xffffffff");
  const jump = bytesOf("e9f0ffffff");
  const decoded = decode((k) => jump[k], new Insn(() => {}), true);
  assert.equal(formatInstruction(decoded, 0xc0100000), "jmp    0xc00ffff5");
});

test("the decoder records every prefix byte in order, and shares one empty array when there are none", () => {
  const prefixed = bytesOf("66f32ea5");
  assert.deepEqual(decode((k) => prefixed[k], new Insn(() => {}), true).prefixes, [0x66, 0xf3, 0x2e]);
  const plain = bytesOf("90");
  const a = decode((k) => plain[k], new Insn(() => {}), true);
  const b = decode((k) => plain[k], new Insn(() => {}), true);
  assert.equal(a.prefixes.length, 0);
  assert.equal(a.prefixes, b.prefixes);
});
