import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  type CommandResult,
  keygen,
  LocalWorker,
  sshBanner,
  sshdAvailable,
  sshdConfig,
  sshRun,
  track,
  type WorkerHandle,
  waitUntil,
} from "./cluster.js";
import { exited, killNamespace, NODE_ROOT, quote, run, tail } from "./slurm-cluster.js";

/**
 * A real Son of Grid Engine cluster on one machine, for tests that run Toil with
 * `--batchSystem grid_engine`.
 *
 * Grid Engine tells hosts apart by the name the address of a connection resolves to, so every
 * node (the "leader", which runs sge_qmaster and submits, and the exec hosts g1..gN, each with an
 * sge_execd) is a network namespace of its own with its own address, plus a UTS and a mount
 * namespace: its hostname, the cluster's /etc/hosts bind-mounted over the machine's, and its own
 * private directory at /srv/sc (its venv, its deploy directory, its execd spool), as the Slurm
 * nodes have. The namespaces are joined by a bridge in one more network namespace, and this
 * process reaches them over a veth on that bridge: no traffic leaves the addresses the cluster
 * made (a free 10.233.X.0/24), and nothing outside its temporary directory is configured: the
 * cell (SGE_ROOT, bootstrap, classic spooling) is built there, with its own ports, whatever
 * Debian's packages installed or started.
 *
 * The queue is Grid Engine's default kind: shell_start_mode posix_compliant, /bin/sh, which is in
 * login_shells, so a job's command runs under a login shell whose start-up files set its PATH
 * (qsub -V carries every other variable). The daemons run with the PATH an init system gives them.
 */

const EXECD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const SYSTEM_PYTHON = "/usr/bin/python3";
const CELL = "sc";
/** Inside each node's network namespace nothing else listens: Grid Engine's usual ports are free. */
const QMASTER_PORT = 6444;
const EXECD_PORT = 6445;
/** Where Debian's packages keep the architecture scripts and binaries a cell's SGE_ROOT links to. */
const DEBIAN_SGE_ROOT = "/var/lib/gridengine";
const BINARIES = [
  "/usr/sbin/sge_qmaster",
  "/usr/sbin/sge_execd",
  "/usr/sbin/sge_shepherd",
  "/usr/bin/qsub",
  "/usr/bin/qconf",
  "/usr/bin/qstat",
  "/usr/bin/qacct",
  "/usr/lib/gridengine/spoolinit",
  "/usr/lib/gridengine/spooldefaults",
  "/usr/share/gridengine/default-configuration",
  "/usr/bin/unshare",
  "/usr/bin/nsenter",
];

let unavailable: string | false | undefined;

/** Why a Grid Engine cluster cannot start here, or false when it can. */
export function whyGridEngineUnavailable(): string | false {
  if (unavailable !== undefined) return unavailable;
  const missing = BINARIES.filter((b) => !existsSync(b));
  if (missing.length > 0) unavailable = `not installed: ${missing.join(", ")} (see .ci/install-deps)`;
  else if (!sshdAvailable()) unavailable = "sshd is not installed";
  else {
    const probe = `sc-sge-probe-${process.pid}-${randomBytes(3).toString("hex")}`;
    const made = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
    if (made.error) unavailable = `iproute2's ip cannot be run (${made.error.message}): run .ci/install-deps`;
    else if (made.status !== 0) unavailable = `\`ip netns add\` is not permitted here: ${made.stderr.trim()}`;
    else {
      spawnSync("ip", ["netns", "del", probe]);
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
  }
  return unavailable;
}

export interface GridEngineNode extends WorkerHandle {
  /** Its hostname, also its Grid Engine host name ("leader", "g1", ...). */
  hostname: string;
  /** Its address on the cluster's network; its sshd listens there on port 22. */
  address: string;
  /** On the host: the directory mounted at /srv/sc inside the node. */
  privateDir: string;
  holderPid: number;
  /** `sh -c command` inside the node's namespaces, with the cluster's env() and `env` over it. */
  exec(command: string, env?: Record<string, string>, timeoutMs?: number): Promise<CommandResult>;
}

export interface GridEngineCluster {
  dir: string;
  /** Seen at this same path on every node and the host: job stores, job output. */
  shared: string;
  /** The cell's SGE_ROOT (its cell directory is `sc`). */
  sgeRoot: string;
  /** Runs sge_qmaster and submits jobs. */
  leader: GridEngineNode;
  /** The exec hosts g1..gN. */
  nodes: GridEngineNode[];
  /** The queue every exec host serves. */
  queue: string;
  identityFile: string;
  knownHosts: string;
  inventoryPath: string;
  /** The environment qsub, qstat or Toil run with (inside a node). */
  env(extra?: Record<string, string>): Record<string, string>;
  writeInventory(options?: {
    workers?: GridEngineNode[];
    project?: Record<string, unknown>;
    extra?: Record<string, unknown>;
  }): string;
  ssh(node: GridEngineNode, command: string): Promise<CommandResult>;
  logs(): string;
  stop(): Promise<void>;
}

export interface GridEngineClusterOptions {
  /** Exec hosts, named g1..gN. */
  nodes: number;
  /** Job slots each exec host offers (default 1). */
  slots?: number;
  keep?: boolean;
}

// Clusters not stopped yet: on exit, every process in their namespaces is killed and the
// namespaces deleted (cluster.ts's exit handler kills what we spawned).
const live = new Set<{ namespaces: string[]; netns: string[]; dir: string; keep: boolean }>();
process.on("exit", () => {
  for (const cluster of live) {
    for (const ns of cluster.namespaces) killNamespace(ns);
    for (const ns of cluster.netns) spawnSync("ip", ["netns", "del", ns]);
    if (!cluster.keep) rmSync(cluster.dir, { recursive: true, force: true, maxRetries: 2 });
  }
});

/** A /24 of 10.233.X that no interface here uses yet (the jump-host tests use 10.231-232). */
function freeSubnet(): number {
  const used = spawnSync("ip", ["-4", "-o", "addr"], { encoding: "utf8" }).stdout;
  for (let attempt = 0; attempt < 64; attempt++) {
    const x = randomBytes(1)[0]!;
    if (!used.includes(`10.233.${x}.`)) return x;
  }
  throw new Error("no free 10.233.X.0/24 subnet for the Grid Engine test network");
}

function enter(holderPid: number): string[] {
  // Without --fork nsenter execs the program: the PID is the program's.
  return ["/usr/bin/nsenter", "--target", String(holderPid), "--net", "--uts", "--mount", "--"];
}

class Node extends LocalWorker implements GridEngineNode {
  readonly hostname: string;
  readonly privateDir: string;
  namespace = "";

  constructor(
    name: string,
    readonly address: string,
    dir: string,
    readonly holderPid: number,
    private readonly baseEnv: () => Record<string, string>,
  ) {
    super(name, 22, dir, {
      venv: join(NODE_ROOT, "venv"),
      deployDir: join(NODE_ROOT, "deploy"),
      enter: enter(holderPid),
      listening: () => sshBanner(22, address),
    });
    this.hostname = name;
    this.privateDir = join(dir, "root");
  }

  enterArgs(argv: string[]): [string, string[]] {
    const [command, ...args] = [...enter(this.holderPid), ...argv];
    return [command!, args];
  }

  exec(command: string, env: Record<string, string> = {}, timeoutMs = 5 * 60_000): Promise<CommandResult> {
    const [cmd, args] = this.enterArgs(["/bin/sh", "-c", command]);
    return run(cmd, args, { ...this.baseEnv(), ...env }, timeoutMs);
  }
}

export async function startGridEngineCluster(options: GridEngineClusterOptions): Promise<GridEngineCluster> {
  const reason = whyGridEngineUnavailable();
  if (reason) throw new Error(`Grid Engine cannot start here: ${reason}`);
  const dir = await mkdtemp(join(tmpdir(), "sc-sge-"));
  const shared = join(dir, "shared");
  const sgeRoot = join(dir, "sge");
  const common = join(sgeRoot, CELL, "common");
  const spool = join(dir, "qmaster-spool");
  const identityFile = join(dir, "client_key");
  const knownHosts = join(dir, "known_hosts");
  const inventoryPath = join(dir, "inventory.yaml");
  const queue = "sc.q";
  // Each job's TMPDIR is named after its job id, which another cluster on this machine reuses.
  const jobTmp = join(dir, "job-tmp");
  const tag = `${process.pid.toString(36)}${randomBytes(2).toString("hex")}`.slice(-6);
  const x = freeSubnet();
  const switchNs = `sc-sge-${tag}-sw`;
  const daemons: ChildProcess[] = [];
  const all: Node[] = [];
  let stopped = false;
  const self = { namespaces: [] as string[], netns: [] as string[], dir, keep: options.keep === true };
  live.add(self);

  const env = (extra: Record<string, string> = {}): Record<string, string> => ({
    PATH: EXECD_PATH,
    HOME: process.env.HOME ?? "/root",
    LANG: "C.UTF-8",
    SGE_ROOT: sgeRoot,
    SGE_CELL: CELL,
    SGE_QMASTER_PORT: String(QMASTER_PORT),
    SGE_EXECD_PORT: String(EXECD_PORT),
    ...extra,
  });

  const nodeLogs = (n: Node) =>
    ["holder.log", "execd.out", "sshd.log"].map((f) => tail(join(n.dir, f), 20)).join("") +
    tail(join(n.privateDir, "sge-spool", n.hostname, "messages"), 20);
  const logs = () =>
    tail(join(dir, "qmaster.out"), 15) + tail(join(spool, "messages"), 30) + all.map(nodeLogs).join("");

  const daemon = (command: string, args: string[], log: string, extraEnv: Record<string, string> = {}) => {
    const fd = openSync(log, "a");
    const child = spawn(command, args, { env: env(extraEnv), stdio: ["ignore", fd, fd] });
    closeSync(fd);
    track(child);
    daemons.push(child);
    return child;
  };

  const ip = async (...args: string[]) => {
    const r = await run("ip", args, env(), 10_000);
    if (r.code !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
  };

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    // Everything inside the nodes (sshd and its sessions, sge_qmaster, sge_execd, shepherds, jobs,
    // the holders), then the daemons started outside them, then the networks.
    for (let round = 0; round < 50; round++) {
      let left = 0;
      for (const n of all) if (n.namespace) left += killNamespace(n.namespace).length;
      if (left === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const child of daemons) child.kill("SIGKILL");
    await Promise.all(daemons.map(exited));
    // Deleting a namespace deletes its ends of the veth pairs, and with them the other ends.
    for (const ns of self.netns) await run("ip", ["netns", "del", ns], env(), 10_000);
    live.delete(self);
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }

  try {
    mkdirSync(NODE_ROOT, { recursive: true });
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    mkdirSync(shared, { mode: 0o755 });
    mkdirSync(jobTmp, { mode: 0o755 });
    mkdirSync(join(dir, "nodes"));

    const names = ["leader", ...Array.from({ length: options.nodes }, (_, i) => `g${i + 1}`)];
    const addressOf = (i: number) => `10.233.${x}.${11 + i}`;
    const hosts = join(dir, "hosts");
    writeFileSync(
      hosts,
      ["127.0.0.1 localhost", ...names.map((n, i) => `${addressOf(i)} ${n}`), ""].join("\n"),
    );

    // The network: a bridge in a namespace of its own, each node's veth on it, and one for this process.
    await ip("netns", "add", switchNs);
    self.netns.push(switchNs);
    await ip("-n", switchNs, "link", "set", "lo", "up");
    await ip("-n", switchNs, "link", "add", "br0", "type", "bridge");
    await ip("-n", switchNs, "link", "set", "br0", "up");
    const plug = async (outer: string, inner: string, innerNs: string | null, address: string) => {
      await ip("link", "add", outer, "type", "veth", "peer", "name", inner);
      await ip("link", "set", outer, "netns", switchNs);
      await ip("-n", switchNs, "link", "set", outer, "master", "br0");
      await ip("-n", switchNs, "link", "set", outer, "up");
      const where = innerNs ? ["-n", innerNs] : [];
      if (innerNs) await ip("link", "set", inner, "netns", innerNs);
      await ip(...where, "addr", "add", `${address}/24`, "dev", inner);
      await ip(...where, "link", "set", inner, "up");
    };
    // Interface names are at most 15 characters.
    await plug(`scg${tag}h0`, `scg${tag}h1`, null, `10.233.${x}.254`);

    await keygen(identityFile);
    const clientPub = readFileSync(`${identityFile}.pub`, "utf8");
    writeFileSync(knownHosts, "");

    const nodeUp = async (name: string, index: number): Promise<Node> => {
      const netns = `sc-sge-${tag}-${name}`;
      await ip("netns", "add", netns);
      self.netns.push(netns);
      await ip("-n", netns, "link", "set", "lo", "up");
      await plug(`scg${tag}${index}o`, `scg${tag}${index}i`, netns, addressOf(index));
      const ndir = join(dir, "nodes", name);
      const root = join(ndir, "root");
      mkdirSync(root, { recursive: true });
      // ip netns exec and unshare both exec: the holder's PID is sleep's.
      const holder = daemon(
        "ip",
        [
          "netns",
          "exec",
          netns,
          "/usr/bin/unshare",
          "--uts",
          "--mount",
          "--propagation",
          "private",
          "--",
          "/bin/sh",
          "-c",
          `hostname ${quote(name)} && mount --bind ${quote(hosts)} /etc/hosts && mount --bind ${quote(root)} ${NODE_ROOT} && exec sleep infinity`,
        ],
        join(ndir, "holder.log"),
      );
      const node = new Node(name, addressOf(index), ndir, holder.pid!, env);
      all.push(node);
      await waitUntil(
        `the namespace of ${name} was not ready`,
        async () => {
          if (holder.exitCode !== null || holder.signalCode !== null)
            throw new Error(`the namespace holder of ${name} exited: ${tail(join(ndir, "holder.log"))}`);
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
      writeFileSync(join(ndir, "sshd_config"), sshdConfig(22, ndir, { listenAddress: node.address }));
      const hostPub = readFileSync(join(ndir, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
      appendFileSync(knownHosts, `${node.address} ${hostPub[0]} ${hostPub[1]}\n`);
      const made = await node.exec(
        `${SYSTEM_PYTHON} -m venv --system-site-packages --without-pip ${quote(node.venv)}`,
      );
      if (made.code !== 0) throw new Error(`making the venv of ${name} failed: ${made.stderr}`);
      await node.start();
      return node;
    };
    const settled = await Promise.allSettled(names.map(nodeUp));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    const started = settled.map((s) => (s as PromiseFulfilledResult<Node>).value);
    const leader = started[0]!;
    const nodes = started.slice(1);

    // The cell: SGE_ROOT links Debian's architecture scripts and binaries; everything else is ours.
    mkdirSync(common, { recursive: true });
    mkdirSync(spool);
    for (const part of ["util", "bin", "lib", "utilbin"])
      symlinkSync(join(DEBIAN_SGE_ROOT, part), join(sgeRoot, part));
    writeFileSync(
      join(common, "bootstrap"),
      [
        "admin_user root",
        "default_domain none",
        // Hosts are the short names of the cluster's /etc/hosts.
        "ignore_fqdn true",
        "spooling_method classic",
        "spooling_lib libspoolc",
        `spooling_params ${common};${spool}`,
        "binary_path /usr/sbin",
        `qmaster_spool_dir ${spool}`,
        "security_mode none",
        "listener_threads 2",
        "worker_threads 2",
        "scheduler_threads 1",
        "",
      ].join("\n"),
    );
    writeFileSync(join(common, "act_qmaster"), "leader\n");
    const configuration = readFileSync("/usr/share/gridengine/default-configuration", "utf8")
      .split("\n")
      .map((line) => {
        const key = line.split(/\s+/)[0];
        // Jobs run as root here, and Grid Engine refuses uids and gids under these by default.
        if (key === "min_uid") return "min_uid 0";
        if (key === "min_gid") return "min_gid 0";
        // Inside each node's private /srv/sc: one spool per exec host.
        if (key === "execd_spool_dir") return `execd_spool_dir ${NODE_ROOT}/sge-spool`;
        if (key === "mailer") return "mailer /bin/true";
        if (key === "load_report_time") return "load_report_time 00:00:05";
        // Toil asks qacct for a job's exit status as soon as qstat no longer lists it, and gives
        // up (its polling thread dies and the run hangs) after three tries a second apart.
        if (key === "reporting_params")
          return "reporting_params accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00";
        return line;
      })
      .join("\n");
    writeFileSync(join(dir, "global-configuration"), configuration);
    const spoolTool = async (tool: string, ...args: string[]) => {
      const r = await run(`/usr/lib/gridengine/${tool}`, args, env(), 30_000);
      if (r.code !== 0) throw new Error(`${tool} ${args.join(" ")}: ${r.stdout}${r.stderr}`);
    };
    await spoolTool("spoolinit", "classic", "libspoolc", `${common};${spool}`, "init");
    await spoolTool("spooldefaults", "configuration", join(dir, "global-configuration"));
    await spoolTool("spooldefaults", "complexes", "/usr/share/gridengine/util/resources/centry");
    await spoolTool("spooldefaults", "usersets", "/usr/share/gridengine/util/resources/usersets");
    await spoolTool("spooldefaults", "managers", "root");

    // SGE_ND: the daemons stay in the foreground, so the PID spawned is the daemon's.
    const [qmCmd, qmArgs] = leader.enterArgs(["/usr/sbin/sge_qmaster"]);
    const qmaster = daemon(qmCmd, qmArgs, join(dir, "qmaster.out"), { SGE_ND: "true" });
    const qconf = async (...args: string[]) => {
      const r = await leader.exec(["qconf", ...args].map(quote).join(" "), {}, 30_000);
      if (r.code !== 0) throw new Error(`qconf ${args.join(" ")}: ${r.stdout}${r.stderr}\n${logs()}`);
      return r.stdout;
    };
    let answer = "";
    await waitUntil(
      "sge_qmaster did not answer qconf",
      async () => {
        if (qmaster.exitCode !== null || qmaster.signalCode !== null)
          throw new Error(`sge_qmaster exited (${qmaster.exitCode ?? qmaster.signalCode}): ${logs()}`);
        const r = await leader.exec("qconf -sh", {}, 10_000);
        answer = r.stdout + r.stderr;
        if (r.code === 0) return true;
        await new Promise((r) => setTimeout(r, 200));
        return false;
      },
      30_000,
      () => `${answer}\n${logs()}`,
    );

    await qconf("-as", "leader");
    for (const n of nodes) {
      const file = join(dir, `exechost-${n.hostname}`);
      writeFileSync(
        file,
        [
          `hostname ${n.hostname}`,
          "load_scaling NONE",
          "complex_values NONE",
          "user_lists NONE",
          "xuser_lists NONE",
          "projects NONE",
          "xprojects NONE",
          "usage_scaling NONE",
          "report_variables NONE",
          "",
        ].join("\n"),
      );
      await qconf("-Ae", file);
    }
    writeFileSync(
      join(dir, "queue"),
      queueConfig(
        queue,
        nodes.map((n) => n.hostname),
        options.slots ?? 1,
        jobTmp,
      ),
    );
    await qconf("-Aq", join(dir, "queue"));
    // Schedule every second, not every 15 s, and at once on a submit or a job's end.
    const scheduler = (await qconf("-ssconf"))
      .split("\n")
      .map((line) => {
        const key = line.split(/\s+/)[0];
        if (key === "schedule_interval") return "schedule_interval 0:0:1";
        if (key === "flush_submit_sec") return "flush_submit_sec 1";
        if (key === "flush_finish_sec") return "flush_finish_sec 1";
        // Each job counts for itself, not for the load a fresh job may add later.
        if (key === "job_load_adjustments") return "job_load_adjustments NONE";
        if (key === "load_adjustment_decay_time") return "load_adjustment_decay_time 0:0:0";
        return line;
      })
      .join("\n");
    writeFileSync(join(dir, "scheduler"), scheduler);
    await qconf("-Msconf", join(dir, "scheduler"));

    const execds = nodes.map((n) => {
      const [cmd, args] = n.enterArgs(["/usr/sbin/sge_execd"]);
      return daemon(cmd, args, join(n.dir, "execd.out"), { SGE_ND: "true" });
    });
    let states = "";
    await waitUntil(
      "the exec hosts' queues were not all up in qstat -f",
      async () => {
        for (const [i, e] of execds.entries())
          if (e.exitCode !== null || e.signalCode !== null)
            throw new Error(`sge_execd of ${nodes[i]!.hostname} exited: ${logs()}`);
        const r = await leader.exec(`qstat -f -q ${queue}`, {}, 10_000);
        states = r.stdout + r.stderr;
        // A queue instance line: name, type, slots, load, arch, then states (u: unknown, E: error...).
        const up = new Set(
          r.stdout
            .split("\n")
            .map((l) => l.trim().split(/\s+/))
            .filter((w) => w[0]?.startsWith(`${queue}@`) && w.length === 5 && w[3] !== "-NA-")
            .map((w) => w[0]!.slice(queue.length + 1)),
        );
        if (nodes.every((n) => up.has(n.hostname))) return true;
        await new Promise((r) => setTimeout(r, 300));
        return false;
      },
      60_000,
      () => `qstat -f: ${states}\n${logs()}`,
    );

    const cluster: GridEngineCluster = {
      dir,
      shared,
      sgeRoot,
      leader,
      nodes,
      queue,
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
        const entry = (n: GridEngineNode) => ({
          name: n.name,
          host: n.address,
          port: 22,
          venv: n.venv,
          deployDir: n.deployDir,
        });
        const doc = {
          project: { batchSystem: "grid_engine", ...opts.project },
          defaults,
          leader: entry(leader),
          workers: (opts.workers ?? nodes).map(entry),
          daemon: "off",
          ...extra,
        };
        writeFileSync(inventoryPath, stringify(doc));
        return inventoryPath;
      },
      ssh(node, command) {
        return sshRun({ port: 22, user: "root", identityFile, knownHosts, host: node.address }, command);
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

function queueConfig(name: string, hosts: string[], slots: number, tmp: string): string {
  const limits = ["rt", "cpu", "fsize", "data", "stack", "core", "rss", "vmem"].flatMap((l) => [
    `s_${l} INFINITY`,
    `h_${l} INFINITY`,
  ]);
  return [
    `qname ${name}`,
    `hostlist ${hosts.join(" ")}`,
    "seq_no 0",
    "load_thresholds NONE",
    "suspend_thresholds NONE",
    "nsuspend 1",
    "suspend_interval 00:05:00",
    "priority 0",
    "min_cpu_interval 00:05:00",
    "processors UNDEFINED",
    "qtype BATCH INTERACTIVE",
    "ckpt_list NONE",
    "pe_list NONE",
    "rerun FALSE",
    `slots ${slots}`,
    `tmpdir ${tmp}`,
    "shell /bin/sh",
    "prolog NONE",
    "epilog NONE",
    "shell_start_mode posix_compliant",
    "starter_method NONE",
    "suspend_method NONE",
    "resume_method NONE",
    "terminate_method NONE",
    "notify 00:00:60",
    "owner_list NONE",
    "user_lists NONE",
    "xuser_lists NONE",
    "subordinate_list NONE",
    "complex_values NONE",
    "projects NONE",
    "xprojects NONE",
    "calendar NONE",
    "initial_state default",
    ...limits,
    "",
  ].join("\n");
}
