// Every TUI tutorial in the book (book/tui-*.md), and the screens of the
// TUI's chapter (book/tui.md), run in a real terminal:
// each step's keys are sent, and each of its screens must then appear and
// each of its checks hold. TUTORIAL_SHOW=1 prints the screen at every step.
// TUTORIAL_UPDATE=1 re-records the numbers in the screen blocks after the
// Guest's image has changed (the words must still match; the prose around
// them is for a person to read again).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repository, shownValue, Terminal } from "./helpers/terminal.ts";
import { writeFileSync } from "node:fs";
import { findOnScreen, keyPresses, parseTutorial, rerecord } from "./helpers/tutorial.ts";
import "./helpers/machine.ts"; // a machine of this file's own: its Guests are guest 0 (L:138)

const book = join(repository, "book");
const tutorials = readdirSync(book).filter((name) => /^tui-.+\.md$/.test(name)).sort();
/** The tutorials, and the TUI's own chapter, whose first screen is run the same way. */
const files = [...tutorials, "tui.md"];

let symbols: Map<string, number> | undefined;
/** The kernel's symbols as binutils' nm reads them. */
function symbol(name: string): number | undefined {
  symbols ??= new Map(execFileSync("nm", [join(repository, "images", "vmlinux")], { encoding: "utf8" })
    .split("\n").filter((row) => row !== "").map((row) => [row.split(" ")[2], parseInt(row.split(" ")[0], 16)]));
  return symbols.get(name);
}

/** "lguest_data - 0xc0000000": numbers and symbols, added and subtracted. */
function evaluate(expression: string): number {
  let total = 0;
  for (const [, sign, term] of expression.matchAll(/([+-]?)\s*([A-Za-z_][\w.]*|0x[0-9a-fA-F]+|\d+)/g)) {
    const value = /^(0x|\d)/.test(term) ? Number(term) : symbol(term);
    if (value === undefined) throw new Error(`no symbol ${term}`);
    total += sign === "-" ? -value : value;
  }
  return total >>> 0;
}

test("TUTORIAL_UPDATE re-records a line from the row most like it, not the first that fits", () => {
  const tss = ["ring 0 stack  ss 0058  esp ffc01000", "ring 1 stack  ss 0069  esp c0116000", "ring 2 stack  ss 0000  esp 00000000"];
  assert.deepEqual(rerecord(["ring 1 stack  ss 0069  esp c0112000"], tss), ["ring 1 stack  ss 0069  esp c0116000"]);
  assert.equal(rerecord(["the words are gone"], tss), undefined);
});

test("there is a TUI tutorial for each part of the book", () => {
  assert.deepEqual(tutorials, ["tui-cpu.md", "tui-drivers.md", "tui-guest.md", "tui-host.md", "tui-launcher.md", "tui-switcher.md"]);
});

for (const file of files) {
  const tutorial = parseTutorial(readFileSync(join(book, file), "utf8"), file);
  describe(`the tutorial in book/${file}`, () => {
    let terminal: Terminal;
    before(() => {
      terminal = Terminal.lguest(tutorial.args, { width: 120, height: 40 });
    });
    const rerecorded = new Map<number, string[]>();
    after(() => {
      terminal.kill();
      if (rerecorded.size === 0) return;
      const lines = readFileSync(join(book, file), "utf8").split("\n");
      for (const [line, updated] of [...rerecorded].sort((a, b) => b[0] - a[0])) {
        const end = lines.indexOf("```", line);
        const old = lines.slice(line, end).filter((l) => l.trim() !== "");
        if (old.length !== updated.length) continue;
        lines.splice(line, end - line, ...updated);
      }
      writeFileSync(join(book, file), lines.join("\n"));
    });
    tutorial.steps.forEach((step, n) => {
      const what = step.keys === undefined ? "the starting screen" : `step ${n} (book/${file}:${step.line}): ${step.keys}`;
      test(what, async () => {
        if (step.keys === undefined) {
          await terminal.waitFor((rows) => rows[0].includes("? keys"), "the TUI to be up");
        } else {
          for (const press of keyPresses(step.keys)) {
            if (press.key !== undefined) terminal.keys(press.key);
            else terminal.type(press.text!);
          }
        }
        for (const screen of step.screens) {
          const what = `the screen of book/${file}:${screen.line} ("${screen.title}")`;
          if (process.env.TUTORIAL_UPDATE) {
            try {
              await terminal.waitFor((rows) => findOnScreen(screen.lines, rows) === undefined, what, 10);
            } catch {
              const updated = rerecord(screen.lines, terminal.screen());
              assert.ok(updated, `${what}: its words are not on the screen any more`);
              rerecorded.set(screen.line, updated);
            }
            continue;
          }
          await terminal.waitFor((rows) => findOnScreen(screen.lines, rows) === undefined,
            `${what}, which lacks: ${findOnScreen(screen.lines, terminal.screen())}`, 30);
        }
        const shown = terminal.screen();
        if (process.env.TUTORIAL_SHOW) console.log(`--- ${what}\n${shown.join("\n")}`);
        for (const check of step.checks) {
          const [name, expression] = check.claim.split("=").map((part) => part.trim());
          assert.equal(shownValue(shown, name)?.toString(16), evaluate(expression).toString(16), `book/${file}:${check.line}: ${check.claim}`);
        }
      });
    });
  });
}
