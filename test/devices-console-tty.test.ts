// The console in a real terminal: the launcher runs in tmux, with its
// stdin a TTY in raw mode. Three ^C quit with status 2 and one line, in one
// write or in three, whether the Guest reads its console or spins; and the
// terminal is back in canonical mode with echo afterwards.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildElf, genuine } from "./helpers/images.ts";
import { jmpSelf } from "./helpers/x86.ts";

const root = join(import.meta.dirname, "..");
const socket = `lguest-test-${process.pid}`;
const tmux = (...args: string[]) => execFileSync("tmux", ["-L", socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForPane(name: string, pattern: RegExp, limit = 60_000): Promise<string> {
  const start = Date.now();
  for (;;) {
    const screen = tmux("capture-pane", "-p", "-t", name, "-S", "-50");
    if (pattern.test(screen)) return screen;
    if (Date.now() - start > limit) assert.fail(`timed out waiting for ${pattern}; the screen:\n${screen}`);
    await sleep(100);
  }
}

/** Until the launcher has put the pane's terminal in raw mode: before that, ^C would be SIGINT. */
async function waitForRawMode(name: string, limit = 60_000): Promise<void> {
  const tty = tmux("display-message", "-p", "-t", name, "#{pane_tty}").trim();
  const start = Date.now();
  while (!/(^|\s)-icanon(\s|$)/.test(execFileSync("stty", ["-a", "-F", tty], { encoding: "utf8" }))) {
    if (Date.now() - start > limit) assert.fail("the launcher never put the terminal in raw mode");
    await sleep(100);
  }
}

function spinningKernel(dir: string): string {
  const text = new Uint8Array(64).fill(0x90);
  text.set(genuine, 0);
  text.set(jmpSelf, genuine.length);
  const path = join(dir, "spin.elf");
  writeFileSync(path, buildElf({ segments: [{ vaddr: 0xc0100000, paddr: 0x100000, data: text }] }));
  return path;
}

let session = 0;

// One idle session keeps the tmux server up between the tests, so that a
// test's new session never races the exit of the server the last one left.
test.before(() => {
  tmux("new-session", "-d", "-s", "anchor", "sleep", "600");
});

for (const [guestKind, reading] of [["a Guest reading its console", true], ["a Guest spinning", false]] as const) {
  for (const [how, keys] of [["one write", [["C-c", "C-c", "C-c"]]], ["three writes", [["C-c"], ["C-c"], ["C-c"]]]] as const) {
    test(`in a terminal: three ^C in ${how} quit ${guestKind}, status 2, one line, and the terminal is restored`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "lguest-tty-"));
      const name = `s${session++}`;
      try {
        const kernel = reading ? "images/vmlinux" : spinningKernel(dir);
        const command = `cd ${root} && ${process.execPath} --import tsx lguest.ts 64m ${kernel}; echo "status=$?"; stty -a | grep -o -e '-\\?icanon' -e '-\\?echo ' | tr '\\n' ' '; echo; sleep 30`;
        tmux("new-session", "-d", "-s", name, "-x", "100", "-y", "40", "bash", "--norc", "--noprofile", "-c", command);
        if (reading) await waitForPane(name, /^guest>\s*$/m);
        await waitForRawMode(name);
        for (const group of keys) {
          tmux("send-keys", "-t", name, ...group);
          if (keys.length > 1) await sleep(150);
        }
        const screen = await waitForPane(name, /status=\d+\n.*icanon/);
        assert.match(screen, /^lguest: three \^C in a second: quitting$/m);
        assert.match(screen, /^status=2$/m);
        assert.match(screen, /^icanon echo\s*$/m, "canonical mode and echo are back on");
      } finally {
        try {
          tmux("kill-session", "-t", name);
        } catch {
          // already gone
        }
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

test.after(() => {
  try {
    tmux("kill-server");
  } catch {
    // no server left
  }
});
