import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Cluster, WorkerHandle } from "../test/harness/cluster.js";
import type { DelayProxy } from "../test/harness/tcp-delay-proxy.js";

/**
 * The bench's proxies (test/harness/tcp-delay-proxy.ts) in front of the workers: with a delay,
 * the round trip of `--rtt`; with none, the curve's count of what the leader sent, read off the
 * proxies of every hop it talks to directly (every worker for flat pushes and the anchor, the
 * gateways for the tree), the same way for every tool (SSH's framing and handshakes included).
 */

/** The workers as reached through `proxies` (one each, in order); known_hosts learns the proxies' ports. */
export function throughProxies(
  cluster: Cluster,
  workers: WorkerHandle[],
  proxies: DelayProxy[],
): WorkerHandle[] {
  return workers.map((w, i): WorkerHandle => {
    const [type, key] = readFileSync(join(w.dir, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
    appendFileSync(cluster.knownHosts, `[127.0.0.1]:${proxies[i]!.port} ${type} ${key}\n`);
    return {
      name: w.name,
      port: proxies[i]!.port,
      dir: w.dir,
      venv: w.venv,
      deployDir: w.deployDir,
      pid: () => w.pid(),
      stop: () => w.stop(),
      start: () => w.start(),
      python: () => w.python(),
    };
  });
}

/** Bytes sent toward the hops of `proxies` while `during` runs. */
export async function bytesUpDuring<T>(
  proxies: readonly DelayProxy[],
  during: () => Promise<T>,
): Promise<{ value: T; bytes: number }> {
  const sum = () => proxies.reduce((s, p) => s + p.bytesUp, 0);
  const before = sum();
  const value = await during();
  return { value, bytes: sum() - before };
}
