// The TUI tutorials are written in the book as runnable steps, in fenced
// blocks whose language says what they are:
//
//   ```sh        the command that starts it: npx tsx lguest --tui ... (the
//                last such block before the first keys block)
//   ```keys      what to press: tmux key names (Enter, Escape, Tab, Space,
//                BSpace, Up, Down, PageUp, PageDown, C-x, ...) are keys,
//                anything else is typed as it stands, and "quoted text" is
//                typed with its spaces
//   ```screen T  what the screen then shows: every line of the block is on
//                the screen, in this order, each on a later row than the
//                one before; "…" stands for anything
//   ```check     claims about the values shown, against the kernel's
//                symbol table: "edx = lguest_data - 0xc0000000" means the
//                eight hex digits after "edx" on the screen equal that
//
// A keys block starts a step; the screens and checks after it belong to it.
// The screens before the first keys block are the starting screen.

export interface TutorialStep {
  /** The keys block, as written; undefined for the starting screen. */
  keys?: string;
  screens: { title: string; lines: string[]; line: number }[];
  checks: { claim: string; line: number }[];
  line: number;
}

export interface Tutorial {
  /** The arguments of lguest (after `npx tsx lguest`). */
  args: string[];
  steps: TutorialStep[];
}

export function parseTutorial(markdown: string, file: string): Tutorial {
  const lines = markdown.split("\n");
  let args: string[] | undefined;
  const steps: TutorialStep[] = [{ screens: [], checks: [], line: 1 }];
  for (let at = 0; at < lines.length; at++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[at]);
    if (open === null) continue;
    const start = at;
    const body: string[] = [];
    for (at++; at < lines.length && lines[at] !== "```"; at++) body.push(lines[at]);
    const [language, rest] = [open[1], open[2]];
    const current = steps[steps.length - 1];
    if (language === "sh" && steps.length === 1 && body.some((l) => l.startsWith("npx tsx lguest "))) {
      args = splitCommand(body.find((l) => l.startsWith("npx tsx lguest "))!.slice("npx tsx lguest ".length));
    } else if (language === "keys") {
      steps.push({ keys: body.join(" "), screens: [], checks: [], line: start + 1 });
    } else if (language === "screen") {
      current.screens.push({ title: rest, lines: body.map((l) => l.trim()).filter((l) => l !== ""), line: start + 1 });
    } else if (language === "check") {
      for (const [k, claim] of body.entries()) if (claim.trim() !== "") current.checks.push({ claim: claim.trim(), line: start + 2 + k });
    }
  }
  if (args === undefined) throw new Error(`${file}: no \`\`\`sh block with npx tsx lguest ...`);
  return { args, steps };
}

function splitCommand(text: string): string[] {
  return [...text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

const keyNames = /^(Enter|Escape|Tab|Space|BSpace|Up|Down|Left|Right|PageUp|PageDown|Home|End|F\d{1,2}|[CM]-.)$/;

/** The keys block as tmux send-keys calls: a key name, or literal text. */
export function keyPresses(keys: string): { key?: string; text?: string }[] {
  return [...keys.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => {
    if (m[1] !== undefined) return { text: m[1] };
    return keyNames.test(m[2]) ? { key: m[2] } : { text: m[2] };
  });
}

/** Whether every line of a screen block is on the screen, in order; the first line that is not, if any. */
export function findOnScreen(expected: string[], screen: string[]): string | undefined {
  let row = -1;
  for (const line of expected) {
    const pattern = new RegExp(line.split("…").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*?"));
    let found = -1;
    for (let r = row + 1; r < screen.length; r++) {
      if (pattern.test(screen[r])) {
        found = r;
        break;
      }
    }
    if (found < 0) return line;
    row = found;
  }
  return undefined;
}

/**
 * For re-recording a tutorial after the Guest's image changed: each line
 * of a screen block with its numbers loosened (hex and decimal numbers of
 * the same shape match any), matched in order against the screen; the
 * lines as the screen now has them, or undefined if the words no longer
 * match.
 */
export function rerecord(expected: string[], screen: string[]): string[] | undefined {
  const updated: string[] = [];
  let row = -1;
  for (const line of expected) {
    const loose = line.split("…").map((part) => part.replace(
      /0x[0-9a-f]+|(?<![\w])(?=[0-9a-f]*\d)[0-9a-f]+(?![\w])|[.*+?^${}()|[\]\\]/g,
      (token) => {
        if (token.startsWith("0x")) return "0x[0-9a-f]+";
        if (/^[0-9a-f]+$/.test(token)) {
          return /^\d+$/.test(token) && token.length !== 2 && token.length !== 4 && token.length !== 8 ? "\\d+" : `[0-9a-f]{${token.length}}`;
        }
        return "\\" + token;
      })).join(".*?");
    const pattern = new RegExp(loose);
    // Of the later rows that match, the one most like the old line: a
    // digit that is a word ("ring 1") matches any digit, and the first
    // match may be a neighbour ("ring 0").
    let best: { row: number; text: string; alike: number } | undefined;
    for (let candidate = row + 1; candidate < screen.length; candidate++) {
      const found = pattern.exec(screen[candidate]);
      if (found === null) continue;
      const alike = [...found[0]].filter((char, k) => line[k] === char).length;
      if (best === undefined || alike > best.alike) best = { row: candidate, text: found[0], alike };
    }
    if (best === undefined) return undefined;
    row = best.row;
    updated.push(line.includes("…") ? line : best.text);
  }
  return updated;
}
