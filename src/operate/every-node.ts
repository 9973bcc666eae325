import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import { allNodes, type NodeResult, onNodes, withAgent } from "../fleet/on-nodes.js";
import type { AgentSession } from "../transport/agent-session.js";
import type { NodeLinker } from "../transport/node-link.js";
import type { WorkerState } from "../transport/worker-client.js";

export interface EveryNodeOptions {
  concurrency?: number;
  acceptNew?: boolean;
  links?: NodeLinker | undefined;
  /** Whether the hello returns the current release's manifest (the agent's default when unset). */
  withManifest?: boolean;
}

/**
 * The fan-out `status` and `rollback` share: one agent session on every node of the inventory
 * (leader first), greeted for the inventory's project with each node's own `keep`, bounded by
 * the inventory's concurrency unless the command says otherwise.
 */
export function withAgentOnEveryNode<T>(
  inventory: Inventory,
  options: EveryNodeOptions,
  work: (session: AgentSession, state: WorkerState, node: NodeSpec) => Promise<T>,
): Promise<NodeResult<T>[]> {
  return onNodes(
    allNodes(inventory),
    {
      concurrency: options.concurrency ?? inventory.concurrency,
      acceptNew: options.acceptNew ?? false,
      links: options.links,
    },
    (connection) =>
      withAgent(
        connection,
        { project: inventory.project.name, keep: connection.node.keep, withManifest: options.withManifest },
        (session, state) => work(session, state, connection.node),
      ),
  );
}
