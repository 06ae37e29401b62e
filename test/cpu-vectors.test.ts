// Every native reference vector (test/cpu/vectors/, recorded on the real
// CPU; see test/cpu/native/README.md) replayed on our CPU: results,
// defined flags and memory must agree exactly. Flags the SDM calls
// undefined must agree too, except after div and idiv, where this CPU's
// values follow no rule we could find (book/cpu-muldiv.md explains).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readVectors, replay, vectorFiles, vectorMachine } from "./cpu/vectors.ts";

const undefinedFlagsMasked = /^i?div /;
const cpu = vectorMachine();

for (const file of vectorFiles()) {
  test(`${file}: every vector agrees with the reference`, () => {
    const { vectors } = readVectors(file);
    const failures: string[] = [];
    for (const vector of vectors) {
      const problems = replay(cpu, vector).filter((p) => !(p.undefinedOnly && undefinedFlagsMasked.test(p.form)));
      if (problems.length > 0 && failures.length < 20) {
        failures.push(`${vector.form} [${vector.code}]: ${problems.map((p) => p.what).join("; ")}`);
      }
    }
    assert.deepEqual(failures, [], `${failures.length} vectors differ`);
    assert.ok(vectors.length > 0);
  });
}
