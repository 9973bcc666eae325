import pLimit from "p-limit";
import type { CheckResult, LeaderExpectations } from "../core/node-checks.js";
import { nodePasses } from "../core/node-checks.js";
import type { Inventory, NodeSpec } from "../inventory/types.js";
import { hello } from "../push/node-push.js";
import { AgentSession } from "../transport/agent-session.js";
import { connect, type NodeConnection } from "../transport/connection.js";
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

export async function checkAll(
  inventory: Inventory,
  leader: LeaderExpectations,
  options: CheckOptions = {},
): Promise<NodeCheckOutcome[]> {
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
            await hello(session, node, inventory.project.name, 3);
            if (options.fix) {
              fixed.push(...(await fixNode(session)));
              if (fixed.length > 0) {
                // The agent may have started without the venv; start it again inside the new one.
                session.close();
                session = await AgentSession.start(connection);
                await hello(session, node, inventory.project.name, 3);
              }
            }
            const results = await checkNode(session, node, { leader, deep: true });
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
