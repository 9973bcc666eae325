import pLimit from "p-limit";
import { jobLaunchOf } from "../core/job-launch.js";
import type { CheckResult, JobLaunch, LeaderExpectations } from "../core/node-checks.js";
import { nodePasses } from "../core/node-checks.js";
import type { Inventory, NodeSpec } from "../inventory/types.js";
import { AgentSession } from "../transport/agent-session.js";
import { connect, type NodeConnection } from "../transport/connection.js";
import { hello } from "../transport/worker-client.js";
import { checkNode, fixNode } from "./node-check.js";

/** `sync-cluster check`: every node (leader and workers) probed in parallel, bounded like push. */

export interface NodeCheckOutcome {
  node: string;
  role: NodeSpec["role"];
  reachable: boolean;
  error?: string;
  results: CheckResult[];
  fixed: string[];
  ok: boolean;
}

export interface CheckOptions {
  concurrency?: number;
  fix?: boolean;
  acceptNew?: boolean;
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
  const nodes = [...(inventory.leader ? [inventory.leader] : []), ...inventory.workers];
  const limit = pLimit(Math.max(1, options.concurrency ?? inventory.concurrency));
  return Promise.all(
    nodes.map((node) =>
      limit(async (): Promise<NodeCheckOutcome> => {
        let connection: NodeConnection | undefined;
        const fixed: string[] = [];
        try {
          connection = await connect(node, { acceptNew: options.acceptNew ?? false });
          let session = await AgentSession.start(connection);
          try {
            let state = await hello(session, node, inventory.project.name, 3);
            if (options.fix) {
              fixed.push(...(await fixNode(session)));
              if (fixed.length > 0) {
                // The agent may have started without the venv; start it again inside the new one.
                session.close();
                session = await AgentSession.start(connection);
                state = await hello(session, node, inventory.project.name, 3);
              }
            }
            if (node.role === "leader") jobsKnown(launch(state.sitePackages ? state.venv : null, state.path));
            const jobs = await leaderJobs;
            const results = await checkNode(session, node, { leader: { ...leader, jobs }, deep: true });
            return {
              node: node.name,
              role: node.role,
              reachable: true,
              results,
              fixed,
              ok: nodePasses(results),
            };
          } finally {
            session.close();
          }
        } catch (error) {
          if (node.role === "leader") jobsKnown(undefined);
          return {
            node: node.name,
            role: node.role,
            reachable: false,
            error: (error as Error).message,
            results: [],
            fixed,
            ok: false,
          };
        } finally {
          connection?.close();
        }
      }),
    ),
  );
}
