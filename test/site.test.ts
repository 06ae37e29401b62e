// The book's website (book/building.md, "Reading it as a book"). The book is
// built once into a temporary folder; the HTML is walked as text first
// (links, anchors, spec references, cross-references, the index), then every
// page is opened in a real browser, Debian's Chromium driven by
// playwright-core, which checks what only a browser can: that pages load
// without errors, that links land on elements that exist in the DOM, and that
// figures are drawn. Screenshots of three pages go to build/screenshots/.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { BookProblems, renderBook } from "../src/literate/render.ts";
import { readContents } from "../src/literate/contents.ts";
import { readBlocks } from "../src/literate/blocks.ts";

const chromium = "/usr/bin/chromium";
let out = "";
const pages = new Map<string, string>();

before(async () => {
  out = mkdtempSync(join(tmpdir(), "lguest-site-"));
  await renderBook(process.cwd(), out);
  for (const name of readdirSync(out).filter((file) => file.endsWith(".html")).sort()) {
    pages.set(name, readFileSync(join(out, name), "utf8"));
  }
});

after(() => {
  rmSync(out, { recursive: true, force: true });
});

/** Every id on a page. */
const idsOf = (html: string) => [...html.matchAll(/\sid="([^"]*)"/g)].map((found) => found[1]);

/** Every href and src on a page, with the page it is on. */
const linksOf = (html: string) =>
  [...html.matchAll(/\s(?:href|src)="([^"]*)"/g)].map((found) => found[1].replace(/&amp;/g, "&"));

/** The visible text of some HTML with everything inside links cut out. */
const textOutsideLinks = (html: string) =>
  html.replace(/<a\b[^>]*>[\s\S]*?<\/a>/g, " ").replace(/<[^>]*>/g, "").replace(/&[a-z#0-9]+;/g, " ");

test("there is a page for every chapter of the contents, the contents and the index", () => {
  const chapters = readContents(readFileSync("book/contents.md", "utf8"));
  const expected = ["book/contents.md", ...chapters].map((file) => posix.basename(file).replace(/\.md$/, ".html"));
  for (const page of expected) assert.ok(pages.has(page), `${page} is missing`);
  assert.ok(pages.has("book-index.html") && pages.has("index.html"));
  assert.equal(pages.size, expected.length + 2);
});

test("every link and image between pages lands on a file and an id that exist", () => {
  const broken: string[] = [];
  for (const [page, html] of pages) {
    const ids = idsOf(html);
    assert.equal(new Set(ids).size, ids.length, `${page} gives an id twice`);
    for (const link of linksOf(html)) {
      if (/^[a-z]+:/i.test(link)) continue;
      const [file, anchor] = link.split("#");
      const target = file === "" ? page : posix.normalize(file);
      if (!existsSync(join(out, target))) {
        broken.push(`${page}: ${link} (no such file)`);
        continue;
      }
      if (anchor !== undefined && !idsOf(pages.get(target) ?? "").includes(decodeURIComponent(anchor))) {
        broken.push(`${page}: ${link} (no such anchor)`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

test("every heading has an id, and a journey label's heading is an anchor named after the label", () => {
  let labels = 0;
  for (const [page, html] of pages) {
    for (const heading of html.matchAll(/<h([1-6])([^>]*)>([\s\S]*?)<\/h\1>/g)) {
      const id = /\sid="([^"]+)"/.exec(heading[2])?.[1];
      assert.ok(id, `${page}: a heading without an id: ${heading[3].slice(0, 60)}`);
      const label = /^(?:<a[^>]*>)?([PGDLHSM]):(\d{3})\b/.exec(heading[3]);
      if (label) {
        labels++;
        assert.equal(id, `${label[1]}:${label[2]}`, `${page}: ${label[0]}`);
      }
    }
  }
  assert.ok(labels >= 100, `only ${labels} labelled headings`);
});

test("no journey label and no spec reference is left as plain text", () => {
  const plain: string[] = [];
  for (const [page, html] of pages) {
    const text = textOutsideLinks(html);
    for (const found of text.matchAll(/\bspec(?:ification)?(?:\s+sections?)?\s+\d[\d.]*/g)) plain.push(`${page}: "${found[0]}"`);
    for (const found of text.matchAll(/\b[PGDLHSM]:\d{3}\b/g)) plain.push(`${page}: "${found[0]}"`);
  }
  assert.deepEqual(plain, []);
});

test("spec references link to the interface appendix's numbered sections, in prose and in code", () => {
  const sections = new Set(idsOf(pages.get("interface.html")!).filter((id) => id.startsWith("spec-")));
  assert.ok(sections.has("spec-8.5") && sections.has("spec-3.3"));
  let inCode = 0;
  let total = 0;
  for (const [, html] of pages) {
    for (const link of html.matchAll(/<a class="spec" href="(?:interface\.html)?#(spec-[\d.]+)">/g)) {
      total++;
      assert.ok(sections.has(link[1]), link[1]);
    }
    for (const pre of html.matchAll(/<pre class="code">([\s\S]*?)<\/pre>/g)) inCode += (pre[1].match(/<a class="spec"/g) ?? []).length;
  }
  assert.ok(total > 200, `only ${total} spec links`);
  assert.ok(inCode > 20, `only ${inCode} spec links inside code`);
});

test("every chunk of the program is on a page, with its cross-references", () => {
  const chapters = ["book/contents.md", ...readContents(readFileSync("book/contents.md", "utf8"))];
  const blocks = chapters.flatMap((file) => readBlocks(file, readFileSync(file, "utf8"), []));
  const figures = [...pages.values()].flatMap((html) => [...html.matchAll(/<figure class="chunk" id="([^"]+)">([\s\S]*?)<\/figure>/g)]);
  assert.equal(figures.length, blocks.length, "one figure per tangled block");
  for (const [, id, inner] of figures) {
    const caption = /<figcaption>([\s\S]*?)<\/figcaption>/.exec(inner)![1];
    const count = /(\d+) of (\d+)/.exec(caption);
    const [index, total] = count ? [Number(count[1]), Number(count[2])] : [1, 1];
    const xref = /<p class="xref">([\s\S]*?)<\/p>/.exec(inner)?.[1] ?? "";
    const named = caption.includes('class="sign"');
    if (named) assert.match(xref, /<span class="used">Used in <a href="[^"]+">/, `${id}: used in`);
    else if (total === 1) assert.match(xref, /The whole of/, `${id}: a file in one part`);
    if (index > 1) assert.match(xref, /<span class="defined">(?:Defined|This file starts) in <a href=/, `${id}: defined in`);
    if (index < total) assert.match(xref, /<span class="continued">Continued in <a href=/, `${id}: continued in`);
    const code = /<pre class="code">([\s\S]*?)<\/pre>/.exec(inner)![1];
    const references = code.split("\n").filter((line) => /^\s*&lt;&lt;.+&gt;&gt;\s*$/.test(line.replace(/<[^>]*>/g, ""))).length;
    const linked = (code.match(/<a class="chunkref" href="[^"]+">&lt;&lt;/g) ?? []).length;
    assert.equal(linked, references, `${id}: every chunk reference in the code is a link`);
  }
});

test("code is highlighted at build time in every language the program is written in", () => {
  const colored = (language: string) => [...pages.values()].some((html) =>
    new RegExp(`<code class="language-${language}">[^]*?<span class="h[0-9a-f]{6}`).test(html));
  for (const language of ["ts", "c", "asm", "sh", "ld", "css"]) assert.ok(colored(language), language);
  assert.ok(!/<script/i.test([...pages.values()].join("")), "no page needs JavaScript");
  const css = readFileSync(join(out, "book.css"), "utf8");
  for (const used of new Set([...pages.values()].flatMap((html) => [...html.matchAll(/class="(h[0-9a-f]{6}(?:-\d)?)"/g)].map((m) => m[1])))) {
    assert.ok(css.includes(`.${used} {`), `book.css colours .${used}`);
  }
});

test("the index lists every exported name of src/ and every function of the Guest, and nothing else", async () => {
  const index = pages.get("book-index.html")!;
  const indexed = new Set([...index.matchAll(/<li><a href="[^"]+"><code>([^<]+)<\/code><\/a> <span class="kind">/g)].map((m) => m[1]));
  const walk = (folder: string): string[] => readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(folder, entry.name)) : [join(folder, entry.name)]);
  const defined = new Map<string, string>();
  for (const file of [...walk("src"), "lguest.ts"]) {
    const text = readFileSync(file, "utf8");
    const add = (names: Iterable<string>) => {
      for (const name of names) defined.set(name, file);
    };
    if (file.endsWith(".ts")) {
      // What a module really exports at run time (lguest.ts runs when imported, so it is read instead),
      // and the types the compiler erases.
      add(file === "lguest.ts"
        ? [...text.matchAll(/^export (?:async )?(?:function|const|let|class) (\w+)/gm)].map((m) => m[1])
        : Object.keys(await import(pathToFileURL(join(process.cwd(), file)).href)));
      add([...text.matchAll(/^export (?:interface|type) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]));
    } else if (/\.[ch]$/.test(file)) {
      add([...text.matchAll(/^(?:static |inline |const |unsigned |struct |enum )*\w+[\s*]+(\w+)\([^;]*$/gm)].map((m) => m[1]));
    } else if (file.endsWith(".S")) {
      add([...text.matchAll(/^\s*\.globl\s+(.*)$/gm)].flatMap((m) => m[1].split(",").map((name) => name.trim())));
    }
  }
  const missing = [...defined].filter(([name]) => !indexed.has(name)).map(([name, file]) => `${file}: ${name}`);
  assert.deepEqual(missing, [], "names the index leaves out");
  assert.deepEqual([...indexed].filter((name) => !defined.has(name)), [], "names in the index that nothing defines");
  assert.ok(indexed.size > 600, `only ${indexed.size} names`);
});

test("the figures are in the chapters where they belong, with their text alternatives", () => {
  for (const [page, figure] of [["guest.html", "address-space.svg"], ["host-hypercalls.html", "hypercall.svg"], ["host-dma.html", "dma.svg"]]) {
    assert.match(pages.get(page)!, new RegExp(`<figure class="figure"><img src="figures/${figure}" alt="[^"]+" width="\\d+" height="\\d+"><figcaption>`));
    assert.ok(existsSync(join(out, "figures", figure)));
  }
});

test("a terminal screen is shown as one, with its title", () => {
  assert.match(pages.get("building.html")!, /<figure class="screen"><div class="screen-bar">(?:<span><\/span>){3}<b>npx tsx lguest[^<]*<\/b><\/div><pre><code>lguest\.ts guest kernel/);
});

test("building the book twice writes the same bytes", async () => {
  const again = mkdtempSync(join(tmpdir(), "lguest-site-again-"));
  try {
    await renderBook(process.cwd(), again);
    const files = readdirSync(out).filter((file) => file !== "figures").sort();
    assert.deepEqual(readdirSync(again).filter((file) => file !== "figures").sort(), files);
    for (const file of files) assert.ok(readFileSync(join(again, file)).equals(readFileSync(join(out, file))), file);
  } finally {
    rmSync(again, { recursive: true, force: true });
  }
});

test("an unknown label, a missing spec section or a broken chapter link stops the build with its place", async () => {
  const root = mkdtempSync(join(tmpdir(), "lguest-site-bad-"));
  try {
    mkdirSync(join(root, "book"), { recursive: true });
    cpSync("src/literate/book.css", join(root, "src/literate/book.css"));
    writeFileSync(join(root, "book/contents.md"), "# Contents\n\n1. [One](one.md)\n2. [The interface](interface.md)\n");
    writeFileSync(join(root, "book/interface.md"), "# The interface\n\n## 1. Boot\n\n### 1.2 Memory\n");
    writeFileSync(join(root, "book/one.md"), [
      "# One", "", "## G:010 A start", "", "Fine: G:010 and spec 1.2.", "", "Not fine: G:999,", "spec 1.3, and [a link](nowhere.md).", "",
    ].join("\n"));
    await assert.rejects(renderBook(root, join(root, "build/book")), (error: unknown) => {
      assert.ok(error instanceof BookProblems);
      assert.deepEqual(error.problems.map((problem) => `${problem.bookFile}:${problem.line}: ${problem.message}`), [
        "book/one.md:7: G:999 is not the label of any heading",
        "book/one.md:8: the link to nowhere.md leads to no page of the book",
        `book/one.md:8: "spec 1.3" cites section 1.3, which the interface appendix does not have`,
      ]);
      return true;
    });
    assert.equal(existsSync(join(root, "build/book/one.html")), false, "nothing is written");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** Runs in each page: its ids, its links, its images, and how many lines of code are wider than their block. */
const inspectPage = `(() => {
  const ids = [...document.querySelectorAll("[id]")].map((element) => element.id);
  const links = [...document.querySelectorAll("a[href], img[src], link[href]")].map((element) => element.href || element.src);
  const images = [...document.images].map((image) => {
    const box = image.getBoundingClientRect();
    return { src: image.src, loaded: image.complete && image.naturalWidth > 0, width: box.width, height: box.height };
  });
  const context = document.createElement("canvas").getContext("2d");
  let lines = 0, wide = 0;
  for (const pre of document.querySelectorAll("pre.code")) {
    const style = getComputedStyle(pre);
    context.font = style.fontSize + " " + style.fontFamily;
    const room = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    for (const line of pre.textContent.replace(/\\n$/, "").split("\\n")) {
      let column = "";
      for (const character of line) column += character === "\\t" ? " ".repeat(8 - (column.length % 8)) : character;
      lines++;
      if (context.measureText(column).width > room + 0.5) wide++;
    }
  }
  return { ids, links, images, lines, wide };
})()`;

test("in Chromium every page loads without errors, every link lands on an element, and the figures are drawn", async (t) => {
  assert.ok(existsSync(chromium), `the browser test needs ${chromium}: apt-get install chromium`);
  const { chromium: driver } = await import("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "lguest-chromium-"));
  const browser = await driver.launchPersistentContext(profile, {
    executablePath: chromium,
    viewport: { width: 1440, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    // Two tabs share the pages, one for each of the machine's two cores.
    const errors: string[] = [];
    const idsOn = new Map<string, Set<string>>();
    const links: { page: string; url: string }[] = [];
    let figures = 0, lines = 0, wide = 0;
    const names = [...pages.keys()].filter((name) => name !== "index.html");
    const visit = async (share: string[]) => {
      const tab = await browser.newPage();
      tab.on("console", (message) => {
        if (message.type() === "error") errors.push(`${tab.url()}: ${message.text()}`);
      });
      tab.on("pageerror", (error) => errors.push(`${tab.url()}: ${error.message}`));
      tab.on("requestfailed", (request) => errors.push(`${tab.url()}: ${request.url()} did not load`));
      for (const name of share) {
        await tab.goto(pathToFileURL(join(out, name)).href, { waitUntil: "load" });
        const seen = await tab.evaluate(inspectPage) as {
          ids: string[]; links: string[]; images: { src: string; loaded: boolean; width: number; height: number }[];
          lines: number; wide: number;
        };
        idsOn.set(name, new Set(seen.ids));
        for (const url of seen.links) links.push({ page: name, url });
        for (const image of seen.images) {
          figures++;
          assert.ok(image.loaded && image.width > 100 && image.height > 100, `${name}: ${image.src} is not drawn`);
        }
        lines += seen.lines;
        wide += seen.wide;
      }
      return tab;
    };
    const [tab] = await Promise.all([
      visit(names.filter((_, index) => index % 2 === 0)),
      visit(names.filter((_, index) => index % 2 === 1)),
    ]);
    assert.deepEqual(errors, []);
    const broken = links.filter(({ url }) => url.startsWith("file:")).filter(({ page, url }) => {
      const target = new URL(url);
      const file = relative(out, decodeURIComponent(target.pathname));
      if (!existsSync(join(out, file))) return true;
      if (!file.endsWith(".html") || target.hash === "") return false;
      return !idsOn.get(file)?.has(decodeURIComponent(target.hash.slice(1)));
    }).map(({ page, url }) => `${page}: ${url}`);
    assert.deepEqual(broken, []);
    assert.ok(figures >= 3, `${figures} figures drawn`);
    t.diagnostic(`${wide} of ${lines} code lines are wider than their block at 1440 pixels (${(100 * wide / lines).toFixed(2)}%)`);
    assert.ok(wide / lines < 0.01, `${wide} of ${lines} lines of code scroll sideways at 1440 pixels`);
    const screenshots = join(process.cwd(), "build", "screenshots");
    mkdirSync(screenshots, { recursive: true });
    for (const [page, anchor] of [["guest.html", "G:040"], ["host-hypercalls.html", "H:110"], ["host-dma.html", "H:530"]]) {
      await tab.goto(`${pathToFileURL(join(out, page)).href}#${anchor}`, { waitUntil: "load" });
      await tab.screenshot({ path: join(screenshots, page.replace(".html", `-${anchor.replace(":", "")}.png`)) });
    }
  } finally {
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  }
});
