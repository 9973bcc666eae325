import { type ChildProcess, spawn } from "node:child_process";
import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { daemonPeakRssMb, stopDaemon } from "./daemon-scenario.js";
import type { Context } from "./tools.js";

/**
 * Watch latency, end to end: from the moment a file is written on the leader to the moment its
 * new content is readable on every worker. The workers' directories are on this machine, so the
 * arrival is seen directly on disk (polled every 5 ms), not through another SSH round trip.
 * Polling 16 files every 2 ms took a third of a core from the tools being measured.
 */

export interface LatencyResult {
  tool: string;
  latenciesMs: number[];
  /** The leader's: for sync-cluster, watch and the daemon holding its connections together. */
  peakRssMb: number | null;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function contains(path: string, marker: string): Promise<boolean> {
  try {
    return (await readFile(path, "utf8")).includes(marker);
  } catch {
    return false;
  }
}

function peakRss(pid: number | undefined): Promise<number | null> {
  if (!pid) return Promise.resolve(null);
  return readFile(`/proc/${pid}/status`, "utf8").then(
    (s) => Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024,
    () => null,
  );
}

async function measure(
  ctx: Context,
  rel: string,
  target: (w: Context["workers"][number]) => string,
  samples: number,
  tag: string,
): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < samples; i++) {
    const marker = `# ${tag}-${process.pid}-${Date.now()}-${i}`;
    const started = performance.now();
    await appendFile(join(ctx.root, rel), `${marker}\n`);
    const pending = new Set(ctx.workers);
    const deadline = Date.now() + 60_000;
    while (pending.size > 0 && Date.now() < deadline) {
      for (const w of [...pending]) if (await contains(target(w), marker)) pending.delete(w);
      if (pending.size > 0) await sleep(5);
    }
    if (pending.size > 0) throw new Error(`${tag}: ${pending.size} worker(s) never received the change`);
    latencies.push(performance.now() - started);
    await sleep(300);
  }
  return latencies;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 8000).unref();
  });
}

export async function syncClusterLatency(ctx: Context, rel: string, samples: number): Promise<LatencyResult> {
  // Through a daemon of its own, as a user's watch goes (stopped at the end).
  const daemonDir = join(ctx.tmp, "daemon-watch");
  await mkdir(daemonDir, { recursive: true, mode: 0o700 });
  const child = spawn(ctx.bin, ["watch", "-i", ctx.inventory, "--json", "-j", String(ctx.workers.length)], {
    env: {
      ...process.env,
      PYTHONPATH: "",
      XDG_CACHE_HOME: join(ctx.tmp, "cache"),
      SYNC_CLUSTER_DAEMON_DIR: daemonDir,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const synced = new Set<string>();
  let buffered = "";
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop() ?? "";
    for (const line of lines) {
      try {
        const e = JSON.parse(line) as { type: string; node?: string; phase?: string };
        if (e.type === "node-phase" && e.phase === "in-sync" && e.node) synced.add(e.node);
      } catch {
        // not an event line
      }
    }
  });
  try {
    await until("every worker in sync", async () => synced.size >= ctx.workers.length, 120_000);
    const latenciesMs = await measure(
      ctx,
      rel,
      (w) => join(w.deployDir, "bench", "current", rel),
      samples,
      "sc",
    );
    const watchMb = await peakRss(child.pid);
    const daemonMb = daemonPeakRssMb(daemonDir);
    return {
      tool: "sync-cluster watch",
      latenciesMs,
      peakRssMb: watchMb === null ? null : watchMb + (daemonMb ?? 0),
    };
  } catch (error) {
    return {
      tool: "sync-cluster watch",
      latenciesMs: [],
      peakRssMb: null,
      error: `${(error as Error).message} ${stderr.slice(-300)}`,
    };
  } finally {
    await stop(child);
    await stopDaemon(ctx, daemonDir);
  }
}

export async function lsyncdLatency(ctx: Context, rel: string, samples: number): Promise<LatencyResult> {
  const config = join(ctx.tmp, "lsyncd.lua");
  const syncs = ctx.workers.map(
    (w) => `sync {
  default.rsyncssh,
  source = ${JSON.stringify(ctx.root)},
  host = ${JSON.stringify(`${ctx.user}@127.0.0.1`)},
  targetdir = ${JSON.stringify(join(w.dir, "anchor-lsyncd"))},
  delay = 0,
  exclude = { ".git", "venv", "data", "__pycache__" },
  rsync = { archive = true },
  ssh = { port = ${w.port}, identityFile = ${JSON.stringify(ctx.cluster.identityFile)}, options = { UserKnownHostsFile = ${JSON.stringify(ctx.cluster.knownHosts)}, StrictHostKeyChecking = "yes", BatchMode = "yes" } },
}`,
  );
  await writeFile(
    config,
    `settings { nodaemon = true, insist = true, logfile = ${JSON.stringify(join(ctx.tmp, "lsyncd.log"))} }\n${syncs.join("\n")}\n`,
  );
  const child = spawn("lsyncd", [config], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  try {
    await until(
      "lsyncd's first full sync",
      async () => {
        const present = await Promise.all(
          ctx.workers.map((w) => contains(join(w.dir, "anchor-lsyncd", rel), "")),
        );
        return present.every(Boolean);
      },
      300_000,
    );
    await sleep(1000);
    const latenciesMs = await measure(ctx, rel, (w) => join(w.dir, "anchor-lsyncd", rel), samples, "lsyncd");
    return { tool: "lsyncd", latenciesMs, peakRssMb: await peakRss(child.pid) };
  } catch (error) {
    return {
      tool: "lsyncd",
      latenciesMs: [],
      peakRssMb: null,
      error: `${(error as Error).message} ${stderr.slice(-300)}`,
    };
  } finally {
    await stop(child);
  }
}
