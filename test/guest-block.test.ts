// The book's Guest on a disk (book/drivers-block.md): its block driver
// against spec 9.2 from the Guest's side, with the Launcher's own block
// device model (src/devices/block.ts) on a real file, in-process. What the
// Guest shows of a sector is compared with hexdump -C of the same bytes of
// the file. The round trip through the launcher program (write, power off,
// boot again, read back) is in test/devices-guest.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootGuest, type GuestSession } from "./helpers/guest-session.ts";
import { BlockDevice, BLOCK_PAGE } from "../src/devices/block.ts";
import { openBlockStorage } from "../src/launcher/block-file.ts";

const root = join(import.meta.dirname, "..");
const vmlinux = new Uint8Array(readFileSync(join(root, "images/vmlinux")));
const SECTOR = 512;

/** Temporary disk files, removed afterwards. */
function withDisks(contents: Uint8Array[], body: (paths: string[]) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "guest-block-"));
  try {
    const paths = contents.map((bytes, i) => {
      const path = join(dir, `disk${i}.img`);
      writeFileSync(path, bytes);
      return path;
    });
    body(paths);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The book's Guest with one block device per file, in order, before the console. */
function guestWithDisks(paths: string[]): { session: GuestSession; close: () => void } {
  const opened = paths.map((path) => openBlockStorage(path, () => {}));
  const session = bootGuest(vmlinux, [], {
    memoryBytes: 8 << 20,
    devices: opened.map(({ storage }, i) => new BlockDevice(storage, paths[i])),
  });
  session.run(() => session.output.endsWith("guest> "));
  return { session, close: () => opened.forEach(({ close }) => close()) };
}

function command(session: GuestSession, text: string): string {
  const before = session.output.length;
  session.type(text + "\r");
  session.run(() => session.output.length > before + text.length + 2 && session.output.endsWith("guest> "));
  assert.equal(session.dead, undefined, `${text}: the Guest died`);
  return session.output.slice(before).replace(/\r\n/g, "\n");
}

/** What hexdump -C (util-linux) prints for `bytes`: the reference for the Guest's disk read. */
function hexdumpC(bytes: Uint8Array): string {
  const run = spawnSync("hexdump", ["-C"], { input: bytes, encoding: "utf8" });
  assert.equal(run.status, 0, `hexdump -C: ${run.error ?? run.stderr}`);
  return run.stdout;
}

function sectorOf(path: string, n: number): Uint8Array {
  return new Uint8Array(readFileSync(path)).subarray(n * SECTOR, (n + 1) * SECTOR);
}

/** Where the Guest's last SEND_DMA pointed, read back as (addr, len) pieces up to the terminator. */
function lastSend(session: GuestSession, key: number): { addr: number; len: number }[] {
  const send = session.sends.filter((s) => s.key === key).at(-1);
  assert.ok(send, `a SEND_DMA to ${key.toString(16)}`);
  const pieces: { addr: number; len: number }[] = [];
  for (let i = 0; i < 16; i++) {
    const len = session.guest.read32(send.dma + 68 + 2 * i) & 0xffff;
    if (len === 0) break;
    pieces.push({ addr: session.guest.read32(send.dma + 4 + 4 * i), len });
  }
  return pieces;
}

test("the block driver binds one reply descriptor at its page's key with irq index + 1 and takes the size from the page (spec 9.2)", () => {
  withDisks([new Uint8Array(1 << 20)], ([path]) => {
    const { session, close } = guestWithDisks([path]);
    const key = session.devicePages[0];
    assert.match(session.output, /lguest bus: device 0: block, irq 1, 1 page at 0x801000: driver ok\r\n/);
    assert.deepEqual(session.binds.filter((b) => b.key === key).map((b) => [b.count, b.irq, b.ok]), [[1, 1, true]]);
    assert.equal(command(session, "disk"), "disk\nlgba: 2048 sectors (1 MiB), device 0, irq 1; 0 reads, 0 writes, 0 errors\nguest> ");
    close();
  });
});

test("a write sends the sector as the send's pieces, and it is in the file when the Guest says so (spec 9.2)", () => {
  withDisks([new Uint8Array(64 * SECTOR)], ([path]) => {
    const { session, close } = guestWithDisks([path]);
    const key = session.devicePages[0];
    assert.equal(command(session, "disk write 3 Hello, disk"), "disk write 3 Hello, disk\nlgba: wrote sector 3\nguest> ");
    const expected = new Uint8Array(SECTOR);
    expected.set(new TextEncoder().encode("Hello, disk"));
    assert.deepEqual(sectorOf(path, 3), expected);
    const page = new DataView(session.guest.readBytes(key, 20).buffer);
    assert.deepEqual(
      [page.getInt32(BLOCK_PAGE.type, true), page.getUint32(BLOCK_PAGE.sector, true), page.getUint32(BLOCK_PAGE.bytes, true), page.getInt32(BLOCK_PAGE.result, true)],
      [1, 3, 512, 1], "type write, sector 3, 512 bytes, done",
    );
    const pieces = lastSend(session, key);
    assert.equal(pieces.reduce((n, p) => n + p.len, 0), 512, "the send carries the sector");
    assert.deepEqual(session.guest.readBytes(pieces[0].addr, 11), expected.subarray(0, 11));
    assert.equal(command(session, "disk pattern 9"), "disk pattern 9\nlgba: wrote sector 9\nguest> ");
    assert.deepEqual(sectorOf(path, 9), Uint8Array.from({ length: SECTOR }, (_, i) => (9 + i) & 0xff));
    assert.match(command(session, "disk"), /0 reads, 2 writes, 0 errors/);
    close();
  });
});

test("a read pings with an empty send, and the data lands in the buffer bound at the key; the Guest shows it as hexdump -C does", () => {
  const disk = new Uint8Array(16 * SECTOR);
  for (let i = 0; i < SECTOR; i++) disk[7 * SECTOR + i] = i < 40 ? 0x41 + (i % 26) : i >= 300 ? i & 0xff : 0;
  withDisks([disk], ([path]) => {
    const { session, close } = guestWithDisks([path]);
    const key = session.devicePages[0];
    const out = command(session, "disk read 7");
    assert.equal(out, `disk read 7\n${hexdumpC(sectorOf(path, 7))}guest> `);
    assert.deepEqual(lastSend(session, key), [], "the send is a ping: len[0] is 0");
    const reply = session.binds.find((b) => b.key === key)!.dmas;
    assert.equal(session.guest.read32(reply), 0, "the reply descriptor is free again after the interrupt");
    assert.equal(session.guest.read32(reply + 68) & 0xffff, 512, "and described the 512 bytes read");
    assert.equal(command(session, "disk read 0"), `disk read 0\n${hexdumpC(new Uint8Array(SECTOR))}guest> `, "a zero sector, squeezed to *");
    assert.match(command(session, "disk read 16"), /disk: lgba has sectors 0 to 15; give one of them\n/, "past the end is refused before any request");
    assert.match(command(session, "disk"), /2 reads, 0 writes, 0 errors/);
    close();
  });
});

test("several disks are lgba, lgbb, ... in bus order, each with its own key and irq", () => {
  withDisks([new Uint8Array(8 * SECTOR), new Uint8Array(4096 * SECTOR)], ([first, second]) => {
    const { session, close } = guestWithDisks([first, second]);
    assert.equal(command(session, "disk"),
      "disk\nlgba: 8 sectors (4 KiB), device 0, irq 1; 0 reads, 0 writes, 0 errors\nlgbb: 4096 sectors (2 MiB), device 1, irq 2; 0 reads, 0 writes, 0 errors\nguest> ");
    command(session, "disk lgbb write 5 second disk");
    assert.deepEqual(new Uint8Array(readFileSync(first)), new Uint8Array(8 * SECTOR), "lgba untouched");
    assert.equal(new TextDecoder().decode(sectorOf(second, 5).subarray(0, 11)), "second disk");
    assert.equal(command(session, "disk lgbb read 5"), `disk lgbb read 5\n${hexdumpC(sectorOf(second, 5))}guest> `);
    assert.match(command(session, "disk lgbc"), /disk: no disk called lgbc\n/);
    close();
  });
});

test("a request the Launcher fails (result 2: a read-only file) is reported as failed, and the disk carries on", () => {
  withDisks([new Uint8Array(8 * SECTOR).fill(0x55)], ([path]) => {
    chmodSync(path, 0o444);
    const { session, close } = guestWithDisks([path]);
    assert.equal(command(session, "disk write 1 nope"), "disk write 1 nope\nlgba: the Launcher could not write sector 1\nguest> ");
    assert.deepEqual(new Uint8Array(readFileSync(path)), new Uint8Array(8 * SECTOR).fill(0x55));
    assert.match(command(session, "disk read 1"), /\|UUUUUUUUUUUUUUUU\|/);
    assert.match(command(session, "disk"), /1 read, 1 write, 1 error\n/);
    close();
  });
});

test("an interrupt with no request out is not an answer: counted and ignored (spec 9.2)", () => {
  withDisks([new Uint8Array(8 * SECTOR)], ([path]) => {
    const { session, close } = guestWithDisks([path]);
    session.host.irq(session.guest, 1);
    assert.match(command(session, "disk"), /lgba: 1 interrupt with no request out\n/);
    assert.equal(command(session, "disk write 2 still fine"), "disk write 2 still fine\nlgba: wrote sector 2\nguest> ");
    close();
  });
});
