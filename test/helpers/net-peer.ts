// One Launcher process on a --sharenet network, for the tests that need
// several: the real --sharenet backend (src/launcher/sharenet.ts) and
// network model, with a puppet Guest (net-guest.ts) on its own Host.
//
//   node --import tsx test/helpers/net-peer.ts FILE [quiet|echo|deaf]
//
// It prints JSON lines: {"slot":N} once it has joined, {"frame":HEX} for
// each frame its Guest receives, {"sent":USED_LEN} after each send, and
// answers commands read as JSON lines on stdin:
//   {"send":SLOT,"hex":HEX}   the Guest sends HEX to SLOT
//   {"page":SLOT}             prints {"page":SLOT,"entry":HEX} from its copy of the network page
//   {"stats":true}            prints {"stats":{"dropped":N,"full":N}}
// In echo mode the Guest sends every frame it receives back to the slot
// named by the frame's first byte; in deaf mode it never frees a buffer.
import { createInterface } from "node:readline";
import { Host } from "../../src/host/host.ts";
import type { NetworkDevice } from "../../src/devices/network.ts";
import { shareNetDevice } from "../../src/launcher/sharenet.ts";
import { hex, netGuest, settle } from "./net-guest.ts";

const [file, mode = "quiet"] = process.argv.slice(2);
const out = (record: object) => process.stdout.write(JSON.stringify(record) + "\n");

const { device, backend } = await shareNetDevice(file);
const network = device as NetworkDevice;
const g = netGuest(new Host(), network);
let wake: (() => void) | undefined;
backend.start?.({ wake: () => wake?.(), stop: () => {}, warn: (line) => out({ warn: line }) });
// The Guest brings its interface up: its MAC address in its own slot.
network.requirements.memory!.set([0x02, 0, 0, 0, 0, network.slot + 1], network.slot * 6);
out({ slot: network.slot });

const commands: Record<string, unknown>[] = [];
createInterface({ input: process.stdin }).on("line", (line) => {
  commands.push(JSON.parse(line));
  wake?.();
});
process.stdin.on("end", () => process.exit(0));

for (;;) {
  const command = commands.shift();
  if (command?.send !== undefined) {
    g.send(command.send as number, Buffer.from(command.hex as string, "hex"));
    out({ state: settle(g), sent: g.lastSendLength() });
  } else if (command?.page !== undefined) {
    const slot = command.page as number;
    out({ page: slot, entry: hex(network.requirements.memory!.subarray(slot * 6, slot * 6 + 6)) });
  } else if (command?.stats !== undefined) {
    out({ stats: { dropped: network.dropped, full: g.takeFrames(true).length } });
  }
  const state = settle(g);
  if (state.startsWith("dead")) {
    out({ state });
    process.exit(1);
  }
  if (mode !== "deaf") {
    for (const frame of g.takeFrames()) {
      out({ frame: hex(frame) });
      if (mode === "echo") {
        g.send(frame[0], frame);
        out({ state: settle(g), echoed: g.lastSendLength() });
      }
    }
  }
  if (commands.length > 0) continue;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 200);
    wake = () => {
      clearTimeout(timer);
      wake = undefined;
      resolve();
    };
  });
}
