// A real terminal for tests: a tmux server of our own (its own socket, so
// nothing else's sessions are touched), one window of a given size running
// a command, keys sent with send-keys and the screen read with
// capture-pane. tmux is a Debian package that .ci/run installs; without it
// these tests fail, loudly, rather than skip.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const repository = join(import.meta.dirname, "..", "..");

let sessions = 0;

export function haveTmux(): boolean {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export class Terminal {
  private readonly socket: string;
  private readonly folder: string;
  private killed = false;

  private constructor(socket: string, folder: string) {
    this.socket = socket;
    this.folder = folder;
  }

  /**
   * Runs `lguest ARGS` in a fresh width x height terminal. When it ends, the
   * pane prints "lguest exited STATUS" and the terminal's settings
   * (`stty -a`) into files, so that tests can see how it left the terminal.
   */
  static lguest(args: string[], size: { width: number; height: number }, options: { plantBug?: "host" | "tui" } = {}): Terminal {
    if (!haveTmux()) throw new Error("tmux is not installed: the TUI tests need it (apt-get install tmux; .ci/run does)");
    const folder = mkdtempSync(join(tmpdir(), "lguest-tui-"));
    const socket = `lguest-test-${process.pid}-${++sessions}`;
    const quoted = args.map((arg) => `'${arg.replace(/'/g, `'\\''`)}'`).join(" ");
    const script = [
      options.plantBug === undefined
        ? `node --import tsx lguest.ts ${quoted} 2>${folder}/stderr`
        : `LGUEST_TEST_BUG=${options.plantBug} node --import tsx --import ./test/helpers/plant-bug.ts lguest.ts ${quoted} 2>${folder}/stderr`,
      `echo $? > ${folder}/status`,
      `stty -a > ${folder}/stty`,
      `echo "lguest exited $(cat ${folder}/status)"`,
      "sleep 600",
    ].join("; ");
    execFileSync("tmux", [
      "-L", socket, "-f", "/dev/null", "-u", "new-session", "-d", "-s", "t", "-x", String(size.width), "-y", String(size.height),
      "-c", repository, script,
    ]);
    const terminal = new Terminal(socket, folder);
    terminal.tmux("set-option", "-g", "window-size", "manual");
    return terminal;
  }

  tmux(...args: string[]): string {
    return execFileSync("tmux", ["-L", this.socket, ...args], { encoding: "utf8" });
  }

  /** The screen as text, one string per row. */
  screen(): string[] {
    return this.tmux("capture-pane", "-p", "-t", "t").split("\n");
  }

  /** The screen with its attributes as escape sequences (for highlighting). */
  screenWithAttributes(): string[] {
    return this.tmux("capture-pane", "-p", "-e", "-t", "t").split("\n");
  }

  /** Keys by tmux's names: "s", "Enter", "Escape", "C-]", "Up". */
  keys(...keys: string[]): void {
    this.tmux("send-keys", "-t", "t", ...keys);
  }

  /** Text typed literally. */
  type(text: string): void {
    this.tmux("send-keys", "-t", "t", "-l", text);
  }

  resize(width: number, height: number): void {
    this.tmux("resize-window", "-t", "t", "-x", String(width), "-y", String(height));
  }

  /** A tmux format about the pane: "#{alternate_on}", "#{cursor_flag}", "#{pane_pid}". */
  format(format: string): string {
    return this.tmux("display-message", "-p", "-t", "t", format).trim();
  }

  /** Waits until `ready(screen)` holds; fails with the last screen after `seconds`. */
  async waitFor(ready: (screen: string[]) => boolean, what: string, seconds = 60): Promise<string[]> {
    const until = Date.now() + seconds * 1000;
    let screen = this.screen();
    while (!ready(screen)) {
      if (Date.now() > until) throw new Error(`waited ${seconds} s for ${what}; the screen shows:\n${screen.join("\n")}\nstderr: ${this.stderr()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      screen = this.screen();
    }
    return screen;
  }

  /** Waits for a line matching `pattern`; returns its match. */
  async waitForLine(pattern: RegExp, seconds?: number): Promise<RegExpMatchArray> {
    const screen = await this.waitFor((rows) => rows.some((row) => pattern.test(row)), String(pattern), seconds);
    return screen.map((row) => pattern.exec(row)).find((match) => match !== null)!;
  }

  /** The Launcher's exit status, once it has exited. */
  status(): number | undefined {
    try {
      return Number(readFileSync(join(this.folder, "status"), "utf8"));
    } catch {
      return undefined;
    }
  }

  stty(): string {
    return readFileSync(join(this.folder, "stty"), "utf8");
  }

  stderr(): string {
    try {
      return readFileSync(join(this.folder, "stderr"), "utf8");
    } catch {
      return "";
    }
  }

  /** The pid of the Launcher: the child of the pane's shell. */
  launcherPid(): number {
    const shell = this.format("#{pane_pid}");
    const children = execFileSync("ps", ["-o", "pid=", "--ppid", shell], { encoding: "utf8" }).trim().split(/\s+/);
    return Number(children[0]);
  }

  kill(): void {
    if (this.killed) return;
    this.killed = true;
    try {
      this.tmux("kill-server");
    } catch {
      // already gone
    }
    rmSync(this.folder, { recursive: true, force: true });
  }
}

/** The value after `name` on the screen: "eax 00000001" gives 1. */
export function shownValue(screen: string[], name: string): number | undefined {
  const pattern = new RegExp(`(?:^|[^\\w])${name} ([0-9a-f]{8})\\b`);
  for (const row of screen) {
    const match = pattern.exec(row);
    if (match) return parseInt(match[1], 16);
  }
  return undefined;
}
