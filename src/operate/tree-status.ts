import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import { judgeNode } from "../core/readiness/node-checks.js";
import { runsStatus } from "../core/release/live-runs.js";
import { releaseStatus } from "../core/release/node-status.js";
import { checkFields } from "../readiness/node-check.js";
import { readReply } from "../transport/worker-client.js";
import { type BatchRequest, runBatches, treeHello } from "../tree/agent-batch.js";
import { knownManifest } from "../tree/known-manifests.js";
import { type LeaderSet, type NodeStatus, type StatusReport, statusAll, summarizeChecks } from "./status.js";

/**
 * `status` through ClusterShell's tree: one batch a worker (hello, and the quick check when the
 * leader's set is known); the leader, reached directly, as without the tree. How many files
 * differ is counted against the manifests this leader remembers of the releases it built.
 */
export async function statusThroughTree(
  inventory: Inventory & { tree: TreeSettings },
  leader: LeaderSet | undefined,
  options: Parameters<typeof statusAll>[2] = {},
): Promise<StatusReport> {
  const direct = inventory.leader ? statusAll({ ...inventory, workers: [] }, leader, options) : undefined;
  const project = inventory.project.name;
  const requests = (node: NodeSpec): BatchRequest[] => [
    treeHello(node, project),
    ...(leader
      ? [{ request: { op: "check" as const, ...checkFields({ leader: leader.expectations, deep: false }) } }]
      : []),
  ];
  const outcomes = await runBatches(
    inventory.tree,
    inventory.workers.map((node) => ({ node, requests: requests(node) })),
  );
  const byName = new Map<string, NodeStatus>();
  await Promise.all(
    outcomes.map(async (outcome) => {
      const node = outcome.node;
      const unreachable = (error: string): NodeStatus => ({
        node: node.name,
        role: node.role,
        reachable: false,
        error,
      });
      if (!outcome.ok) {
        byName.set(node.name, unreachable(outcome.error.message));
        return;
      }
      try {
        const state = readReply.hello(node.name, outcome.replies[0]!);
        const manifest = state.current ? await knownManifest(project, state.current) : undefined;
        const release = releaseStatus(
          { current: state.current, releases: state.releases, manifest },
          leader,
          Date.now() / 1000,
        );
        const checks =
          leader &&
          summarizeChecks(
            judgeNode(readReply.check(node.name, outcome.replies[1]!), {
              ...leader.expectations,
              venv: node.venv,
            }).filter((r) => r.id !== "release"),
          );
        byName.set(node.name, {
          node: node.name,
          role: node.role,
          reachable: true,
          release,
          releases: state.releases.map((r) => r.id),
          ...(checks ? { checks } : {}),
        });
      } catch (error) {
        byName.set(node.name, unreachable((error as Error).message));
      }
    }),
  );
  const workers = inventory.workers.map(
    (n) => byName.get(n.name) ?? { node: n.name, role: n.role, reachable: false, error: "no answer" },
  );
  const leaderReport = await direct;
  const nodes = [...(leaderReport?.nodes ?? []), ...workers];
  // The leader's runs, now against every node: which lack a run's release.
  return {
    nodes,
    runs: leaderReport ? leaderReport.runs && runsStatus(leaderReport.runs, nodes) : runsStatus([], nodes),
  };
}
