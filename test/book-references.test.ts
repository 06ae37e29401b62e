// The book cites its appendix, book/interface.md, as "spec 8.5". These tests
// keep every such citation pointing at a section that exists, in the one form
// the site's renderer turns into a link (interface.html#spec-8.5), and keep
// the Markdown links between chapters pointing at files and headings that
// exist.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const INTERFACE = "book/interface.md";

/** The numbered sections of the appendix: "8" for "## 8 ...", "8.5" for "### 8.5 ...". */
export function interfaceSections(text: string): Set<string> {
  const sections = new Set<string>();
  for (const match of text.matchAll(/^#{2,3} (\d+(?:\.\d+)?) \S/gm)) sections.add(match[1]);
  return sections;
}

/** A citation in the one accepted form: "spec 8.5", "spec 4", or a range "spec 1.2-1.5". */
const citation = /\bspec (\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?(?![\d.]*\d)/g;

/** Forms the renderer would not link, each with a name for the failure message. */
const bareForms: { name: string; pattern: RegExp }[] = [
  { name: '"section N" instead of "spec N"', pattern: /\bsections? \d+(?:\.\d+)?/gi },
  { name: '"spec section N"', pattern: /\bspec(?:ification)?(?:'s)? sections?\b/gi },
  { name: '"Spec N" with a capital', pattern: /\bSpec \d/g },
  { name: '"spec" and its number on different lines', pattern: /\bspec[ \t]*\r?\n[ \t]*(?:[*/#]+[ \t]*)?\(?\d/g },
  { name: "a bare section number in parentheses", pattern: /\((?:spec's )?\d{1,2}\.\d{1,2}(?: [ab])?(?:[,;] ?\d{1,2}\.\d{1,2})*\)/g },
  {
    name: 'a second number after a citation without its own "spec"',
    pattern: /\bspec \d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?(?: [ab])?(?:,| and| or| to|;)\s+\d+\.\d+/g,
  },
  { name: '"spec N.N to N.N" (write "spec N.N-N.N")', pattern: /\bspec \d+(?:\.\d+)? to \d/g },
];

export interface Reference {
  file: string;
  line: number;
  text: string;
}

export function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** Every citation in `text`, whether or not its section exists. */
export function citations(file: string, text: string): (Reference & { first: string; last?: string })[] {
  return [...text.matchAll(citation)].map((match) => ({
    file, line: lineOf(text, match.index), text: match[0], first: match[1], last: match[2],
  }));
}

/** Every reference the renderer would not turn into a link. */
export function bareReferences(file: string, text: string): (Reference & { form: string })[] {
  const found: (Reference & { form: string })[] = [];
  for (const { name, pattern } of bareForms) {
    for (const match of text.matchAll(pattern)) {
      found.push({ file, line: lineOf(text, match.index), text: match[0].replace(/\s+/g, " "), form: name });
    }
  }
  return found;
}

function bookFiles(): string[] {
  return [
    ...readdirSync("book").filter((name) => name.endsWith(".md")).map((name) => `book/${name}`),
    "lguest.ts.md",
  ];
}

function sourceFiles(folder: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(folder)) {
    const path = join(folder, entry);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (/\.(ts|c|h|S|ld)$/.test(entry)) files.push(path);
  }
  return files;
}

const sections = interfaceSections(readFileSync(INTERFACE, "utf8"));

function compareSections(a: string, b: string): number {
  const [a1, a2 = "0"] = a.split("."), [b1, b2 = "0"] = b.split(".");
  return Number(a1) - Number(b1) || Number(a2) - Number(b2);
}

test("the appendix numbers its sections as the shared spec does: 1 to 9, the constant index 12, the choices 13", () => {
  for (const number of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "12", "13"]) {
    assert.ok(sections.has(number), `book/interface.md has no "## ${number} ..." heading`);
  }
  for (const number of ["1.6", "2.7", "3.3", "5.12", "6.5", "7.9", "8.6", "9.3", "13.6"]) {
    assert.ok(sections.has(number), `book/interface.md has no "### ${number} ..." heading`);
  }
  const text = readFileSync(INTERFACE, "utf8");
  let chapter = "";
  for (const match of text.matchAll(/^(#{2,3}) (\d+)(?:\.(\d+))? /gm)) {
    if (match[1] === "##") {
      assert.equal(match[3], undefined, `"## ${match[2]}.${match[3]}" should be a ### heading`);
      chapter = match[2];
    } else {
      assert.equal(match[2], chapter, `"### ${match[2]}.${match[3]}" sits under "## ${chapter}"`);
    }
  }
});

/** Citations of sections the appendix does not have, or ranges that do not go upwards. */
export function unknownCitations(file: string, text: string, known: Set<string>): string[] {
  const problems: string[] = [];
  for (const reference of citations(file, text)) {
    for (const number of [reference.first, reference.last]) {
      if (number !== undefined && !known.has(number)) {
        problems.push(`${reference.file}:${reference.line}: "${reference.text}": no section ${number} in ${INTERFACE}`);
      }
    }
    if (reference.last !== undefined && compareSections(reference.first, reference.last) >= 0) {
      problems.push(`${reference.file}:${reference.line}: "${reference.text}": a range must go upwards`);
    }
  }
  return problems;
}

test("every spec citation in the book and in src/ names a section of the appendix", () => {
  const files = [...bookFiles(), ...sourceFiles("src"), "lguest.ts"];
  const texts = files.map((file) => [file, readFileSync(file, "utf8")] as const);
  assert.deepEqual(texts.flatMap(([file, text]) => unknownCitations(file, text, sections)), []);
  const count = texts.reduce((n, [file, text]) => n + citations(file, text).length, 0);
  assert.ok(count > 400, `only ${count} citations found: is the pattern still right?`);
});

test("no reference to the spec is in a form the renderer would not link", () => {
  const bare = bookFiles().flatMap((file) => bareReferences(file, readFileSync(file, "utf8")));
  assert.deepEqual(bare.map((b) => `${b.file}:${b.line}: ${b.form}: "${b.text}"`), []);
});

test("the checks catch what they are meant to catch", () => {
  const sample = [
    "As spec 8.5 says, and spec 1.2-1.5 too, the host (spec 5.4 a) binds;",
    "see section 8.5, spec section 3.3, Spec 4, and spec",
    "5.2, the window (5.10), the pair (7.4, 7.7), spec 3.3, 6.3 and spec 7.5 to 7.9.",
  ].join("\n");
  assert.deepEqual(citations("x", sample).map((c) => c.text), ["spec 8.5", "spec 1.2-1.5", "spec 5.4", "spec 3.3", "spec 7.5"]);
  assert.deepEqual(bareReferences("x", sample).map((b) => b.text).sort(), [
    "(5.10)", "(7.4, 7.7)", "Spec 4", "section 3.3", "section 8.5", "spec 3.3, 6.3", "spec 5", "spec 7.5 to 7",
    "spec 7.5 to 7.9", "spec section",
  ].sort());
  assert.deepEqual(unknownCitations("x", "spec 8.5, spec 8.7, spec 15, spec 1.5-1.2, spec 2.1-2.7", sections), [
    'x:1: "spec 8.7": no section 8.7 in book/interface.md',
    'x:1: "spec 15": no section 15 in book/interface.md',
    'x:1: "spec 1.5-1.2": a range must go upwards',
  ]);
});

/** The prose of a chapter: its lines with fenced code blocks blanked out (so line numbers stay). */
export function proseLines(text: string): string[] {
  const lines = text.split("\n");
  let fence: string | undefined;
  return lines.map((line) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined) {
      if (marker && !(marker[0] === "`" && line.slice(line.indexOf(marker) + marker.length).includes("`"))) fence = marker;
      else return line;
    } else if (marker && marker[0] === fence[0] && marker.length >= fence.length && /^ {0,3}[`~]+\s*$/.test(line)) {
      fence = undefined;
    }
    return "";
  });
}

/**
 * The ids a chapter's headings get on the site: a journey label ("H:500") is
 * its own id, an appendix section "8.5" is "spec-8.5", and every other
 * heading is slugged the GitHub way (lowercase, punctuation dropped, spaces
 * to hyphens, a repeated slug numbered -1, -2...).
 */
export function headingIds(text: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const title = heading[1];
    const label = /^([A-Z]:\d{3})\b/.exec(title);
    const section = /^(\d+(?:\.\d+)?) /.exec(title);
    if (label || section) {
      ids.add(label ? label[1] : `spec-${section![1]}`);
      continue;
    }
    const plain = title.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/[`*]/g, "");
    const slug = plain.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    ids.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return ids;
}

/** Relative links to chapters ("cpu-paging.md#the-page-walk") in a chapter's prose. */
export function chapterLinks(file: string, text: string): (Reference & { target: string; fragment?: string })[] {
  const prose = proseLines(text).join("\n");
  const links: (Reference & { target: string; fragment?: string })[] = [];
  for (const match of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    const href = match[1];
    if (/^[a-z]+:/.test(href)) continue;
    const [path, fragment] = href.split("#");
    if (path !== "" && !path.endsWith(".md")) continue;
    const base = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
    const target = path === "" ? file : join(base, path);
    links.push({ file, line: lineOf(prose, match.index), text: href, target, fragment });
  }
  return links;
}

test("every link between chapters names a chapter that exists, and a heading in it", () => {
  const broken: string[] = [];
  const ids = new Map<string, Set<string>>();
  let count = 0;
  for (const file of bookFiles()) {
    for (const link of chapterLinks(file, readFileSync(file, "utf8"))) {
      count++;
      let targetIds = ids.get(link.target);
      if (!targetIds) {
        try {
          targetIds = headingIds(readFileSync(link.target, "utf8"));
        } catch {
          broken.push(`${link.file}:${link.line}: (${link.text}): no file ${link.target}`);
          continue;
        }
        ids.set(link.target, targetIds);
      }
      if (link.fragment !== undefined && !targetIds.has(link.fragment)) {
        broken.push(`${link.file}:${link.line}: (${link.text}): ${link.target} has no heading with id "${link.fragment}"`);
      }
    }
  }
  assert.deepEqual(broken, []);
  assert.ok(count > 100, `only ${count} links found: is the pattern still right?`);
});

test("heading ids and links are read the way the site makes them", () => {
  const chapter = [
    "# The CPU, protected: paging", "## H:500 I/O with two hypercalls", "### 8.5 struct lguest_dma and BIND_DMA",
    "## Model-specific registers, sysenter and sysexit", "### The Switcher's 4 MiB", "### `iret`", "## Tables", "## Tables",
    "```c", "#include \"guest.h\"", "```", "See [the walk](cpu-paging.md#the-page-walk) and [here](#tables-1).",
  ].join("\n");
  assert.deepEqual([...headingIds(chapter)].sort(), [
    "H:500", "iret",
    "model-specific-registers-sysenter-and-sysexit", "spec-8.5", "tables", "tables-1", "the-cpu-protected-paging",
    "the-switchers-4-mib",
  ].sort());
  assert.deepEqual(chapterLinks("book/x.md", chapter).map((l) => [l.target, l.fragment, l.line]), [
    ["book/cpu-paging.md", "the-page-walk", 12], ["book/x.md", "tables-1", 12],
  ]);
});
