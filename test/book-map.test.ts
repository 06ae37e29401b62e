// book/preparation.md's map of src/ (the table under "P:030 The machine in
// this book") must describe the tree as it is: every folder and file it
// names exists, every folder in src/ has a row, and every file in src/ is
// tangled from the chapters of the part whose row holds it, so that src/ and
// the contents have the same shape. The same section's promises about the
// code are held here too: the machine uses no Node APIs, and the CPU's
// instruction families take their helpers from small modules, never from
// cpu.ts or from one another.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, normalize } from "node:path";

const root = join(import.meta.dirname, "..");

interface MapRow {
  part: string;
  /** The chapter the part's name links to, from the root ("book/guest.md", "lguest.ts.md"). */
  chapter: string | undefined;
  /** The paths in "Where it lives": folders end with "/". */
  places: string[];
  /** Path-like names in "What it is": with a "/" from the root, else inside one of the places. */
  names: string[];
}

/** The rows of the map table, read from the book. */
function readMap(): MapRow[] {
  const text = readFileSync(join(root, "book", "preparation.md"), "utf8");
  const section = text.split(/^## /m).find((part) => part.startsWith("P:030"));
  assert.ok(section, "preparation.md has its section P:030 with the map");
  const rows = section.split("\n").filter((line) => line.startsWith("|") && !/^\|\s*(Part|-)/.test(line));
  const pathLike = (token: string) => token.endsWith("/") || /^[\w./-]+\.(ts|c|h|S|ld|md)$/.test(token);
  const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]).filter(pathLike);
  return rows.map((line) => {
    const cells = line.split("|").slice(1, -1).map((cell) => cell.trim());
    assert.equal(cells.length, 3, `a map row has three cells: ${line}`);
    const link = /\]\(([^)#]+)/.exec(cells[0]);
    const chapter = link ? normalize(join("book", link[1])) : undefined;
    return { part: cells[0].replace(/\[([^\]]*)\]\([^)]*\)/, "$1"), chapter, places: ticked(cells[1]), names: ticked(cells[2]) };
  });
}

function isFolder(path: string): boolean {
  return existsSync(join(root, path)) && statSync(join(root, path)).isDirectory();
}

function isFile(path: string): boolean {
  return existsSync(join(root, path)) && statSync(join(root, path)).isFile();
}

const exists = (path: string) => (path.endsWith("/") ? isFolder(path) : isFile(path));

test("the map has rows, each saying where its part lives", () => {
  const rows = readMap();
  assert.ok(rows.length >= 5, `the map has ${rows.length} rows`);
  for (const row of rows) assert.ok(row.places.length > 0, `${row.part}: a place in "Where it lives"`);
});

test("every folder and file the map names exists", () => {
  const missing: string[] = [];
  for (const row of readMap()) {
    for (const place of row.places) if (!exists(place)) missing.push(`${row.part}: ${place}`);
    const folders = row.places.filter((place) => place.endsWith("/"));
    for (const name of row.names) {
      const found = name.includes("/") ? exists(name) : folders.some((folder) => exists(folder + name));
      if (!found) missing.push(`${row.part}: ${name}${name.includes("/") ? "" : ` (in ${folders.join(" or ")})`}`);
    }
  }
  assert.deepEqual(missing, [], "named on the map but not in the tree");
});

test("every folder in src/ is on the map", () => {
  const places = new Set(readMap().flatMap((row) => row.places));
  const folders = readdirSync(join(root, "src"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => `src/${entry.name}/`);
  assert.ok(folders.length > 0);
  assert.deepEqual(folders.filter((folder) => !places.has(folder)), [], "folders of src/ the map leaves out");
});

/** Each top-level chapter of book/contents.md with the chapters listed under it, from the root. */
function contentsParts(): Map<string, Set<string>> {
  const parts = new Map<string, Set<string>>();
  let current: Set<string> | undefined;
  for (const line of readFileSync(join(root, "book", "contents.md"), "utf8").split("\n")) {
    const entry = /^(\s*)(?:\d+\.|-) \[[^\]]*\]\(([^)#]+)\)/.exec(line);
    if (!entry) continue;
    const chapter = normalize(join("book", entry[2]));
    if (entry[1] === "") parts.set(chapter, (current = new Set([chapter])));
    else current?.add(chapter);
  }
  return parts;
}

/** Every file below `folder`, from the root. */
function filesBelow(folder: string): string[] {
  return readdirSync(join(root, folder), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesBelow(`${folder}${entry.name}/`) : [`${folder}${entry.name}`]);
}

/** The book files a tangled file says it comes from. */
function tangledFrom(file: string): string[] {
  const header = /Tangled from (.+?) by `npm run tangle`/.exec(readFileSync(join(root, file), "utf8").split("\n")[0]);
  return header ? header[1].split(", ") : [];
}

test("every row's part links to a chapter of the contents", () => {
  const parts = contentsParts();
  for (const row of readMap()) {
    assert.ok(row.chapter, `${row.part}: the part's name links to its chapter`);
    assert.ok(parts.has(row.chapter), `${row.part}: ${row.chapter} is a chapter of the contents`);
  }
});

test("every file in src/ is written in the chapters of the part whose row holds it", () => {
  const rows = readMap();
  const parts = contentsParts();
  const misplaced: string[] = [];
  for (const file of ["lguest.ts", ...filesBelow("src/")]) {
    // The most specific place wins: the file itself, else the deepest folder holding it.
    const holds = (place: string) => place === file || (place.endsWith("/") && file.startsWith(place));
    const depth = (place: string) => (place === file ? Infinity : place.length);
    const best = Math.max(...rows.flatMap((row) => row.places.filter(holds).map(depth)));
    const owners = rows.filter((row) => row.places.some((place) => holds(place) && depth(place) === best));
    const chapters = new Set(owners.flatMap((row) => [...(parts.get(row.chapter ?? "") ?? [])]));
    const sources = tangledFrom(file);
    if (sources.length === 0) misplaced.push(`${file}: not tangled from the book`);
    for (const source of sources) {
      if (!chapters.has(source)) misplaced.push(`${file}: from ${source}, not in ${owners.map((row) => row.part).join(" or ") || "any row"}`);
    }
  }
  assert.deepEqual(misplaced, [], "files whose chapter is not in the part the map gives them");
});

/** The modules a TypeScript file imports values from (not `import type`), as paths from the root. */
function valueImports(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  return [...text.matchAll(/^import (?!type )[^;]*?from "([^"]+)";/gms)].map((m) =>
    m[1].startsWith(".") ? normalize(join(file, "..", m[1])) : m[1]);
}

test("the machine (src/cpu, src/host, src/devices) reaches no Node module through its imports", () => {
  const machine = ["src/cpu/", "src/host/", "src/devices/"].flatMap(filesBelow).filter((file) => file.endsWith(".ts"));
  const problems: string[] = [];
  for (const start of machine) {
    const seen = new Set<string>();
    const walk = (file: string, path: string[]): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const imported of valueImports(file)) {
        if (imported.startsWith("node:") || !imported.includes("/")) problems.push(`${[...path, file].join(" -> ")} imports ${imported}`);
        else walk(imported, [...path, file]);
      }
    };
    walk(start, []);
    const code = readFileSync(join(root, start), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    for (const global of code.matchAll(/\b(process|Buffer|require|__dirname)\s*[.(]/g)) problems.push(`${start} uses ${global[1]}`);
  }
  assert.deepEqual([...new Set(problems)], [], "Node in the machine");
});

test("the CPU's instruction families import no helper from cpu.ts or from one another", () => {
  const files = filesBelow("src/cpu/").filter((file) => file.endsWith(".ts"));
  // A family gives the decoder an OpcodeFragment. segments.ts and interrupts.ts also hold
  // protected-mode machinery that the families share, so they may be imported; the rest may not.
  const families = files.filter((file) => /export const \w+Opcodes: OpcodeFragment/.test(readFileSync(join(root, file), "utf8")));
  const machinery = new Set(["src/cpu/segments.ts", "src/cpu/interrupts.ts"]);
  assert.ok(families.length >= 10, `${families.length} families`);
  const problems: string[] = [];
  for (const family of families) {
    for (const imported of valueImports(family)) {
      if (imported === "src/cpu/cpu.ts") problems.push(`${family} imports from cpu.ts`);
      else if (families.includes(imported) && !machinery.has(imported)) problems.push(`${family} imports from ${imported}`);
    }
  }
  assert.deepEqual(problems, []);
});
