import pLimit from "p-limit";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { AgentSession } from "../transport/agent-session.js";
import { directLinker, type NodeLink, type NodeLinker } from "../transport/node-link.js";
import { hello, type WorkerState } from "../transport/worker-client.js";

/**
 * The shape every fan-out command shares: connect to each node, a bounded number at a time, run
 * one piece of work, close. One node failing never stops the others; each gets an outcome.
 */

export type NodeResult<T> =
  | { node: NodeSpec; ok: true; value: T; ms: number }
  /** `cause` is what was thrown; `error` its message. */
  | { node: NodeSpec; ok: false; error: string; cause?: unknown; ms: number };

export interface FanOutOptions<T> {
  concurrency: number;
  acceptNew?: boolean;
  /** How nodes are reached: directly (the default) or through the user's daemon. */
  links?: NodeLinker | undefined;
  /** Once aborted, nodes not yet started fail at once ("interrupted before it started"), unconnected. */
  signal?: AbortSignal;
  /** Called as a node's turn comes, before it connects. */
  onStart?: (node: NodeSpec) => void;
  /** Called as each node finishes, in completion order (for progress and streaming output). */
  onResult?: (result: NodeResult<T>) => void;
}

export async function onNodes<T>(
  nodes: readonly NodeSpec[],
  options: FanOutOptions<T>,
  work: (connection: NodeLink) => Promise<T>,
): Promise<NodeResult<T>[]> {
  const limit = pLimit(Math.max(1, options.concurrency));
  return Promise.all(
    nodes.map((node) =>
      limit(async (): Promise<NodeResult<T>> => {
        if (options.signal?.aborted)
          return { node, ok: false, error: "interrupted before it started", ms: 0 };
        const started = performance.now();
        let connection: NodeLink | undefined;
        let result: NodeResult<T>;
        try {
          options.onStart?.(node);
          connection = await (options.links ?? directLinker).link(node, {
            acceptNew: options.acceptNew ?? false,
          });
          const value = await work(connection);
          result = { node, ok: true, value, ms: performance.now() - started };
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          result = { node, ok: false, error: message, cause: error, ms: performance.now() - started };
        } finally {
          connection?.close();
        }
        options.onResult?.(result);
        return result;
      }),
    ),
  );
}

/** The leader (when the inventory has one) followed by the workers. */
export function allNodes(inventory: { leader?: NodeSpec | undefined; workers: NodeSpec[] }): NodeSpec[] {
  return [...(inventory.leader ? [inventory.leader] : []), ...inventory.workers];
}

/** What the handshake names: the project, how many releases to keep, whether to send the manifest. */
export interface Greeting {
  project: string;
  keep: number;
  withManifest?: boolean;
}

/**
 * One agent session over a node's link: starts the agent (or borrows the one the daemon holds),
 * says hello, runs `work` with the worker's state, and closes the session whatever happens.
 */
export async function withAgent<T>(
  connection: NodeLink,
  greeting: Greeting,
  work: (session: AgentSession, state: WorkerState) => Promise<T>,
): Promise<T> {
  const session = new AgentSession(connection.node, await connection.agent());
  try {
    const state = await hello(
      session,
      connection.node,
      greeting.project,
      greeting.keep,
      greeting.withManifest,
    );
    return await work(session, state);
  } finally {
    session.close();
  }
}
