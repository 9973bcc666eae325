import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { keygen, LocalWorker, sshBanner, sshdConfig } from "./cluster.js";

/**
 * A worker behind a bastion, made of Linux network namespaces on this machine: the leader stays
 * in the root namespace; `jump` (a namespace with an sshd at JUMP_ADDRESS) is reachable from it
 * over a veth pair; `worker` (a namespace with an sshd at WORKER_ADDRESS) is reachable only from
 * `jump`, over a second veth pair. No traffic leaves the machine. Each run has its own namespace
 * names and subnets; stop() deletes them and kills every sshd by its PID.
 */

const run = promisify(execFile);
const SYSTEM_PYTHON = "/usr/bin/python3";

/** Why this machine cannot make network namespaces, or undefined when it can. */
export function netnsUnavailable(): string | undefined {
  if (!existsSync("/usr/sbin/sshd")) return "sshd is not installed";
  const probe = `sc-probe-${process.pid}-${randomBytes(3).toString("hex")}`;
  const made = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (made.error) return `iproute2's ip cannot be run (${made.error.message}): run .ci/install-deps`;
  if (made.status !== 0) return `\`ip netns add\` is not permitted here: ${made.stderr.trim()}`;
  spawnSync("ip", ["netns", "del", probe]);
  return undefined;
}

export interface JumpNetwork {
  dir: string;
  /** Namespace names, for `ip netns exec`. */
  jumpNs: string;
  workerNs: string;
  /** The bastion's address as the leader sees it. */
  jumpAddress: string;
  /** The worker's address as the bastion sees it; nothing routes to it from the leader. */
  workerAddress: string;
  /** The bastion's second sshd, at 127.0.0.1 inside `jump` (a second hop). */
  innerJumpAddress: string;
  jump: LocalWorker;
  innerJump: LocalWorker;
  worker: LocalWorker;
  identityFile: string;
  /** known_hosts with the right keys of all three sshds. */
  knownHosts: string;
  /** "TYPE BASE64" of each sshd's host key. */
  hostKey(which: LocalWorker): string;
  stop(): Promise<void>;
}

/** A /24 of 10.231-232.X that no interface here uses yet. */
function freeSubnet(): number {
  const used = spawnSync("ip", ["-4", "-o", "addr"], { encoding: "utf8" }).stdout;
  for (let attempt = 0; attempt < 64; attempt++) {
    const x = randomBytes(1)[0]!;
    if (!used.includes(`10.231.${x}.`) && !used.includes(`10.232.${x}.`)) return x;
  }
  throw new Error("no free 10.231.X.0/24 subnet for the test network");
}

export async function startJumpNetwork(): Promise<JumpNetwork> {
  const dir = await mkdtemp(join(tmpdir(), "sc-jump-"));
  const tag = `${process.pid.toString(36)}${randomBytes(2).toString("hex")}`.slice(-7);
  const jumpNs = `sc-jump-${tag}`;
  const workerNs = `sc-work-${tag}`;
  const x = freeSubnet();
  const jumpAddress = `10.231.${x}.1`;
  const leaderAddress = `10.231.${x}.2`;
  const workerAddress = `10.232.${x}.2`;
  const jumpInner = `10.232.${x}.1`;
  const made: string[] = [];
  let unreachableRoute = false;
  const daemons: LocalWorker[] = [];
  const stop = async () => {
    await Promise.all(daemons.map((d) => d.stop().catch(() => undefined)));
    // Deleting a namespace deletes its ends of the veth pairs, and with them the other ends.
    for (const ns of made) await run("ip", ["netns", "del", ns]).catch(() => undefined);
    if (unreachableRoute)
      await run("ip", ["route", "del", "unreachable", `10.232.${x}.0/24`]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ip = (...args: string[]) => run("ip", args);
    const inNs = (ns: string, ...args: string[]) => run("ip", ["netns", "exec", ns, "ip", ...args]);
    for (const ns of [jumpNs, workerNs]) {
      await ip("netns", "add", ns);
      made.push(ns);
      await inNs(ns, "link", "set", "lo", "up");
    }
    // Interface names are at most 15 characters.
    const [rootEnd, jumpEnd, jumpWEnd, workerEnd] = ["a", "b", "c", "d"].map((s) => `scj${tag}${s}`);
    await ip("link", "add", rootEnd!, "type", "veth", "peer", "name", jumpEnd!);
    await ip("link", "set", jumpEnd!, "netns", jumpNs);
    await ip("addr", "add", `${leaderAddress}/24`, "dev", rootEnd!);
    await ip("link", "set", rootEnd!, "up");
    await inNs(jumpNs, "addr", "add", `${jumpAddress}/24`, "dev", jumpEnd!);
    await inNs(jumpNs, "link", "set", jumpEnd!, "up");
    await ip("link", "add", jumpWEnd!, "type", "veth", "peer", "name", workerEnd!);
    await ip("link", "set", jumpWEnd!, "netns", jumpNs);
    await ip("link", "set", workerEnd!, "netns", workerNs);
    await inNs(jumpNs, "addr", "add", `${jumpInner}/24`, "dev", jumpWEnd!);
    await inNs(jumpNs, "link", "set", jumpWEnd!, "up");
    await inNs(workerNs, "addr", "add", `${workerAddress}/24`, "dev", workerEnd!);
    await inNs(workerNs, "link", "set", workerEnd!, "up");

    // Without this, a direct attempt at the worker would follow the default route off the machine.
    await ip("route", "add", "unreachable", `10.232.${x}.0/24`);
    unreachableRoute = true;

    const identityFile = join(dir, "client_key");
    await keygen(identityFile);
    const clientPub = readFileSync(`${identityFile}.pub`, "utf8");
    const sshd = async (name: string, ns: string, address: string, reachable: boolean) => {
      const sdir = join(dir, name);
      await run("mkdir", ["-p", sdir]);
      await keygen(join(sdir, "host_ed25519"));
      writeFileSync(join(sdir, "authorized_keys"), clientPub);
      writeFileSync(join(sdir, "sshd_config"), sshdConfig(22, sdir, { listenAddress: address }));
      const pidFile = join(sdir, "sshd.pid");
      const daemon: LocalWorker = new LocalWorker(name, 22, sdir, {
        enter: ["ip", "netns", "exec", ns],
        // sshd writes its PidFile once it listens; from here only the bastion can be dialled.
        listening: reachable
          ? () => sshBanner(22, address)
          : async () => {
              const pid = daemon.pid();
              return pid !== undefined && existsSync(pidFile) && existsSync(`/proc/${pid}`);
            },
      });
      daemons.push(daemon);
      await daemon.start();
      return daemon;
    };
    const jump = await sshd("jump", jumpNs, jumpAddress, true);
    const innerJump = await sshd("inner-jump", jumpNs, "127.0.0.1", false);
    const worker = await sshd("worker", workerNs, workerAddress, false);
    await run(SYSTEM_PYTHON, ["-m", "venv", "--system-site-packages", "--without-pip", worker.venv]);
    const hostKey = (d: LocalWorker) =>
      readFileSync(join(d.dir, "host_ed25519.pub"), "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    const knownHosts = join(dir, "known_hosts");
    writeFileSync(
      knownHosts,
      [
        `${jumpAddress} ${hostKey(jump)}`,
        `127.0.0.1 ${hostKey(innerJump)}`,
        `${workerAddress} ${hostKey(worker)}`,
        "",
      ].join("\n"),
    );
    return {
      dir,
      jumpNs,
      workerNs,
      jumpAddress,
      workerAddress,
      innerJumpAddress: "127.0.0.1",
      jump,
      innerJump,
      worker,
      identityFile,
      knownHosts,
      hostKey,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Established TCP connections to port 22 inside namespace `ns` (sshd's side), by peer address. */
export async function sshPeers(ns: string): Promise<string[]> {
  const { stdout } = await run("ip", [
    "netns",
    "exec",
    ns,
    "ss",
    "-Htn",
    "state",
    "established",
    "( sport = :22 )",
  ]);
  return stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => line.trim().split(/\s+/).at(-1)!.replace(/:\d+$/, ""));
}
