// Launcher processes on one --sharenet network, driven from a test: each is
// test/helpers/net-peer.ts in a child process, spoken to in JSON lines.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export interface Peer {
  child: ChildProcess;
  /** Every record the peer printed, in order. */
  records: Record<string, unknown>[];
  command(record: object): void;
  /** The first record after `from` that `match` accepts, waiting up to `limit` ms. */
  next(match: (record: Record<string, unknown>) => boolean, limit?: number, from?: number): Promise<Record<string, unknown>>;
  /** Sends HEX to SLOT and returns the sender's used_len. */
  send(slot: number, bytes: Uint8Array): Promise<number>;
  page(slot: number): Promise<string>;
  /** Waits until the peer's Guest has received `bytes` (at any time since it started). */
  received(bytes: Uint8Array): Promise<void>;
  slot: number;
  exited: Promise<number | null>;
}

export async function startPeer(file: string, mode: "quiet" | "echo" | "deaf" = "quiet"): Promise<Peer> {
  const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "net-peer.ts"), file, mode], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const records: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let partial = "";
  let errors = "";
  child.stderr!.on("data", (chunk) => (errors += chunk));
  child.stdout!.on("data", (chunk) => {
    partial += chunk;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) records.push(JSON.parse(line));
    for (const waiter of waiters.splice(0)) waiter();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    for (const waiter of waiters.splice(0)) waiter();
    resolve(code);
  }));
  let seen = 0;
  const next = async (match: (record: Record<string, unknown>) => boolean, limit = 45_000, from = seen) => {
    const deadline = Date.now() + limit;
    for (let at = from; ; ) {
      for (; at < records.length; at++) {
        if (match(records[at])) {
          seen = at + 1;
          return records[at];
        }
      }
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`peer exited (${child.exitCode ?? child.signalCode}); stderr: ${errors}`);
      if (Date.now() > deadline) throw new Error(`peer: timed out; records ${JSON.stringify(records)}; stderr: ${errors}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };
  const peer: Peer = {
    child, records, exited, slot: -1,
    command: (record) => child.stdin!.write(JSON.stringify(record) + "\n"),
    next,
    async send(slot, bytes) {
      peer.command({ send: slot, hex: Buffer.from(bytes).toString("hex") });
      return (await next((r) => "sent" in r)).sent as number;
    },
    async page(slot) {
      peer.command({ page: slot });
      return (await next((r) => r.page === slot)).entry as string;
    },
    async received(bytes) {
      const wanted = Buffer.from(bytes).toString("hex");
      const before = seen;
      await next((r) => r.frame === wanted, undefined, 0);
      seen = Math.max(seen, before);
    },
  };
  peer.slot = (await next((r) => "slot" in r, 60_000)).slot as number;
  return peer;
}

/** Frames the peer's Guest received, as hex, from its first record on. */
export function framesOf(peer: Peer): string[] {
  return peer.records.flatMap((r) => ("frame" in r ? [r.frame as string] : []));
}

export async function stopPeer(peer: Peer): Promise<void> {
  if (peer.child.exitCode === null && peer.child.signalCode === null) peer.child.kill("SIGKILL");
  await peer.exited;
}
