import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Cluster, WorkerHandle } from "./cluster.js";

/**
 * A ClusterShell tree over a local cluster: some of its sshd workers serve as gateways, the rest as
 * workers behind them. ClusterShell names nodes and reaches them with `ssh NAME` (on the leader and
 * on each gateway), so an ssh_config maps every name to its sshd; it is given to every hop through
 * the inventory's `tree.sshOptions`, as a site would give its own.
 */

export interface TreeLayout {
  gateways: WorkerHandle[];
  workers: WorkerHandle[];
  /** Which workers each gateway serves (by name). */
  routes: Record<string, string[]>;
  sshConfig: string;
  /** The inventory's `tree:` section for this layout. */
  tree: Record<string, unknown>;
}

export function whyClusterShellUnavailable(): string | false {
  try {
    // The tree's relay runs with clush's interpreter; the gateways run `python3 -m ClusterShell.Gateway`.
    const { status } = spawnSync("/usr/bin/python3", ["-c", "import ClusterShell.Gateway"]);
    return status === 0 ? false : "ClusterShell is not installed (Debian: clustershell)";
  } catch {
    return "ClusterShell is not installed (Debian: clustershell)";
  }
}

/** The first `gateways` workers of the cluster become gateways, the others are dealt among them in turn. */
export function treeLayout(cluster: Cluster, gatewayCount: number): TreeLayout {
  const gateways = cluster.workers.slice(0, gatewayCount);
  const workers = cluster.workers.slice(gatewayCount);
  const routes: Record<string, string[]> = Object.fromEntries(gateways.map((g) => [g.name, [] as string[]]));
  for (const [i, w] of workers.entries()) routes[gateways[i % gateways.length]!.name]!.push(w.name);
  const sshConfig = join(cluster.dir, "tree_ssh_config");
  writeFileSync(
    sshConfig,
    cluster.workers
      .map((w) =>
        [
          `Host ${w.name}`,
          "  HostName 127.0.0.1",
          `  Port ${w.port}`,
          "  User root",
          `  IdentityFile ${cluster.identityFile}`,
          `  UserKnownHostsFile ${cluster.knownHosts}`,
          `  HostKeyAlias [127.0.0.1]:${w.port}`,
          "  StrictHostKeyChecking yes",
          "",
        ].join("\n"),
      )
      .join(""),
  );
  return {
    gateways,
    workers,
    routes,
    sshConfig,
    tree: {
      root: "leader",
      sshOptions: `-F ${sshConfig}`,
      gateways: Object.fromEntries(Object.entries(routes).map(([g, names]) => [g, names.join(",")])),
    },
  };
}

/** An inventory whose workers are reached through the layout's gateways, each with its venv and deploy directory under its HOME. */
export function writeTreeInventory(
  cluster: Cluster,
  layout: TreeLayout,
  options: { project?: Record<string, unknown>; extra?: Record<string, unknown> } = {},
): string {
  return cluster.writeInventory({
    ...(options.project ? { project: options.project } : {}),
    extra: {
      defaults: { venv: "~/venv", deployDir: "~/deploy" },
      tree: layout.tree,
      workers: layout.workers.map((w) => ({ name: w.name, host: "127.0.0.1", port: w.port })),
      ...options.extra,
    },
  });
}

/** The ssh connection masters (ControlPersist) kept in `controlDir`, by PID. */
export function multiplexers(controlDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (cmdline.startsWith(`ssh: ${controlDir}/sync-cluster-`)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** Stops the connection masters a test's commands left (they would outlive it by their ControlPersist). */
export function stopMultiplexers(controlDir: string): void {
  for (const pid of multiplexers(controlDir)) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
}
