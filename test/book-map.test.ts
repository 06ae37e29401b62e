// book/preparation.md's map of src/ (the table under "P:030 The machine in
// this book") must describe the tree as it is: every folder and file it
// names exists, and every folder in src/ has a row.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");

interface MapRow {
  part: string;
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
    return { part: cells[0], places: ticked(cells[1]), names: ticked(cells[2]) };
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
