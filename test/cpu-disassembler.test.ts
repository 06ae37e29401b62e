// The disassembler against GNU objdump 2.40 (Debian 12), using the golden
// corpus in test/disasm/ (see its README.md for how it was made and for
// objdump's quirks). Every case whose instruction our opcode tables define
// must come out exactly as objdump printed it, text and length, in AT&T
// and in Intel syntax. Cases our tables do not define are counted and
// listed, not compared, so that each family of instructions joins the
// comparison by itself the day its table entries exist.
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
 * Instructions newer than the i686 that objdump finds in encodings the
 * i686 runs as something else (tzcnt is a bsf with an f3 prefix to us).
 */
const newerMeanings = new Set([
  "tzcnt", "lzcnt", "popcnt", "wbnoinvd", "endbr32", "rdsspd", "prefetchnta", "prefetcht0",
  "prefetcht1", "prefetcht2", "prefetch", "prefetchw", "prefetchwt1",
]);

/**
 * x87 forms that objdump decodes and our tables leave out on purpose:
 * SSE3's fisttp, and the 287's frstpm. We print them as (bad).
 */
const x87FormsTheI686Lacks = ["fisttp", "frstpm"];

/** Why a case is not compared with objdump, or undefined when it must match. */
function reasonToSkip(c: GoldenCase, insn: Insn, ours: Disassembly): string | undefined {
  // Every x87 escape byte is in our tables, and a form they leave out is
  // (bad) to objdump as well: those are compared, not skipped.
  const escape = insn.opcode >= 0xd8 && insn.opcode <= 0xdf;
  if (!insn.entry && !escape) return insn.exec === instructionTooLong ? "longer than 15 bytes" : "not in our tables";
  const objdumpName = mnemonicOf(c.text);
  if (ours.text.includes("(bad)") && x87FormsTheI686Lacks.some((name) => objdumpName.startsWith(name))) {
    return "objdump decodes an x87 form the i686 lacks (SSE3's fisttp, the 287's frstpm)";
  }
  const at = insn.prefixes.length;
  const opcode = c.bytes[at];
  const next = at + 1 < c.bytes.length ? c.bytes[at + 1] : 0;
  if ((opcode === 0xc4 || opcode === 0xc5 || opcode === 0x62) && next >= 0xc0) {
    return "objdump reads a VEX or EVEX prefix (an invalid les, lds or bound to us)";
  }
  if (insn.lock && (insn.opcode === 0x120 || insn.opcode === 0x122)) {
    return "objdump reads lock mov %crN as AMD's %cr(N+8)";
  }
  if (newerMeanings.has(objdumpName)) return "objdump decodes an instruction newer than the i686";
  const mandatory = insn.prefixes.some((byte) => byte === 0x66 || byte === 0xf2 || byte === 0xf3);
  if (insn.opcode > 0xff && mandatory && c.text.endsWith("(bad)") && !ours.text.endsWith("(bad)")) {
    return "objdump rejects a 66/f2/f3 prefix that the i686 ignores";
  }
  if (ours.text.endsWith("(bad)") && !c.text.includes("(bad)")) {
    return "invalid on the i686; objdump decodes a newer instruction";
  }
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
    const reason = reasonToSkip(c, decodeCase(c.bytes), ours);
    if (reason) {
      const names = result.skipped.get(reason) ?? new Map<string, number>();
      const name = mnemonicOf(c.text);
      names.set(name, (names.get(name) ?? 0) + 1);
      result.skipped.set(reason, names);
      result.skippedCount++;
      continue;
    }
    result.compared++;
    if (ours.text !== c.text || ours.length !== c.length) {
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
  test(`${file}: every instruction our tables define prints as objdump prints it`, (t) => {
    const result = compare(readGolden(file), syntax);
    for (const line of summary(file, result)) t.diagnostic(line);
    assert.ok(result.compared > 0, "some cases were compared");
    assert.deepEqual(result.mismatches.slice(0, 25), [], `${result.mismatches.length} mismatches`);
  });
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
