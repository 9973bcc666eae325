import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { daemonPidIn, processAlive } from "../test/harness/cluster.js";
import {
  type Context,
  clearSyncCluster,
  FIRST_PUSH_DAEMON,
  pushWithSyncCluster,
  type SyncClusterTarget,
  type Tool,
} from "./tools.js";

/**
 * Pushes through the user's daemon, measured only when the CLI has a `daemon` command.
 * The daemon is found through SYNC_CLUSTER_DAEMON_DIR (its directory: socket, PID file, log), so
 * the bench keeps two apart: the plain "sync-cluster" rows stop theirs before every push, so each
 * is a first push (no connection held: what a one-shot command costs without a running daemon),
 * and "sync-cluster via daemon" keeps its own running between pushes (the later pushes).
 */

const run = promisify(execFile);
const HELD_DAEMON = "daemon-held";

/**
 * Whether `sync-cluster daemon --help` succeeds with the daemon's own help: a CLI without the
 * command prints its general help for an unknown command's --help, and exits 0 all the same.
 */
export function daemonAvailable(bin: string): boolean {
  try {
    return /^Usage: sync-cluster daemon\b/m.test(execFileSync(bin, ["daemon", "--help"]).toString());
  } catch {
    return false;
  }
}

/** A private directory for one daemon (the daemon refuses a directory others may enter). */
function daemonDir(ctx: Context, name: string): string {
  const dir = join(ctx.tmp, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export async function stopDaemon(ctx: Context, dir: string): Promise<void> {
  // Stopping a daemon that is not running is no error here: a first push must find none.
  await run(ctx.bin, ["daemon", "stop"], { env: { ...process.env, SYNC_CLUSTER_DAEMON_DIR: dir } }).catch(
    () => undefined,
  );
  // One a command started moments ago may not have been listening yet: stopped by its PID.
  const pid = daemonPidIn(dir);
  if (pid === undefined || !processAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let waited = 0; processAlive(pid) && waited < 5000; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
}

/** The daemon's peak RSS in MB, from the PID in its directory (null when none runs). */
export function daemonPeakRssMb(dir: string): number | null {
  try {
    const status = readFileSync(`/proc/${daemonPidIn(dir)}/status`, "utf8");
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
  } catch {
    return null;
  }
}

const viaDaemon = (ctx: Context): SyncClusterTarget => {
  if (!ctx.daemonInventory) throw new Error("the context has no inventory for the daemon's project");
  return {
    inventory: ctx.daemonInventory,
    project: "bench-daemon",
    cache: "cache-daemon",
    env: { SYNC_CLUSTER_DAEMON_DIR: heldDaemonDir(ctx) },
  };
};

/** Later pushes: the daemon started by the warm-up round stays up and holds every connection. */
export const syncClusterViaDaemon: Tool = {
  name: "sync-cluster via daemon",
  clear: (ctx) => clearSyncCluster(ctx, viaDaemon(ctx)),
  push: (ctx) => pushWithSyncCluster(ctx, viaDaemon(ctx)),
};

/** The plain rows once there is a daemon: its daemon is stopped before each push (not timed). */
export function asFirstPushes(tool: Tool): Tool {
  return {
    ...tool,
    before: (ctx) => stopDaemon(ctx, daemonDir(ctx, FIRST_PUSH_DAEMON)),
  };
}

export const heldDaemonDir = (ctx: Context) => daemonDir(ctx, HELD_DAEMON);
