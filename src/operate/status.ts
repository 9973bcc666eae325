import type { Inventory, NodeRole } from "../core/inventory/inventory-types.js";
import { type CheckResult, type LeaderExpectations, nodePasses } from "../core/readiness/node-checks.js";
import { type LiveRun, type RunStatus, runsStatus } from "../core/release/live-runs.js";
import type { ManifestFile } from "../core/release/manifest.js";
import { type ReleaseStatus, releaseStatus } from "../core/release/node-status.js";
import { checkNode } from "../readiness/node-check.js";
import type { NodeLinker } from "../transport/node-link.js";
import { manifestFromWire } from "../transport/worker-client.js";
import { withAgentOnEveryNode } from "./every-node.js";

/** `status`: what every node runs, in one agent session (one SSH command) per node. */

export interface NodeStatus {
  node: string;
  role: NodeRole;
  reachable: boolean;
  error?: string;
  release?: ReleaseStatus;
  /** The ids of the releases the node holds. */
  releases?: string[];
  checks?: { ok: boolean; failed: string[]; warnings: string[] };
}

export interface LeaderSet {
  id: string;
  files: readonly ManifestFile[];
  expectations: LeaderExpectations;
}

export interface StatusReport {
  nodes: NodeStatus[];
  /** The workflow runs in progress on the leader; undefined when the leader could not be asked. */
  runs: RunStatus[] | undefined;
}

export async function statusAll(
  inventory: Inventory,
  leader: LeaderSet | undefined,
  options: { concurrency?: number; acceptNew?: boolean; links?: NodeLinker | undefined } = {},
): Promise<StatusReport> {
  let leaderRuns: LiveRun[] | undefined = inventory.leader ? undefined : [];
  const results = await withAgentOnEveryNode(inventory, options, async (session, state, node) => {
    if (node.role === "leader") leaderRuns = state.runs;
    const manifest = manifestFromWire(state.manifest);
    const release = releaseStatus(
      { current: state.current, releases: state.releases, manifest },
      leader,
      Date.now() / 1000,
    );
    let checks: NodeStatus["checks"];
    if (leader) {
      const results = await checkNode(session, node, { leader: leader.expectations, deep: false });
      checks = summarizeChecks(results.filter((r) => r.id !== "release"));
    }
    return { release, releases: state.releases.map((r) => r.id), checks };
  });
  const nodes = results.map(
    (r): NodeStatus =>
      r.ok
        ? { node: r.node.name, role: r.node.role, reachable: true, ...r.value }
        : { node: r.node.name, role: r.node.role, reachable: false, error: r.error },
  );
  return { nodes, runs: leaderRuns && runsStatus(leaderRuns, nodes) };
}

export function summarizeChecks(results: readonly CheckResult[]): NonNullable<NodeStatus["checks"]> {
  return {
    ok: nodePasses(results),
    failed: results.filter((r) => r.status === "fail").map((r) => `${r.id}: ${r.detail}`),
    warnings: results.filter((r) => r.status === "warn").map((r) => `${r.id}: ${r.detail}`),
  };
}

/** In sync: reachable, and every node (the leader too) runs the leader's set. */
export function everyNodeInSync(statuses: readonly NodeStatus[]): boolean {
  return statuses.every((s) => s.reachable && s.release?.inSync === true);
}
