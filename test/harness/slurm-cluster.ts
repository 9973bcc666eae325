import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, constants, tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  type CommandResult,
  freePort,
  keygen,
  LocalWorker,
  sshdAvailable,
  sshdConfig,
  sshRun,
  track,
  type WorkerHandle,
  waitUntil,
} from "./cluster.js";

/**
 * A real Slurm cluster on one machine, for tests that run Toil with `--batchSystem slurm`.
 *
 * Every node (a "leader" and compute nodes n1..nN) is a Linux UTS + mount namespace held open by
 * a `sleep`: its own hostname, and its own private directory bind-mounted at the same path,
 * /srv/sc, on every node (so /srv/sc/venv is one path everywhere but one copy per node, as on
 * real machines). The network and everything outside /srv/sc are shared: the cluster's `shared`
 * directory is the cluster file system (job stores, workflow files). Each node runs its own sshd
 * (like cluster.ts's workers) and each compute node a slurmd, which finds its NodeName from its
 * hostname: Debian's Slurm has no --enable-multiple-slurmd, hence the namespaces. slurmctld runs
 * in the leader's namespace; munged on the host, with its own key and socket.
 */

/** The path, the same on every node, where each node's private directory is mounted. */
export const NODE_ROOT = "/srv/sc";
const SYSTEM_PYTHON = "/usr/bin/python3";
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const BINARIES = [
  "/usr/sbin/munged",
  "/usr/sbin/slurmctld",
  "/usr/sbin/slurmd",
  "/usr/bin/sbatch",
  "/usr/bin/scontrol",
  "/usr/bin/sinfo",
  "/usr/bin/unshare",
  "/usr/bin/nsenter",
];

let unavailable: string | false | undefined;

/** Why a Slurm cluster cannot start here, or false when it can. */
export function whySlurmUnavailable(): string | false {
  if (unavailable !== undefined) return unavailable;
  const missing = BINARIES.filter((b) => !existsSync(b));
  if (missing.length > 0) unavailable = `not installed: ${missing.join(", ")} (see .ci/install-deps)`;
  else if (!sshdAvailable()) unavailable = "sshd is not installed";
  else {
    try {
      execFileSync("/usr/bin/unshare", ["--uts", "--mount", "--propagation", "private", "--", "true"], {
        stdio: "pipe",
      });
      unavailable = false;
    } catch (e) {
      const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
      unavailable = `unshare --uts --mount fails (needs root): ${stderr || String(e)}`;
    }
  }
  return unavailable;
}

export function slurmAvailable(): boolean {
  return whySlurmUnavailable() === false;
}

/**
 * A node: `dir` is its directory on the host (sshd config, host key, logs); `venv`, `deployDir`
 * and `python()` are paths inside the node (/srv/sc/...); `stop`/`start` stop and start its sshd.
 */
export interface SlurmNode extends WorkerHandle {
  /** Its hostname inside its namespace, also its Slurm NodeName ("leader", "n1", ...). */
  hostname: string;
  /** On the host: the directory mounted at /srv/sc inside the node. */
  privateDir: string;
  /** The process holding the node's namespaces. */
  holderPid: number;
  /** `sh -c command` inside the node's namespaces, with the cluster's env() and `env` over it. */
  exec(command: string, env?: Record<string, string>): Promise<CommandResult>;
}

export interface SlurmCluster {
  dir: string;
  /** Seen at this same path on every node and the host: job stores, workflow files. */
  shared: string;
  slurmConf: string;
  leader: SlurmNode;
  /** The compute nodes n1..nN. */
  nodes: SlurmNode[];
  identityFile: string;
  knownHosts: string;
  inventoryPath: string;
  /** The environment to run sbatch, squeue or Toil with (on the host or in a node). */
  env(extra?: Record<string, string>): Record<string, string>;
  /** An inventory whose leader is the leader's sshd and whose workers are the compute nodes. */
  writeInventory(options?: {
    workers?: SlurmNode[];
    project?: Record<string, unknown>;
    extra?: Record<string, unknown>;
  }): string;
  /** Runs `command` over a real ssh login to `node`. */
  ssh(node: SlurmNode, command: string): Promise<CommandResult>;
  /** The tails of every daemon's log, for error messages. */
  logs(): string;
  stop(): Promise<void>;
}

export interface SlurmClusterOptions {
  /** Compute nodes, named n1..nN. */
  nodes: number;
  /** A venv at /srv/sc/venv on every node, leader included (default true). */
  venv?: boolean;
  /** CPUs each compute node offers Slurm (default: the machine's). */
  cpus?: number;
  /** Memory each compute node offers Slurm, in MiB (default 1024). */
  memoryMb?: number;
  /** Keep the temporary directory after stop (default false). */
  keep?: boolean;
}

// Every cluster of this process not stopped yet. On exit, every process inside its namespaces
// (slurmstepd and job processes included, which no longer descend from what we spawned) is killed
// and its directory removed; cluster.ts's exit handler kills the daemons we spawned.
const live = new Set<{ namespaces: string[]; dir: string; keep: boolean }>();
process.on("exit", () => {
  for (const cluster of live) {
    for (const ns of cluster.namespaces) killNamespace(ns);
    if (!cluster.keep) rmSync(cluster.dir, { recursive: true, force: true, maxRetries: 2 });
  }
});

/** PIDs of every live process whose mount namespace is `ns` (as read from /proc/PID/ns/mnt). */
export function processesIn(ns: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/mnt`) === ns) found.push(Number(name));
    } catch {
      // Gone, or a zombie (whose namespaces are no longer readable).
    }
  }
  return found;
}

export function killNamespace(ns: string): number[] {
  const pids = processesIn(ns);
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  return pids;
}

export function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The last lines of a log, headed by its path; nothing for a missing or empty file. */
export function tail(file: string, lines = 40): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd().split("\n");
    if (text.length === 1 && text[0] === "") return "";
    return `--- ${file}${text.length > lines ? ` (last ${lines} lines)` : ""}\n${text.slice(-lines).join("\n")}\n`;
  } catch {
    return "";
  }
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Ports no other call here returned: freePort alone may hand out the same port twice. */
export async function distinctPorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Runs a program on the host and collects its output; never rejects. */
export function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    track(child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (e) => {
      stderr += String(e);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? 128 + (signal ? constants.signals[signal] : 0), stdout, stderr });
    });
  });
}

/** The command line prefix that runs a program in `holderPid`'s namespaces, as that same process. */
function enter(holderPid: number): string[] {
  // Without --fork (and without --pid) nsenter execs the program: the PID is the program's.
  return ["/usr/bin/nsenter", "--target", String(holderPid), "--uts", "--mount", "--"];
}

class Node extends LocalWorker implements SlurmNode {
  readonly hostname: string;
  readonly privateDir: string;
  /** The node's mount namespace as /proc/PID/ns/mnt names it, once the holder is ready. */
  namespace = "";

  constructor(
    name: string,
    port: number,
    dir: string,
    readonly holderPid: number,
    private readonly baseEnv: () => Record<string, string>,
  ) {
    super(name, port, dir, {
      venv: join(NODE_ROOT, "venv"),
      deployDir: join(NODE_ROOT, "deploy"),
      enter: enter(holderPid),
    });
    this.hostname = name;
    this.privateDir = join(dir, "root");
  }

  /** `argv` run inside this node, as [command, args] for spawn. */
  enterArgs(argv: string[]): [string, string[]] {
    const [command, ...args] = [...enter(this.holderPid), ...argv];
    return [command!, args];
  }

  exec(command: string, env: Record<string, string> = {}): Promise<CommandResult> {
    const [cmd, args] = this.enterArgs(["/bin/sh", "-c", command]);
    return run(cmd, args, { ...this.baseEnv(), ...env }, 10 * 60_000);
  }
}

export async function startSlurmCluster(options: SlurmClusterOptions): Promise<SlurmCluster> {
  const reason = whySlurmUnavailable();
  if (reason) throw new Error(`Slurm cannot start here: ${reason}`);
  const dir = await mkdtemp(join(tmpdir(), "sc-slurm-"));
  const shared = join(dir, "shared");
  const slurmConf = join(dir, "slurm.conf");
  const identityFile = join(dir, "client_key");
  const knownHosts = join(dir, "known_hosts");
  const inventoryPath = join(dir, "inventory.yaml");
  const mungeDir = join(dir, "munge");
  const mungeSocket = join(mungeDir, "munge.socket");
  const daemons: ChildProcess[] = [];
  const all: Node[] = [];
  let stopped = false;
  const self = { namespaces: [] as string[], dir, keep: options.keep === true };
  live.add(self);

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    PATH,
    HOME: process.env.HOME ?? "/root",
    LANG: "C.UTF-8",
    SLURM_CONF: slurmConf,
    ...extra,
  });

  const nodeLogs = (n: Node) =>
    ["holder.log", "slurmd.log", "slurmd.out", "sshd.log"].map((f) => tail(join(n.dir, f), 25)).join("");
  const logs = () =>
    tail(join(mungeDir, "munged.out"), 15) +
    tail(join(dir, "slurmctld.log")) +
    tail(join(dir, "slurmctld.out"), 15) +
    all.map(nodeLogs).join("");

  /** Starts a daemon on the host, its stdout and stderr appended to `log`. */
  const daemon = (command: string, args: string[], log: string): ChildProcess => {
    const fd = openSync(log, "a");
    const child = spawn(command, args, { env: env(), stdio: ["ignore", fd, fd] });
    closeSync(fd);
    track(child);
    daemons.push(child);
    return child;
  };

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    // Everything inside the nodes (sshd and its sessions, slurmd, slurmstepd, jobs, slurmctld,
    // the holders), then the rest (munged); nothing outside what this cluster started.
    for (let round = 0; round < 50; round++) {
      let left = 0;
      for (const n of all) if (n.namespace) left += killNamespace(n.namespace).length;
      if (left === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    live.delete(self);
    for (const child of daemons) child.kill("SIGKILL");
    await Promise.all(daemons.map(exited));
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }

  try {
    mkdirSync(NODE_ROOT, { recursive: true });
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    mkdirSync(shared, { mode: 0o755 });
    mkdirSync(mungeDir, { mode: 0o755 });
    mkdirSync(join(dir, "nodes"));

    // munged, with its own key, socket, pid, log and seed.
    writeFileSync(join(mungeDir, "munge.key"), randomBytes(1024), { mode: 0o400 });
    const munged = daemon(
      "/usr/sbin/munged",
      [
        "--foreground",
        "--force",
        `--key-file=${join(mungeDir, "munge.key")}`,
        `--socket=${mungeSocket}`,
        `--pid-file=${join(mungeDir, "munged.pid")}`,
        `--log-file=${join(mungeDir, "munged.log")}`,
        `--seed-file=${join(mungeDir, "munged.seed")}`,
      ],
      join(mungeDir, "munged.out"),
    );

    await keygen(identityFile);
    const clientPub = readFileSync(`${identityFile}.pub`, "utf8");
    writeFileSync(knownHosts, "");

    const names = ["leader", ...Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`)];
    const ports = await distinctPorts(1 + names.length + options.nodes);
    const ctldPort = ports[0]!;
    const sshPorts = ports.slice(1, 1 + names.length);
    const slurmdPorts = ports.slice(1 + names.length);

    // Each node: its holder (hostname set, private directory mounted), then its sshd and venv.
    const nodeUp = async (name: string, index: number): Promise<Node> => {
      const ndir = join(dir, "nodes", name);
      const root = join(ndir, "root");
      mkdirSync(root, { recursive: true });
      const holder = daemon(
        "/usr/bin/unshare",
        [
          "--uts",
          "--mount",
          "--propagation",
          "private",
          "--",
          "/bin/sh",
          "-c",
          `hostname ${quote(name)} && mount --bind ${quote(root)} ${NODE_ROOT} && exec sleep infinity`,
        ],
        join(ndir, "holder.log"),
      );
      const node = new Node(name, sshPorts[index]!, ndir, holder.pid!, env);
      all.push(node);
      await waitUntil(
        `the namespace of ${name} was not ready`,
        async () => {
          if (holder.exitCode !== null || holder.signalCode !== null)
            throw new Error(`the namespace holder of ${name} exited: ${tail(join(ndir, "holder.log"))}`);
          // The holder execs sleep once the hostname is set and the directory mounted.
          try {
            if (readFileSync(`/proc/${holder.pid}/comm`, "utf8").trim() !== "sleep") return false;
            node.namespace = readlinkSync(`/proc/${holder.pid}/ns/mnt`);
          } catch {
            return false;
          }
          self.namespaces.push(node.namespace);
          return true;
        },
        10_000,
        () => tail(join(ndir, "holder.log")),
      );
      await keygen(join(ndir, "host_ed25519"));
      writeFileSync(join(ndir, "authorized_keys"), clientPub);
      writeFileSync(join(ndir, "sshd_config"), sshdConfig(node.port, ndir));
      const hostPub = readFileSync(join(ndir, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
      appendFileSync(knownHosts, `[127.0.0.1]:${node.port} ${hostPub[0]} ${hostPub[1]}\n`);
      if (options.venv !== false) {
        const made = await node.exec(
          `${SYSTEM_PYTHON} -m venv --system-site-packages --without-pip ${quote(node.venv)}`,
        );
        if (made.code !== 0) throw new Error(`making the venv of ${name} failed: ${made.stderr}`);
      }
      await node.start();
      return node;
    };
    // Settled, not raced: a failed node must not leave the others starting after stop().
    const settled = await Promise.allSettled(names.map(nodeUp));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    const started = settled.map((s) => (s as PromiseFulfilledResult<Node>).value);
    const leader = started[0]!;
    const nodes = started.slice(1);

    await waitUntil(
      "munged did not create its socket",
      async () => {
        if (munged.exitCode !== null) throw new Error(`munged exited: ${logs()}`);
        return existsSync(mungeSocket);
      },
      10_000,
      logs,
    );

    writeFileSync(
      slurmConf,
      slurmConfig({
        dir,
        ctldPort,
        mungeSocket,
        nodes: nodes.map((n, i) => ({ name: n.name, port: slurmdPorts[i]! })),
        cpus: options.cpus ?? availableParallelism(),
        memoryMb: options.memoryMb ?? 1024,
      }),
    );

    // slurmctld in the leader's namespace, as SlurmctldHost says.
    const [ctldCmd, ctldArgs] = leader.enterArgs(["/usr/sbin/slurmctld", "-D", "-f", slurmConf]);
    const slurmctld = daemon(ctldCmd, ctldArgs, join(dir, "slurmctld.out"));
    let ping: CommandResult | undefined;
    await waitUntil(
      "slurmctld did not answer `scontrol ping`",
      async () => {
        if (slurmctld.exitCode !== null || slurmctld.signalCode !== null)
          throw new Error(`slurmctld exited (${slurmctld.exitCode ?? slurmctld.signalCode}): ${logs()}`);
        ping = await run("/usr/bin/scontrol", ["ping"], env(), 10_000);
        if (ping.code === 0 && / is UP/.test(ping.stdout)) return true;
        await new Promise((r) => setTimeout(r, 200));
        return false;
      },
      30_000,
      () => `${ping?.stdout ?? ""}${ping?.stderr ?? ""}\n${logs()}`,
    );

    // A slurmd in every compute node; each finds its NodeName from the namespace's hostname.
    const slurmds = nodes.map((n) => {
      const [cmd, args] = n.enterArgs(["/usr/sbin/slurmd", "-D", "-f", slurmConf]);
      return daemon(cmd, args, join(n.dir, "slurmd.out"));
    });
    let states = "";
    await waitUntil(
      `the nodes were not all idle in sinfo`,
      async () => {
        for (const [i, s] of slurmds.entries())
          if (s.exitCode !== null || s.signalCode !== null)
            throw new Error(`slurmd of ${nodes[i]!.name} exited: ${logs()}`);
        const sinfo = await run("/usr/bin/sinfo", ["-N", "-h", "-o", "%N %T"], env(), 10_000);
        states = sinfo.stdout + sinfo.stderr;
        const idle = new Set(
          sinfo.stdout
            .split("\n")
            .map((l) => l.trim().split(/\s+/))
            .filter(([, state]) => state === "idle")
            .map(([name]) => name),
        );
        if (nodes.every((n) => idle.has(n.name))) return true;
        await new Promise((r) => setTimeout(r, 200));
        return false;
      },
      60_000,
      () => `sinfo: ${states}\n${logs()}`,
    );

    const cluster: SlurmCluster = {
      dir,
      shared,
      slurmConf,
      leader,
      nodes,
      identityFile,
      knownHosts,
      inventoryPath,
      env,
      writeInventory(opts = {}) {
        const extra = { ...opts.extra };
        const defaults = {
          user: "root",
          identityFile,
          knownHosts,
          ...(extra.defaults as Record<string, unknown> | undefined),
        };
        delete extra.defaults;
        const entry = (n: SlurmNode) => ({
          name: n.name,
          host: "127.0.0.1",
          port: n.port,
          venv: n.venv,
          deployDir: n.deployDir,
        });
        const doc = {
          project: { ...opts.project },
          defaults,
          leader: entry(leader),
          workers: (opts.workers ?? nodes).map(entry),
          // As cluster.ts: commands connect directly, so a test (its watch too) leaves no daemon behind.
          daemon: "off",
          ...extra,
        };
        writeFileSync(inventoryPath, stringify(doc));
        return inventoryPath;
      },
      ssh(node, command) {
        return sshRun({ port: node.port, user: "root", identityFile, knownHosts }, command);
      },
      logs,
      stop,
    };
    return cluster;
  } catch (error) {
    const detail = stopped ? "" : logs();
    await stop();
    if (error instanceof Error && detail && !error.message.includes("--- ")) error.message += `\n${detail}`;
    throw error;
  }
}

function slurmConfig(c: {
  dir: string;
  ctldPort: number;
  mungeSocket: string;
  nodes: { name: string; port: number }[];
  cpus: number;
  memoryMb: number;
}): string {
  const perNode = join(c.dir, "nodes", "%n");
  return [
    `ClusterName=sc${randomBytes(3).toString("hex")}`,
    // slurmctld runs in the leader's namespace; everything talks over loopback.
    "SlurmctldHost=leader(127.0.0.1)",
    `SlurmctldPort=${c.ctldPort}`,
    "SlurmUser=root",
    "SlurmdUser=root",
    "AuthType=auth/munge",
    "CredType=cred/munge",
    `AuthInfo=socket=${c.mungeSocket}`,
    `StateSaveLocation=${join(c.dir, "slurmctld-state")}`,
    `SlurmctldPidFile=${join(c.dir, "slurmctld.pid")}`,
    `SlurmctldLogFile=${join(c.dir, "slurmctld.log")}`,
    "SlurmctldDebug=info",
    // One spool, pid and log per node: every slurmd shares the host's file system.
    `SlurmdSpoolDir=${join(perNode, "spool")}`,
    `SlurmdPidFile=${join(perNode, "slurmd.pid")}`,
    `SlurmdLogFile=${join(perNode, "slurmd.log")}`,
    "SlurmdDebug=info",
    // Node sizes are what this file says, not what each slurmd finds (they all see one machine).
    "SlurmdParameters=config_overrides",
    // No cgroups, no accounting: nothing that needs more than a plain root process.
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
    "JobCompType=jobcomp/none",
    "MpiDefault=none",
    "MailProg=/bin/true",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_Core_Memory",
    // Toil polls every 1.2 x SchedulerTimeSlice (5 s is Slurm's minimum) unless told otherwise.
    "SchedulerTimeSlice=5",
    // Finished jobs stay visible to `scontrol show job`, which Toil reads when sacct cannot answer.
    "MinJobAge=600",
    "ReturnToService=2",
    "InactiveLimit=0",
    "KillWait=5",
    ...c.nodes.map(
      (n) =>
        `NodeName=${n.name} NodeAddr=127.0.0.1 Port=${n.port} CPUs=${c.cpus} RealMemory=${c.memoryMb} State=UNKNOWN`,
    ),
    "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    "",
  ].join("\n");
}
