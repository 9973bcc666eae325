import { checkNode } from "../check/node-check.js";
import type { Inventory, NodeRole } from "../core/inventory-types.js";
import type { ManifestFile } from "../core/manifest.js";
import { type CheckResult, type LeaderExpectations, nodePasses } from "../core/node-checks.js";
import { type ReleaseStatus, releaseStatus } from "../core/node-status.js";
import { allNodes, onNodes, withAgent } from "../fleet/on-nodes.js";
import type { NodeLinker } from "../transport/node-link.js";
import { manifestFromWire } from "../transport/worker-client.js";

/** `status`: what every node runs, in one agent session (one SSH command) per node. */

export interface NodeStatus {
  node: string;
  role: NodeRole;
  reachable: boolean;
  error?: string;
  release?: ReleaseStatus;
  checks?: { ok: boolean; failed: string[]; warnings: string[] };
}

export interface LeaderSet {
  id: string;
  files: readonly ManifestFile[];
  expectations: LeaderExpectations;
}

export async function statusAll(
  inventory: Inventory,
  leader: LeaderSet | undefined,
  options: { concurrency?: number; acceptNew?: boolean; links?: NodeLinker | undefined } = {},
): Promise<NodeStatus[]> {
  const results = await onNodes(
    allNodes(inventory),
    {
      concurrency: options.concurrency ?? inventory.concurrency,
      acceptNew: options.acceptNew ?? false,
      links: options.links,
    },
    (connection) =>
      withAgent(connection, { project: inventory.project.name, keep: 3 }, async (session, state) => {
        const manifest = manifestFromWire(state.manifest);
        const release = releaseStatus(
          { current: state.current, releases: state.releases, manifest },
          leader,
          Date.now() / 1000,
        );
        let checks: NodeStatus["checks"];
        if (leader) {
          const results = await checkNode(session, connection.node, {
            leader: leader.expectations,
            deep: false,
          });
          checks = summarize(results.filter((r) => r.id !== "release"));
        }
        return { release, checks };
      }),
  );
  return results.map((r) =>
    r.ok
      ? { node: r.node.name, role: r.node.role, reachable: true, ...r.value }
      : { node: r.node.name, role: r.node.role, reachable: false, error: r.error },
  );
}

function summarize(results: readonly CheckResult[]): NonNullable<NodeStatus["checks"]> {
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
