import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Cluster, WorkerHandle } from "../test/harness/cluster.js";

/**
 * The tools compared, each run as a separate process under /usr/bin/time so wall time, leader
 * CPU (the tool and every ssh client it starts) and peak RSS are measured the same way for all.
 * Every tool gets the same file list (what `sync-cluster resolve` ships) and its own
 * destination on each worker, so none of them profits from another's work.
 */

export interface Sample {
  ms: number;
  cpuSeconds: number;
  peakRssMb: number;
  /** Payload bytes sent per worker, when the tool reports it. */
  bytesPerWorker: number | null;
  ok: boolean;
  error?: string;
}

export interface Context {
  cluster: Cluster;
  workers: WorkerHandle[];
  root: string;
  inventory: string;
  /** Paths relative to root, one per line: the module set. */
  fileList: string;
  user: string;
  bin: string;
  tmp: string;
  /** Workers handled at once; default all of them. */
  concurrency?: number;
  /** The same workers as a second project ("bench-daemon"), for the pushes through the daemon. */
  daemonInventory?: string;
  /** One-way delay added in front of every worker (DelayProxy), 0 for none. */
  oneWayMs: number;
  /** Told each timed command's PID as it starts (the curve samples its process tree's memory). */
  onSpawn?: (pid: number) => void;
}

const parallelism = (ctx: Context) => String(ctx.concurrency ?? ctx.workers.length);

export interface Tool {
  name: string;
  /** Removes what this tool put on the workers (not timed). */
  clear(ctx: Context): Promise<void>;
  /** Runs before every push, not timed (e.g. stopping a daemon so that the push is a first one). */
  before?(ctx: Context): Promise<void>;
  push(ctx: Context): Promise<Sample>;
}

export async function timed(
  command: string[],
  options: { env?: NodeJS.ProcessEnv; tmp: string; onSpawn?: ((pid: number) => void) | undefined },
): Promise<Sample & { stdout: string; stderr: string }> {
  const stats = join(options.tmp, `time-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
  const started = performance.now();
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      "/usr/bin/time",
      ["-f", "%U %S %M", "-o", stats, ...command],
      { env: options.env ?? process.env, maxBuffer: 1 << 28 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
  });
  const ms = performance.now() - started;
  const line = (await readFile(stats, "utf8")).trim().split("\n").at(-1) ?? "0 0 0";
  await rm(stats, { force: true });
  const [user, system, rssKb] = line.split(" ").map(Number) as [number, number, number];
  return {
    ms,
    cpuSeconds: user + system,
    peakRssMb: rssKb / 1024,
    bytesPerWorker: null,
    ok: result.code === 0,
    ...(result.code === 0
      ? {}
      : { error: `${command[0]} exited ${result.code}: ${result.stderr.slice(-400)}` }),
    stdout: result.stdout,
    stderr: result.stderr,
  };
}

function sshOptions(ctx: Context): string[] {
  return [
    "-i",
    ctx.cluster.identityFile,
    "-o",
    `UserKnownHostsFile=${ctx.cluster.knownHosts}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "IdentitiesOnly=yes",
  ];
}

/**
 * Writes out everything waiting in the page cache, once a tool's destination is cleared for its
 * cold push: a tool that makes what it wrote durable (sync-cluster's syncfs) would otherwise also
 * write out what the tool before it left unwritten on the same disk, and the order of the tools
 * would decide its time.
 */
function settleDisk(): void {
  execFileSync("sync");
}

// Where each worker's cleared destinations wait, on its own file system, until the cold pushes are over.
const CLEARED = ".bench-cleared";
let clearedSerial = 0;

/**
 * Moves a destination aside instead of deleting it. A push just after the deletion of a pushed tree
 * (16 x 1,055 files) makes ext4 pass over every inode freed in the last minutes while it allocates
 * each new file (`recently_deleted`: half the machine's CPU under `perf`), so the tool after a
 * deletion paid for it, more so round after round; on a cluster no such deletion comes just
 * before a first push. emptyCleared removes them all once the cold rounds are over.
 */
async function setAside(workerDir: string, path: string): Promise<void> {
  await mkdir(join(workerDir, CLEARED), { recursive: true });
  await rename(path, join(workerDir, CLEARED, String(++clearedSerial))).catch(
    (error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    },
  );
}

/** Deletes what the cold rounds set aside (setAside), and waits until that is on disk. */
export async function emptyCleared(ctx: Pick<Context, "workers">): Promise<void> {
  await Promise.all(ctx.workers.map((w) => rm(join(w.dir, CLEARED), { recursive: true, force: true })));
  settleDisk();
}

async function clearDir(ctx: Context, name: string): Promise<void> {
  await Promise.all(ctx.workers.map((w) => setAside(w.dir, join(w.dir, name))));
  settleDisk();
}

/** What a sync-cluster tool pushes to: its own project name on the workers, its own leader cache. */
export interface SyncClusterTarget {
  /** The inventory naming the project (and so the deploy directory on each worker). */
  inventory: string;
  project: string;
  cache: string;
  env?: NodeJS.ProcessEnv;
  /** More arguments of `push` (e.g. `--flat --no-daemon`). */
  args?: string[];
}

export async function clearSyncCluster(ctx: Context, target: SyncClusterTarget): Promise<void> {
  await Promise.all(ctx.workers.map((w) => setAside(w.dir, join(w.deployDir, target.project))));
  await rm(join(ctx.tmp, target.cache), { recursive: true, force: true });
  settleDisk();
}

export async function pushWithSyncCluster(ctx: Context, target: SyncClusterTarget): Promise<Sample> {
  const r = await timed(
    [ctx.bin, "push", "-i", target.inventory, "-j", parallelism(ctx), "--json", ...(target.args ?? [])],
    {
      tmp: ctx.tmp,
      env: { ...process.env, PYTHONPATH: "", XDG_CACHE_HOME: join(ctx.tmp, target.cache), ...target.env },
      onSpawn: ctx.onSpawn,
    },
  );
  if (r.ok) {
    const doc = JSON.parse(r.stdout) as { nodes: { result?: { bytesSent: number } }[] };
    const bytes = doc.nodes.map((n) => n.result?.bytesSent ?? 0);
    r.bytesPerWorker = bytes.reduce((a, b) => a + b, 0) / Math.max(1, bytes.length);
  } else {
    // Nodes that failed say why in the JSON outcome (stderr is empty then): the first few, and how many.
    try {
      const doc = JSON.parse(r.stdout) as { nodes: { node: string; ok: boolean; error?: string }[] };
      const failed = doc.nodes.filter((n) => !n.ok);
      if (failed.length)
        r.error = `${r.error} ${failed.length} of ${doc.nodes.length} node(s) failed: ${failed
          .slice(0, 3)
          .map((n) => `${n.node}: ${n.error}`)
          .join("; ")}`;
    } catch {
      // No JSON outcome: the error says what stderr said.
    }
  }
  return r;
}

/** Once the CLI has a daemon (bench/daemon-scenario.ts), this one's is stopped before each push. */
export const FIRST_PUSH_DAEMON = "daemon-first-push";

const direct = (ctx: Context): SyncClusterTarget => ({
  inventory: ctx.inventory,
  project: "bench",
  cache: "cache",
  env: { SYNC_CLUSTER_DAEMON_DIR: join(ctx.tmp, FIRST_PUSH_DAEMON) },
});

export const syncCluster: Tool = {
  name: "sync-cluster",
  clear: (ctx) => clearSyncCluster(ctx, direct(ctx)),
  push: (ctx) => pushWithSyncCluster(ctx, direct(ctx)),
};

export const parallelRsync: Tool = {
  name: "parallel-rsync",
  clear: (ctx) => clearDir(ctx, "anchor-prs"),
  async push(ctx) {
    const hosts = join(ctx.tmp, "hosts.txt");
    await writeFile(hosts, ctx.workers.map((w) => `${ctx.user}@127.0.0.1:${w.port}`).join("\n") + "\n");
    const ssh = sshOptions(ctx);
    const options: string[] = [];
    for (let i = 0; i < ssh.length; i += 2) if (ssh[i] === "-o") options.push("-O", ssh[i + 1]!);
    return timed(
      [
        "parallel-rsync",
        "-h",
        hosts,
        "-p",
        parallelism(ctx),
        "-O",
        `IdentityFile=${ctx.cluster.identityFile}`,
        ...options,
        "-a",
        // -X passes one argument as is (-x would split it like a shell).
        "-X",
        "--delete",
        "-X",
        `--files-from=${ctx.fileList}`,
        "-X",
        '--rsync-path=cd "$SC_WORKER_DIR" && rsync',
        `${ctx.root}/`,
        "anchor-prs/",
      ],
      { tmp: ctx.tmp, onSpawn: ctx.onSpawn },
    );
  },
};

/** The loop users write by hand: one `rsync -a --delete -e ssh` per worker under `xargs -P`. */
export const rsyncXargs: Tool = {
  name: "rsync-xargs",
  clear: (ctx) => clearDir(ctx, "anchor-rx"),
  async push(ctx) {
    const ssh = `ssh ${sshOptions(ctx).join(" ")}`;
    const script = `rsync -a --delete --stats --files-from='${ctx.fileList}' --rsync-path='cd "$SC_WORKER_DIR" && rsync' -e "${ssh} -p $0" '${ctx.root}/' ${ctx.user}@127.0.0.1:anchor-rx/`;
    const r = await timed(
      [
        "sh",
        "-c",
        `printf '%s\\n' ${ctx.workers.map((w) => w.port).join(" ")} | xargs -P ${parallelism(ctx)} -n 1 sh -c '${script.replaceAll("'", `'\\''`)}'`,
      ],
      { tmp: ctx.tmp },
    );
    const sent = [...r.stdout.matchAll(/Total bytes sent: ([\d,]+)/g)].map((m) =>
      Number(m[1]!.replaceAll(",", "")),
    );
    if (sent.length) r.bytesPerWorker = sent.reduce((a, b) => a + b, 0) / sent.length;
    return r;
  },
};

/** `tar | ssh`: always the whole set, unpacked aside and swapped in. */
export const tarSsh: Tool = {
  name: "tar-ssh",
  clear: (ctx) => clearDir(ctx, "anchor-tar"),
  async push(ctx) {
    const ssh = `ssh ${sshOptions(ctx).join(" ")}`;
    const remote =
      'cd "$SC_WORKER_DIR" && rm -rf anchor-tar.new && mkdir anchor-tar.new && tar -C anchor-tar.new -xf - && rm -rf anchor-tar && mv anchor-tar.new anchor-tar';
    const script = `tar -C '${ctx.root}' -cf - -T '${ctx.fileList}' | ${ssh} -p $0 ${ctx.user}@127.0.0.1 '${remote.replaceAll("'", `'\\''`)}'`;
    return timed(
      [
        "sh",
        "-c",
        `printf '%s\\n' ${ctx.workers.map((w) => w.port).join(" ")} | xargs -P ${parallelism(ctx)} -n 1 sh -c '${script.replaceAll("'", `'\\''`)}'`,
      ],
      { tmp: ctx.tmp },
    );
  },
};

export const PUSH_TOOLS: Tool[] = [syncCluster, parallelRsync, rsyncXargs, tarSsh];

/** Starts a process and resolves once; the caller stops it. */
export function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv) {
  return spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
}
