// Preloaded (node --import) by the TUI tests to make lguest.ts fail the way
// a bug would, from outside the program: LGUEST_TEST_BUG=host makes the
// Host's run throw on its third slice, LGUEST_TEST_BUG=tui makes the TUI's
// drawing throw the second time. Nothing in lguest.ts knows about it.
import { Host } from "../../src/host/host.ts";
import { Tui } from "../../src/tui/tui.ts";

const where = process.env.LGUEST_TEST_BUG;
let calls = 0;
if (where === "host") {
  const run = Host.prototype.run;
  Host.prototype.run = function (this: Host, ...args: Parameters<Host["run"]>) {
    if (++calls === 3) throw new Error("a bug planted in the Host by the test");
    return run.apply(this, args);
  };
} else if (where === "tui") {
  const prototype = Tui.prototype as unknown as { drawLayout(...args: unknown[]): void };
  const drawLayout = prototype.drawLayout;
  prototype.drawLayout = function (this: unknown, ...args: unknown[]) {
    if (++calls === 2) throw new Error("a bug planted in the TUI by the test");
    return drawLayout.apply(this, args);
  };
}
