import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import { loginOutputWarning } from "../core/protocol/agent-announcement.js";
import {
  type CheckResult,
  type JobLaunch,
  judgeNode,
  type LeaderExpectations,
  nodePasses,
} from "../core/readiness/node-checks.js";
import { checkFields } from "../readiness/node-check.js";
import type { AgentReply } from "../transport/agent-session.js";
import { readReply } from "../transport/worker-client.js";
import { type BatchOutcome, runBatches, treeHello } from "../tree/agent-batch.js";
import { type CheckOptions, checkAll, type LeaderSide, type NodeCheckOutcome } from "./check.js";

/**
 * `check` through ClusterShell's tree: the leader directly (its venv and PATH say how jobs start),
 * then one batch a worker (hello and the deep check); with --fix, a batch of fixes first, since a
 * fixed venv is probed by a fresh agent started with the venv's python.
 */
export async function checkThroughTree(
  inventory: Inventory & { tree: TreeSettings },
  leader: LeaderExpectations,
  options: CheckOptions = {},
  side: LeaderSide = { localVenv: null },
): Promise<NodeCheckOutcome[]> {
  let jobs: JobLaunch | undefined;
  const direct = await checkAll(
    { ...inventory, workers: [] },
    leader,
    {
      ...options,
      onLeaderJobs: (known) => {
        jobs = known;
      },
    },
    side,
  );
  const project = inventory.project.name;
  const hello = (node: NodeSpec) => treeHello(node, project);
  const fixed = new Map<string, string[]>();
  const failed = new Map<string, string>();
  if (options.fix) {
    const outcomes = await runBatches(
      inventory.tree,
      inventory.workers.map((node) => ({ node, requests: [hello(node), { request: { op: "fix" } }] })),
    );
    for (const outcome of outcomes) {
      try {
        const replies = repliesOf(outcome);
        readReply.hello(outcome.node.name, replies[0]!);
        const done = replies[1]!;
        if (!done.ok) throw new Error(String(done.message ?? "the fix was refused"));
        fixed.set(outcome.node.name, Array.isArray(done.done) ? done.done.map(String) : []);
      } catch (error) {
        failed.set(outcome.node.name, (error as Error).message);
      }
    }
  }
  const deep = { op: "check" as const, ...checkFields({ leader: { ...leader, jobs }, deep: true }) };
  const outcomes = await runBatches(
    inventory.tree,
    inventory.workers
      .filter((node) => !failed.has(node.name))
      .map((node) => ({ node, requests: [hello(node), { request: deep }] })),
  );
  const byName = new Map<string, NodeCheckOutcome>();
  for (const outcome of outcomes) {
    const node = outcome.node;
    try {
      const replies = repliesOf(outcome);
      readReply.hello(node.name, replies[0]!);
      const results: CheckResult[] = judgeNode(readReply.check(node.name, replies[1]!), {
        ...leader,
        jobs,
        venv: node.venv,
      });
      byName.set(node.name, {
        node: node.name,
        role: node.role,
        reachable: true,
        results,
        fixed: fixed.get(node.name) ?? [],
        warnings: outcome.ok && outcome.loginOutput ? [loginOutputWarning(outcome.loginOutput)] : [],
        ok: nodePasses(results),
      });
    } catch (error) {
      failed.set(node.name, (error as Error).message);
    }
  }
  const workers = inventory.workers.map(
    (node): NodeCheckOutcome =>
      byName.get(node.name) ?? {
        node: node.name,
        role: node.role,
        reachable: false,
        error: failed.get(node.name) ?? "no answer",
        results: [],
        fixed: fixed.get(node.name) ?? [],
        warnings: [],
        ok: false,
      },
  );
  return [...direct, ...workers];
}

function repliesOf(outcome: BatchOutcome): AgentReply[] {
  if (!outcome.ok) throw outcome.error;
  return outcome.replies;
}
