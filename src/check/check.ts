import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import { loginOutputWarning } from "../core/protocol/agent-announcement.js";
import { jobLaunchOf } from "../core/readiness/job-launch.js";
import type { CheckResult, JobLaunch, LeaderExpectations } from "../core/readiness/node-checks.js";
import { nodePasses } from "../core/readiness/node-checks.js";
import { allNodes, onNodes, withAgent } from "../fleet/on-nodes.js";
import { checkNode, fixNode } from "../readiness/node-check.js";
import type { AgentSession } from "../transport/agent-session.js";
import type { NodeLinker } from "../transport/node-link.js";
import type { WorkerState } from "../transport/worker-client.js";

/** `sync-cluster check`: every node (leader and workers) probed in parallel, bounded like push. */

export interface NodeCheckOutcome {
  node: string;
  role: NodeSpec["role"];
  reachable: boolean;
  error?: string;
  results: CheckResult[];
  fixed: string[];
  /** What did not fail the node but deserves a word (its login shell printed before the agent started). */
  warnings: string[];
  ok: boolean;
}

export interface CheckOptions {
  concurrency?: number;
  fix?: boolean;
  acceptNew?: boolean;
  links?: NodeLinker | undefined;
  /** How the leader starts jobs, once known (from the leader node's handshake, else this process). */
  onLeaderJobs?: (jobs: JobLaunch | undefined) => void;
}

/** The leader's venv and PATH, from its own node when the inventory has one, else from this process. */
export interface LeaderSide {
  /** Used when the inventory has no leader node: sync-cluster runs on the leader. */
  localVenv: string | null;
  env?: NodeJS.ProcessEnv;
}

export async function checkAll(
  inventory: Inventory,
  leader: LeaderExpectations,
  options: CheckOptions = {},
  side: LeaderSide = { localVenv: null },
): Promise<NodeCheckOutcome[]> {
  const env = side.env ?? process.env;
  const launch = (leaderVenv: string | null, leaderPath: string) =>
    jobLaunchOf({
      batchSystem: inventory.project.batchSystem,
      leaderVenv,
      leaderPath,
      toilCheckEnv: env.TOIL_CHECK_ENV === "True",
    });
  // Workers are judged against the leader's venv path and PATH: known at once when sync-cluster
  // runs on the leader, else from the leader node's handshake (its task is started first).
  let jobsKnown: (jobs: JobLaunch | undefined) => void = () => {};
  const leaderJobs: Promise<JobLaunch | undefined> = inventory.leader
    ? new Promise((resolve) => {
        jobsKnown = resolve;
      })
    : Promise.resolve(launch(side.localVenv, env.PATH ?? "/usr/bin:/bin"));
  if (options.onLeaderJobs) void leaderJobs.then(options.onLeaderJobs);
  const nodes = allNodes(inventory);
  const greeting = (node: NodeSpec) => ({ project: inventory.project.name, keep: node.keep });
  const fixedOn = new Map<string, string[]>();
  const warningsOn = new Map<string, string[]>();
  const judge = async (node: NodeSpec, session: AgentSession, state: WorkerState): Promise<CheckResult[]> => {
    if (session.loginOutput) warningsOn.set(node.name, [loginOutputWarning(session.loginOutput)]);
    if (node.role === "leader") jobsKnown(launch(state.sitePackages ? state.venv : null, state.path));
    const jobs = await leaderJobs;
    return checkNode(session, node, { leader: { ...leader, jobs }, deep: true });
  };
  const outcomes = await onNodes<CheckResult[]>(
    nodes,
    {
      concurrency: options.concurrency ?? inventory.concurrency,
      acceptNew: options.acceptNew ?? false,
      links: options.links,
      // Workers wait for the leader's PATH: a leader that fails tells them there is none.
      onResult: (r) => {
        if (!r.ok && r.node.role === "leader") jobsKnown(undefined);
      },
    },
    async (connection) => {
      const node = connection.node;
      const fixed: string[] = [];
      fixedOn.set(node.name, fixed);
      const results = await withAgent(connection, greeting(connection.node), async (session, state) => {
        if (options.fix) {
          fixed.push(...(await fixNode(session)));
          // A fixed venv is probed by a fresh agent, started with the venv's python.
          if (fixed.length > 0) return undefined;
        }
        return judge(node, session, state);
      });
      return (
        results ??
        (await withAgent(connection, greeting(connection.node), (session, state) =>
          judge(node, session, state),
        ))
      );
    },
  );
  return outcomes.map(
    (r): NodeCheckOutcome =>
      r.ok
        ? {
            node: r.node.name,
            role: r.node.role,
            reachable: true,
            results: r.value,
            fixed: fixedOn.get(r.node.name) ?? [],
            warnings: warningsOn.get(r.node.name) ?? [],
            ok: nodePasses(r.value),
          }
        : {
            node: r.node.name,
            role: r.node.role,
            reachable: false,
            error: r.error,
            results: [],
            fixed: fixedOn.get(r.node.name) ?? [],
            warnings: [],
            ok: false,
          },
  );
}
