// Every native reference vector (test/cpu/vectors/, recorded on the real
// CPU; see test/cpu/native/README.md) replayed on our CPU: results,
// defined flags and memory must agree exactly. Flags the SDM calls
// undefined must agree too, except after div and idiv, where this CPU's
// values follow no rule we could find (book/cpu-muldiv.md explains), and in
// the files QEMU recorded (qemu-*), where QEMU's undefined flags prove
// nothing about a real processor.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadDescriptorTables, readVectors, replay, vectorFiles, vectorMachine } from "./cpu/vectors.ts";

const undefinedFlagsMasked = /^i?div /;
const cpu = vectorMachine();

for (const file of vectorFiles()) {
  test(`${file}: every vector agrees with the reference`, () => {
    const { header, vectors } = readVectors(file);
    const cpl = typeof header.cpl === "number" ? header.cpl : 0;
    loadDescriptorTables(cpu, header);
    const failures: string[] = [];
    for (const vector of vectors) {
      const masked = (form: string) => file.startsWith("qemu-") || undefinedFlagsMasked.test(form);
      const problems = replay(cpu, vector, cpl).filter((p) => !(p.undefinedOnly && masked(p.form)));
      if (problems.length > 0 && failures.length < 20) {
        failures.push(`${vector.form} [${vector.code}]: ${problems.map((p) => p.what).join("; ")}`);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} vectors differ`);
    assert.ok(vectors.length > 0);
  });
}
