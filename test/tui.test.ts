// The terminal UI, driven in a real terminal (tmux): what the screen shows
// is checked against references outside lguest.ts (the kernel's symbol
// table as nm reads it, objdump's instruction lengths, the SDM's page-entry
// bits, the spec's hypercall numbers) and against the Guest's own memory;
// and the terminal must come back to normal however the TUI ends.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repository, shownValue, Terminal } from "./helpers/terminal.ts";
import { keyTable } from "../src/tui/keys.ts";
import { parseArguments } from "../src/launcher/arguments.ts";
import "./helpers/machine.ts"; // a machine of this file's own: its Guests are guest 0 (L:138)

const kernel = join(repository, "images", "vmlinux");
const PAGE_OFFSET = 0xc0000000;

/** A symbol's address as binutils' nm reads the kernel's symbol table. */
function symbol(name: string): number {
  const line = execFileSync("nm", [kernel], { encoding: "utf8" }).split("\n").find((row) => row.endsWith(` ${name}`));
  assert.ok(line, `nm finds no ${name}`);
  return parseInt(line.split(" ")[0], 16);
}

/** The length objdump gives the instruction at `address`, and its text. */
function objdumpAt(address: number): { length: number; text: string } {
  const out = execFileSync("objdump", ["-d", `--start-address=0x${address.toString(16)}`, `--stop-address=0x${(address + 16).toString(16)}`, kernel], { encoding: "utf8" });
  const line = out.split("\n").find((row) => row.trimStart().startsWith(`${address.toString(16)}:`))!;
  const [, bytes, text] = line.split("\t");
  return { length: bytes.trim().split(/\s+/).length, text: text.trim() };
}

/** The terminal is back in normal mode: canonical input, echo, and the normal screen. */
function assertRestored(terminal: Terminal): void {
  const stty = terminal.stty();
  assert.match(stty, /(^|\s)icanon(\s|$)/, `stty -a after the TUI:\n${stty}`);
  assert.match(stty, /(^|\s)echo(\s|$)/, `stty -a after the TUI:\n${stty}`);
  assert.equal(terminal.format("#{alternate_on}"), "0", "the pane is back on the normal screen");
  assert.equal(terminal.format("#{cursor_flag}"), "1", "the cursor is visible");
}

const hex8 = (value: number) => value.toString(16).padStart(8, "0");

describe("the TUI on the book's Guest, from its first instruction", () => {
  let terminal: Terminal;
  /** printk's return address, read off the stack at its breakpoint. */
  let returnAddress = 0;
  /** The first call in printk, where next is tried. */
  let callAddress = 0;
  before(async () => {
    terminal = Terminal.lguest(["--tui=paused", "--clock=virtual", "64m", "images/vmlinux"], { width: 120, height: 40 });
    await terminal.waitForLine(/stopped: paused/);
  });
  after(() => terminal.kill());

  test("--tui=paused stops before the first instruction, at the entry point after GenuineLguest", async () => {
    const screen = terminal.screen();
    assert.equal(shownValue(screen, "eip"), symbol("lguest_start"));
    assert.ok(screen.some((row) => row.includes("instructions 0")), "no instruction has run");
    assert.ok(screen.some((row) => row.includes(`▶ ${hex8(symbol("lguest_start"))}`)), "the code pane marks the current instruction");
  });

  test("one step advances eip by the length objdump gives the instruction", async () => {
    const eip = shownValue(terminal.screen(), "eip")!;
    const { length, text } = objdumpAt(eip);
    assert.doesNotMatch(text, /^(j|call|ret|int|loop)/, "the first instructions do not jump");
    terminal.keys("s");
    const screen = await terminal.waitFor((rows) => rows[0].includes("stopped: stepped") && rows[0].includes("@1 "), "the step");
    assert.equal(shownValue(screen, "eip"), eip + length);
  });

  test("the registers the last step changed are highlighted, and only those", async () => {
    const eip = shownValue(terminal.screen(), "eip")!;
    assert.match(objdumpAt(eip).text, /^mov\s+\$0x[0-9a-f]+,%edi$/, "the second instruction loads edi");
    terminal.keys("s");
    await terminal.waitFor((rows) => rows[0].includes("@2 "), "the second step");
    const rows = terminal.screenWithAttributes();
    const registers = rows.find((row) => row.includes("esi") && row.includes("edi"))!;
    const highlighted = (name: string) => new RegExp(`${name} (\\x1b\\[[0-9;]*m)+[0-9a-f]{8}`).test(registers);
    assert.ok(highlighted("edi"), `edi is highlighted: ${JSON.stringify(registers)}`);
    for (const name of ["esi", "ebp", "esp"]) assert.ok(!highlighted(name), `${name} did not change and is not highlighted`);
  });

  test("after running to LGUEST_INIT, eax is 1 (spec 3.3) and edx is __pa(&lguest_data) from the symbol table", async () => {
    terminal.keys("H");
    await terminal.waitForLine(/run until hypercall/);
    terminal.type("LGUEST_INIT");
    terminal.keys("Enter");
    const screen = await terminal.waitFor((rows) => rows[0].includes("stopped: hcall LGUEST_INIT"), "LGUEST_INIT");
    const lguestData = symbol("lguest_data") - PAGE_OFFSET;
    assert.equal(shownValue(screen, "eax"), 1);
    assert.equal(shownValue(screen, "edx"), lguestData);
    assert.ok(screen.some((row) => row.includes(`lguest_data ${hex8(lguestData)}`)), "the host pane shows where lguest_data is");
    assert.ok(screen.some((row) => row.includes("hypercalls 1: LGUEST_INIT 1")), "the host pane counts the one hypercall");
  });

  test("the events pane shows the lines --trace=count prints, in the same order", async () => {
    terminal.keys("6");
    const screen = await terminal.waitFor((rows) => rows[1].includes("events"), "the events pane on the whole screen");
    const shown = screen.slice(2).map((row) => row.replace(/^│/, "").replace(/│\s*$/, "").trimEnd()).filter((row) => row.startsWith("guest 0 @"));
    terminal.keys("Escape");
    // The same Guest with the same (empty) command line, powered off by typing halt at its prompt;
    // on a machine of its own, since the TUI's Guest still holds guest id 0 on this one (L:138).
    const run = spawnSync("node", ["--import", "tsx", "lguest.ts", "--trace=count", "--clock=virtual", "64m", "images/vmlinux"], {
      cwd: repository, encoding: "utf8", input: "halt\n", stdio: ["pipe", "ignore", "pipe"], timeout: 120_000,
      env: { ...process.env, LGUEST_MACHINE: `${process.env.LGUEST_MACHINE}-again` },
    });
    const traced = run.stderr.split("\n");
    const last = traced.indexOf(shown[shown.length - 1]);
    assert.ok(last >= 0, `the last line of the events pane is in the trace: ${shown[shown.length - 1]}`);
    assert.deepEqual(shown, traced.slice(last - shown.length + 1, last + 1));
  });

  test("the page walk's entries and flags are the Guest's page-table entries as memory holds them", async () => {
    const address = symbol("lguest_data");
    terminal.keys("a");
    await terminal.waitForLine(/walk the page tables for/);
    terminal.type(`0x${address.toString(16)}`);
    terminal.keys("Enter");
    let screen = await terminal.waitFor((rows) => rows.some((row) => row.includes(`walk of ${hex8(address)}`)), "the walk");
    const guestRows = screen.slice(screen.findIndex((row) => row.includes("the Guest's tables")));
    const pde = /pde\[300\] ([0-9a-f]{8})/.exec(guestRows.join("\n"))!;
    const pte = /pte\[([0-9a-f]{3})\] ([0-9a-f]{8}) ([a-z -]+?)\s*│/.exec(guestRows.join("\n"))!;
    assert.ok(pde && pte, "the walk shows the Guest's directory and table entries");
    assert.equal(parseInt(pte[1], 16), (address >>> 12) & 0x3ff);
    const pteAddress = (parseInt(pde[1], 16) & ~0xfff) + 4 * parseInt(pte[1], 16);
    terminal.keys("m");
    await terminal.waitForLine(/memory at/);
    terminal.type(`p:0x${pteAddress.toString(16)}`);
    terminal.keys("Enter");
    screen = await terminal.waitFor((rows) => rows.some((row) => row.includes(`│${hex8(pteAddress)}  `)), "the memory view");
    const dump = screen.find((row) => row.includes(`│${hex8(pteAddress)}  `))!;
    const bytes = dump.slice(dump.indexOf("  ") + 2).trim().split(" ").slice(0, 4).map((b) => parseInt(b, 16));
    const inMemory = (bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24)) >>> 0;
    assert.equal(parseInt(pte[2], 16), inMemory, "the entry the walk shows is the one in memory");
    // The SDM's names for a page-table entry's bits (Vol. 3A, 4.3), including the ones a clear bit means.
    const expected = [
      inMemory & 1 && "present", inMemory & 2 ? "writable" : "read-only", inMemory & 4 ? "user" : "supervisor",
      inMemory & 0x20 && "accessed", inMemory & 0x40 && "dirty",
    ].filter(Boolean);
    assert.deepEqual(pte[3].trim().split(" ").sort(), (expected as string[]).sort());
    terminal.keys("Escape");
  });

  test("a breakpoint on a symbol is marked in the code pane and stops the Guest there", async () => {
    const printk = symbol("printk");
    terminal.keys("b");
    await terminal.waitForLine(/breakpoint on or off/);
    terminal.type("printk");
    terminal.keys("Enter");
    await terminal.waitForLine(/breakpoint 1 at/);
    terminal.keys("c");
    const screen = await terminal.waitFor((rows) => rows[0].includes("stopped: breakpoint 1"), "the breakpoint");
    assert.equal(shownValue(screen, "eip"), printk);
    assert.ok(screen.some((row) => row.includes(`●▶ ${hex8(printk)}`)), "the breakpoint's mark and the current instruction");
  });

  test("next runs a call through: eip lands after it, where objdump puts the next instruction", async () => {
    const printk = symbol("printk");
    terminal.keys("S");
    const stack = await terminal.waitFor((rows) => rows.some((row) => row.includes("the stack from ss:esp")), "the stack view");
    returnAddress = parseInt(/│[0-9a-f]{8}  ([0-9a-f]{8})/.exec(stack.find((row) => /│[0-9a-f]{8}  [0-9a-f]{8}/.test(row))!)![1], 16);
    terminal.keys("Escape");
    let call = printk;
    while (!objdumpAt(call).text.startsWith("call")) call += objdumpAt(call).length;
    callAddress = call;
    terminal.keys("b");
    await terminal.waitForLine(/breakpoint on or off/);
    terminal.type(`0x${call.toString(16)}`);
    terminal.keys("Enter", "c");
    let screen = await terminal.waitFor((rows) => rows[0].includes("stopped: breakpoint 2"), "the breakpoint at the call");
    assert.equal(shownValue(screen, "eip"), call);
    terminal.keys("n");
    screen = await terminal.waitFor((rows) => rows[0].includes("stopped: stepped"), "next");
    assert.equal(shownValue(screen, "eip"), call + objdumpAt(call).length);
  });

  test("finish runs to printk's return address, the word on top of the stack when it was called", async () => {
    terminal.keys("f");
    const screen = await terminal.waitFor((rows) => rows[0].includes("stopped: stepped") && shownValue(rows, "eip") === returnAddress, "finish", 30);
    assert.equal(shownValue(screen, "eip"), returnAddress);
  });

  test("a watchpoint on lguest_data stops the Guest after its next write there", async () => {
    const lguestData = symbol("lguest_data");
    for (const place of ["printk", `0x${callAddress.toString(16)}`]) {
      terminal.keys("b");
      await terminal.waitForLine(/breakpoint on or off/);
      terminal.type(place);
      terminal.keys("Enter");
      await terminal.waitForLine(/breakpoint \d+ removed/);
    }
    terminal.keys("w");
    await terminal.waitForLine(/watchpoint on or off/);
    terminal.type("lguest_data");
    terminal.keys("Enter");
    const [, id] = await terminal.waitForLine(/watchpoint (\d+) on 4 bytes at/);
    terminal.keys("c");
    const screen = await terminal.waitFor((rows) => rows[0].includes(`stopped: watchpoint ${id}`), "the watchpoint");
    assert.match(screen[0], new RegExp(`watchpoint ${id}: write of \\d at ${hex8(lguestData)}`));
  });

  test("? lists every key of the key table", async () => {
    terminal.keys("?");
    const screen = await terminal.waitFor((rows) => rows.some((row) => row.includes("lguest.ts: the keys")), "the help");
    const shown = screen.join("\n");
    for (const { bindings } of keyTable) {
      for (const binding of bindings.filter((b) => b.does !== "")) assert.ok(shown.includes(binding.does), `? lists "${binding.does}"`);
    }
    terminal.keys("Escape");
  });

  test("q quits with status 0 and puts the terminal back", async () => {
    terminal.keys("q");
    await terminal.waitForLine(/lguest exited/);
    assert.equal(terminal.status(), 0);
    assertRestored(terminal);
  });
});

describe("the TUI and the size of the terminal", () => {
  let terminal: Terminal;
  before(async () => {
    terminal = Terminal.lguest(["--tui=paused", "--clock=virtual", "64m", "images/vmlinux"], { width: 60, height: 20 });
  });
  after(() => terminal.kill());

  test("a terminal smaller than 80x24 gets one message saying so", async () => {
    const screen = await terminal.waitFor((rows) => rows.join(" ").includes("needs at least 80x24"), "the message");
    assert.equal(screen.filter((row) => row.trim() !== "").length <= 4, true, "only the message");
    assert.ok(screen.join(" ").includes("60x20"));
  });

  test("grown to 80x24 it shows one pane at a time, with a tab for each", async () => {
    terminal.resize(80, 24);
    const screen = await terminal.waitFor((rows) => rows[1]?.includes("1 code") ?? false, "the tabs");
    assert.match(screen[1], /1 code\s+2 registers\s+3 page tables\s+4 DMA keys\s+5 host\s+6 events\s+7 console/);
    terminal.keys("2");
    const registers = await terminal.waitFor((rows) => rows.some((row) => row.includes("─ registers ─")), "the registers pane");
    assert.ok(registers.some((row) => /eax [0-9a-f]{8}/.test(row)));
  });

  test("grown to 120x40 it shows all seven panes at once", async () => {
    terminal.resize(120, 40);
    const screen = await terminal.waitFor((rows) => rows.some((row) => row.includes("─ console ─")) && rows.some((row) => row.includes("─ code ─")), "the wide layout");
    for (const title of ["code", "registers", "page tables", "DMA keys", "host", "events", "console"]) {
      assert.ok(screen.some((row) => row.includes(`─ ${title} ─`)), `the ${title} pane is there`);
    }
  });

  test("three ^C in a second quit, and the terminal is back", async () => {
    terminal.keys("C-c", "C-c", "C-c");
    await terminal.waitForLine(/lguest exited/);
    assertRestored(terminal);
  });
});

describe("the TUI with a Guest that runs, a disk and a trace file", () => {
  let terminal: Terminal;
  const folder = mkdtempSync(join(tmpdir(), "lguest-tui-run-"));
  const traceFile = join(folder, "trace.txt"), disk = join(folder, "disk.img");
  before(async () => {
    writeFileSync(disk, new Uint8Array(1 << 20));
    terminal = Terminal.lguest(
      ["--tui", "--clock=virtual", "--trace=count", `--trace-file=${traceFile}`, `--block=${disk}`, "64m", "images/vmlinux"],
      { width: 120, height: 40 },
    );
  });
  after(() => {
    terminal.kill();
    rmSync(folder, { recursive: true, force: true });
  });

  test("it starts running: the console shows the Guest's boot, its devices and its prompt", async () => {
    await terminal.waitForLine(/│guest> /);
    const screen = terminal.screen();
    assert.ok(screen.some((row) => row.includes("lguest bus: device 0: block, irq 1")), "the --block device is on the bus");
    assert.ok(screen.some((row) => row.includes("lguest bus: device 1: console, irq 2")));
  });

  test("--trace-file gets the trace while the TUI runs: the events pane's lines are in it", async () => {
    const events = terminal.screen().map((row) => /││(guest 0 @\d+: [^│]*?)\s*│$/.exec(row)?.[1]).filter((line) => line !== undefined);
    assert.ok(events.length > 0, "the events pane shows events");
    const traced = readFileSync(traceFile, "utf8").split("\n");
    for (const line of events) assert.ok(traced.some((t) => t.startsWith(line!)), `the trace file has ${line}`);
  });

  test("keys typed while the console has the keyboard reach the Guest, and ^] takes it back", async () => {
    terminal.keys("i");
    await terminal.waitForLine(/keys go to the Guest/);
    terminal.type("echo hello from the tui");
    terminal.keys("Enter");
    await terminal.waitForLine(/│hello from the tui/);
    terminal.keys("C-]");
    await terminal.waitFor((rows) => rows[0].includes("? keys"), "the keys back");
  });

  test("when the Guest powers off the TUI says so and stays until q; the status is 0", async () => {
    terminal.keys("i");
    terminal.type("halt");
    terminal.keys("Enter");
    await terminal.waitForLine(/ended: the Guest powered off/);
    terminal.keys("q");
    await terminal.waitForLine(/lguest exited/);
    assert.equal(terminal.status(), 0);
    assertRestored(terminal);
  });
});

describe("the TUI's other ways out", () => {
  test("a Guest that dies: status 1, its reason on stderr after the terminal is back", async () => {
    const terminal = Terminal.lguest(["--tui", "--clock=virtual", "64m", "images/vmlinux", "run=hostile crash"], { width: 120, height: 40 });
    try {
      await terminal.waitForLine(/ended: the Guest died: /);
      terminal.keys("q");
      await terminal.waitForLine(/lguest exited/);
      assert.equal(terminal.status(), 1);
      assert.match(terminal.stderr(), /^lguest: the guest died: .*crashed on purpose/m);
      assertRestored(terminal);
    } finally {
      terminal.kill();
    }
  });

  test("SIGTERM: the terminal is put back and the status is 128 + 15", async () => {
    const terminal = Terminal.lguest(["--tui=paused", "--clock=virtual", "64m", "images/vmlinux"], { width: 120, height: 40 });
    try {
      await terminal.waitForLine(/stopped: paused/);
      process.kill(terminal.launcherPid(), "SIGTERM");
      await terminal.waitForLine(/lguest exited/);
      assert.equal(terminal.status(), 143);
      assertRestored(terminal);
    } finally {
      terminal.kill();
    }
  });

  for (const where of ["host", "tui"] as const) {
    test(`an internal error in the ${where === "host" ? "Host" : "TUI"}: the terminal is back, then one line about it, status 1`, async () => {
      const terminal = Terminal.lguest(["--tui", "--clock=virtual", "64m", "images/vmlinux"], { width: 120, height: 40 }, { plantBug: where });
      try {
        await terminal.waitForLine(/lguest exited/);
        assert.equal(terminal.status(), 1);
        const stderr = terminal.stderr().trim();
        assert.match(stderr, new RegExp(`^lguest: internal error: a bug planted in the ${where === "host" ? "Host" : "TUI"} by the test`));
        assert.equal(stderr.split("\n").length, 1, `one line: ${stderr}`);
        assertRestored(terminal);
      } finally {
        terminal.kill();
      }
    });
  }
});

describe("--tui on the command line", () => {
  test("--tui runs the Guest, --tui=paused starts it stopped, anything else is a usage error", () => {
    assert.deepEqual((parseArguments(["--tui", "64m", "vmlinux"]) as { tui?: unknown }).tui, { paused: false });
    assert.deepEqual((parseArguments(["--tui=paused", "64m", "vmlinux"]) as { tui?: unknown }).tui, { paused: true });
    assert.throws(() => parseArguments(["--tui=fast", "64m", "vmlinux"]), /--tui=fast: write --tui, or --tui=paused/);
  });

  test("the TUI owns the terminal: --trace needs --trace-file with it, and --bare has nothing for it to show", () => {
    assert.throws(() => parseArguments(["--tui", "--trace", "64m", "vmlinux"]), /--trace with --tui needs --trace-file=FILE/);
    assert.doesNotThrow(() => parseArguments(["--tui", "--trace", "--trace-file=t.txt", "64m", "vmlinux"]));
    assert.throws(() => parseArguments(["--tui", "--bare", "kernel.elf"]), /--tui shows an lguest Guest and its Host/);
  });

  test("without a terminal, --tui says so in one line and exits 1", () => {
    const run = spawnSync("node", ["--import", "tsx", "lguest.ts", "--tui", "64m", "images/vmlinux"], {
      cwd: repository, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000,
    });
    assert.equal(run.status, 1);
    assert.equal(run.stderr, "lguest: --tui needs a terminal: run it in one, with neither stdin nor stdout redirected\n");
  });
});
