import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { withFileBindMounted } from "../fixtures/mount-namespace.js";

/**
 * A local cluster for tests and benchmarks: one real OpenSSH sshd per worker on 127.0.0.1, each
 * with its own host key, port, venv and deploy directory, so a test can stop one worker alone.
 */

const execFileAsync = promisify(execFile);
const SSHD = "/usr/sbin/sshd";
const SSH_KEYGEN = "/usr/bin/ssh-keygen";
const SYSTEM_PYTHON = "/usr/bin/python3";

export function sshdAvailable(): boolean {
  return existsSync(SSHD) && existsSync(SSH_KEYGEN) && existsSync("/usr/bin/ssh");
}

export interface WorkerHandle {
  name: string;
  port: number;
  dir: string;
  /** The login's HOME: the worker's own directory, unless the cluster was started with `homes: false`. */
  home?: string | undefined;
  venv: string;
  deployDir: string;
  pid(): number | undefined;
  stop(): Promise<void>;
  start(): Promise<void>;
  python(): string;
}

export interface Cluster {
  dir: string;
  workers: WorkerHandle[];
  identityFile: string;
  knownHosts: string;
  inventoryPath: string;
  hostKeyFingerprint(w: WorkerHandle): string;
  writeInventory(options?: {
    workers?: WorkerHandle[];
    project?: Record<string, unknown>;
    extra?: Record<string, unknown>;
  }): string;
  runOnWorker(w: WorkerHandle, command: string): Promise<CommandResult>;
  addWorker(): Promise<WorkerHandle>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  workers: number;
  dir?: string;
  venv?: boolean;
  cleanup?: boolean;
  /** Login user on the workers (default root); its directories are made its own. */
  user?: string;
  /**
   * Each worker's sessions get its own directory as HOME (sshd sets it), where its venv/ and
   * deploy/ are, as on separate machines: `~/venv` in an inventory's defaults is each worker's own
   * (workers listed by a command get only `defaults`), and a test can write a worker's login files
   * (~/.bashrc) without touching the user's real ones. Default true: a worker does not read the
   * login files of the user running the tests (here root's runs `pyenv init`, a second or more per
   * SSH command, and puts another python3 first); false logs in with the user's own HOME.
   */
  homes?: boolean;
  /**
   * The login user's shell on every worker (e.g. /usr/bin/tcsh), which sshd runs each command
   * through: each worker's sshd runs in a mount namespace of its own whose /etc/passwd says so,
   * so the machine's own password file is left alone.
   */
  loginShell?: string;
}

// Every daemon any cluster of this process started: killed on exit, so a failed test leaks none.
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Kills `child` when this process exits, unless it has exited by then. */
export function track(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Resolves when the port answers with an SSH banner, i.e. sshd is really serving. */
export function sshBanner(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("data", (d) => done(d.toString("latin1").startsWith("SSH-")));
    socket.once("error", () => done(false));
  });
}

export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  detail: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} within ${timeoutMs} ms. ${detail()}`);
}

export async function keygen(file: string): Promise<void> {
  await execFileAsync(SSH_KEYGEN, ["-q", "-t", "ed25519", "-N", "", "-C", "sync-cluster-test", "-f", file]);
}

/** `home`: the HOME of its sessions (by default the user's own); `listenAddress`: 127.0.0.1 by default. */
export function sshdConfig(
  port: number,
  dir: string,
  options: { home?: string | undefined; listenAddress?: string } = {},
): string {
  const { home, listenAddress = "127.0.0.1" } = options;
  return [
    `Port ${port}`,
    `ListenAddress ${listenAddress}`,
    `HostKey ${join(dir, "host_ed25519")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "StrictModes no",
    "UsePAM no",
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PubkeyAuthentication yes",
    "MaxStartups 200:30:400",
    "MaxSessions 200",
    "LogLevel ERROR",
    "Subsystem sftp internal-sftp",
    "AcceptEnv LANG LC_*",
    // Lets a command find this worker's own directory (the benchmark's anchors use it). sshd honours
    // only its first SetEnv line, and applies it after setting HOME from the password file.
    `SetEnv SC_WORKER_DIR=${dir}${home ? ` HOME=${home}` : ""}`,
    "",
  ].join("\n");
}

/**
 * One sshd serving `dir`'s sshd_config on `port`. `enter` prefixes its command line (e.g. an
 * nsenter that execs it inside a namespace: the prefix must exec, so the child's PID is sshd's);
 * `listening` says when it serves, for an sshd this process cannot reach on 127.0.0.1.
 */
export class LocalWorker implements WorkerHandle {
  readonly home: string | undefined;
  readonly venv: string;
  readonly deployDir: string;
  private readonly enter: readonly string[];
  private readonly listening: () => Promise<boolean>;
  private child: ChildProcess | undefined;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dir: string,
    options: {
      venv?: string;
      deployDir?: string;
      enter?: readonly string[];
      home?: string;
      listening?: () => Promise<boolean>;
    } = {},
  ) {
    this.home = options.home;
    this.venv = options.venv ?? join(dir, "venv");
    this.deployDir = options.deployDir ?? join(dir, "deploy");
    this.enter = options.enter ?? [];
    this.listening = options.listening ?? (() => sshBanner(this.port));
  }

  pid(): number | undefined {
    return this.child?.pid;
  }

  python(): string {
    return join(this.venv, "bin", "python");
  }

  async start(): Promise<void> {
    if (this.child) return;
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const log = openSync(join(this.dir, "sshd.log"), "a");
    const [command, ...args] = [...this.enter, SSHD, "-D", "-e", "-f", join(this.dir, "sshd_config")];
    const child = spawn(command!, args, { stdio: ["ignore", "ignore", log] });
    closeSync(log);
    this.child = child;
    track(child);
    child.once("exit", () => {
      if (this.child === child) this.child = undefined;
    });
    await waitUntil(
      `sshd of ${this.name} did not start on port ${this.port}`,
      async () => {
        if (!this.child)
          throw new Error(`sshd of ${this.name} exited: ${readFileSync(join(this.dir, "sshd.log"), "utf8")}`);
        return this.listening();
      },
      10_000,
      () => readFileSync(join(this.dir, "sshd.log"), "utf8"),
    );
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    // sshd's per-connection processes outlive the listener: kill them too, so a stopped worker is
    // really gone and its open sessions drop, as on a crashed node. Found before the listener
    // dies, while they are still its descendants. Only sshd processes (sshd-session from OpenSSH
    // 9.8): the commands they ran see their connection close, as on a real node, instead of being
    // killed half way through (a login shell killed inside `pyenv rehash` leaves pyenv's lock).
    const sessions = descendantsOf(child.pid!).filter((pid) => commandName(pid).startsWith("sshd"));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    for (const pid of sessions) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await exited;
    await waitUntil(
      `${this.name} still accepts connections`,
      async () => !(await this.listening()),
      5000,
      () => "",
    );
  }
}

export function commandName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}

/** Whether a process with this PID exists (signal 0 delivers nothing). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The PID a sync-cluster daemon wrote in its directory's lock (daemon.pid), while it holds one. */
export function daemonPidIn(dir: string): number | undefined {
  try {
    const pid = Number(/\d+/.exec(readFileSync(join(dir, "daemon.pid"), "utf8"))?.[0]);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** PIDs of every process below `root`, read from /proc. */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // The command name may contain spaces and parentheses: the ppid follows the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const c of children.get(queue.pop()!) ?? []) {
      found.push(c);
      queue.push(c);
    }
  }
  return found;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` over a real ssh to `host` (127.0.0.1 unless given):`port`, checking the host key against `knownHosts`. */
export function sshRun(
  to: { port: number; user: string; identityFile: string; knownHosts: string; host?: string },
  command: string,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      "/usr/bin/ssh",
      [
        "-p",
        String(to.port),
        "-i",
        to.identityFile,
        "-o",
        "BatchMode=yes",
        "-o",
        `UserKnownHostsFile=${to.knownHosts}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=10",
        `${to.user}@${to.host ?? "127.0.0.1"}`,
        command,
      ],
      {
        maxBuffer: 1 << 26,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" },
      },
      (error, stdout, stderr) => {
        const code = error
          ? typeof (error as { code?: unknown }).code === "number"
            ? (error as { code: number }).code
            : 255
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * A prefix that runs sshd in a mount namespace of its own where `user`'s login shell is `shell`:
 * a copy of /etc/passwd saying so is bind-mounted over it there (sshd and the sessions it starts
 * read it; nothing outside the namespace sees it).
 */
function loginShellNamespace(dir: string, user: string, shell: string): string[] {
  const passwd = join(dir, "passwd");
  const lines = readFileSync("/etc/passwd", "utf8").split("\n");
  const changed = lines.map((line) => {
    const fields = line.split(":");
    return fields[0] === user && fields.length === 7 ? [...fields.slice(0, 6), shell].join(":") : line;
  });
  if (changed.join("\n") === lines.join("\n"))
    throw new Error(`no ${user} in /etc/passwd to give the shell ${shell}`);
  writeFileSync(passwd, changed.join("\n"));
  return withFileBindMounted(passwd, "/etc/passwd");
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "sc-cluster-")));
  mkdirSync(dir, { recursive: true });
  const identityFile = join(dir, "client_key");
  const knownHosts = join(dir, "known_hosts");
  const inventoryPath = join(dir, "inventory.yaml");
  await keygen(identityFile);
  const clientPub = readFileSync(`${identityFile}.pub`, "utf8");
  writeFileSync(knownHosts, "");
  const user = options.user ?? "root";
  // sshd reads authorized_keys as the user, so the cluster directory must be traversable.
  if (user !== "root") await execFileAsync("chmod", ["755", dir]);
  const workers: LocalWorker[] = [];
  let stopped = false;

  async function makeWorker(index: number): Promise<LocalWorker> {
    const name = `w${index}`;
    const wdir = join(dir, name);
    mkdirSync(wdir, { recursive: true });
    const port = await freePort();
    await keygen(join(wdir, "host_ed25519"));
    writeFileSync(join(wdir, "authorized_keys"), clientPub);
    const home = options.homes !== false ? wdir : undefined;
    writeFileSync(join(wdir, "sshd_config"), sshdConfig(port, wdir, { home }));
    const hostPub = readFileSync(join(wdir, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
    appendFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPub[0]} ${hostPub[1]}\n`);
    const enter = options.loginShell ? loginShellNamespace(wdir, user, options.loginShell) : undefined;
    const worker = new LocalWorker(name, port, wdir, {
      ...(home ? { home } : {}),
      ...(enter ? { enter } : {}),
    });
    if (options.venv !== false) {
      await execFileAsync(SYSTEM_PYTHON, [
        "-m",
        "venv",
        "--system-site-packages",
        "--without-pip",
        worker.venv,
      ]);
    }
    if (user !== "root") await execFileAsync("chown", ["-R", user, wdir]);
    await worker.start();
    return worker;
  }

  const made = await Promise.all(Array.from({ length: options.workers }, (_, i) => makeWorker(i + 1)));
  workers.push(...made);

  const fingerprints = new Map<string, string>();
  const cluster: Cluster = {
    dir,
    workers,
    identityFile,
    knownHosts,
    inventoryPath,
    hostKeyFingerprint(w) {
      let fp = fingerprints.get(w.name);
      if (!fp) {
        const pub = readFileSync(join(w.dir, "host_ed25519.pub"), "utf8").trim().split(/\s+/)[1]!;
        fp = `SHA256:${createHash("sha256").update(Buffer.from(pub, "base64")).digest("base64").replace(/=+$/, "")}`;
        fingerprints.set(w.name, fp);
      }
      return fp;
    },
    writeInventory(opts = {}) {
      const extra = { ...opts.extra };
      const defaults = {
        user,
        identityFile,
        knownHosts,
        ...(extra.defaults as Record<string, unknown> | undefined),
      };
      delete extra.defaults;
      const doc = {
        // Workers on one machine cannot share one venv path, as a grid scheduler's nodes must:
        // the Slurm harness (slurm-cluster.ts) tests that route.
        project: { batchSystem: "single_machine", ...opts.project },
        defaults,
        // Tests connect directly unless they test the daemon (which they then stop): none is left behind.
        daemon: "off",
        workers: (opts.workers ?? workers).map((w) => ({
          name: w.name,
          host: "127.0.0.1",
          port: w.port,
          venv: w.venv,
          deployDir: w.deployDir,
        })),
        ...extra,
      };
      writeFileSync(inventoryPath, stringify(doc));
      return inventoryPath;
    },
    runOnWorker(w, command) {
      return sshRun({ port: w.port, user, identityFile, knownHosts }, command);
    },
    async addWorker() {
      const worker = await makeWorker(workers.length + 1);
      workers.push(worker);
      return worker;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(workers.map((w) => w.stop().catch(() => undefined)));
      if (options.cleanup !== false) await rm(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
