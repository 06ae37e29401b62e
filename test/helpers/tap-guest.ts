// The book's Guest on --tunnet, for test/guest-net.test.ts, run inside a
// network namespace made for it (unshare --net, as root): the launcher as a
// person runs it, with ip=GUEST_IP; once the Guest is up, the host's own
// ping(8) pings it through the TAP, then the Guest pings the host back, and
// the Guest's ifconfig is taken. Prints one JSON line: ping's output and
// status, and everything the Guest printed.
//
//   unshare --net node --import tsx test/helpers/tap-guest.ts HOST_IP GUEST_IP
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";

const [hostIp, guestIp] = process.argv.slice(2);
const root = join(import.meta.dirname, "..", "..");
spawnSync("ip", ["link", "set", "lo", "up"]);
const launcher = spawn(process.execPath, ["--import", "tsx", "lguest.ts", `--tunnet=${hostIp}`, "32m", "images/vmlinux", `ip=${guestIp}`], {
  cwd: root, stdio: ["pipe", "pipe", "inherit"],
});
let output = "";
launcher.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("latin1")));
const exited = new Promise<number | null>((resolve) => launcher.on("exit", resolve));

async function until(done: () => boolean, what: string): Promise<void> {
  for (const start = Date.now(); !done(); await new Promise((resolve) => setTimeout(resolve, 50))) {
    if (Date.now() - start > 90_000 || launcher.exitCode !== null) throw new Error(`gave up waiting for ${what}:\n${output}`);
  }
}

try {
  await until(() => output.includes(`eth0: ${guestIp} `) && output.endsWith("guest> "), "the prompt");
  const ping = spawnSync("ping", ["-c", "3", "-W", "10", guestIp], { encoding: "utf8", timeout: 60_000 });
  let from = output.length;
  launcher.stdin.write(`ping -c 2 ${hostIp}\r`);
  await until(() => /packet loss[^]*guest> $/.test(output.slice(from)), "the Guest's ping");
  from = output.length;
  launcher.stdin.write("ifconfig\r");
  await until(() => /TX packets[^]*guest> $/.test(output.slice(from)), "ifconfig");
  launcher.stdin.write("halt\r");
  const status = await exited;
  console.log(JSON.stringify({ ping: { status: ping.status, output: ping.stdout + ping.stderr }, status, output }));
} catch (error) {
  launcher.kill();
  await exited;
  console.log(JSON.stringify({ error: String(error), output }));
}
