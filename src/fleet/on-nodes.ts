import pLimit from "p-limit";
import type { NodeSpec } from "../inventory/types.js";
import { connect, type NodeConnection } from "../transport/connection.js";

/**
 * The shape every fan-out command shares: connect to each node, a bounded number at a time, run
 * one piece of work, close. One node failing never stops the others; each gets an outcome.
 */

export type NodeResult<T> =
  | { node: NodeSpec; ok: true; value: T; ms: number }
  | { node: NodeSpec; ok: false; error: string; ms: number };

export interface FanOutOptions {
  concurrency: number;
  acceptNew?: boolean;
  /** Called as each node finishes, in completion order (for progress and streaming output). */
  onResult?: (result: NodeResult<unknown>) => void;
}

export async function onNodes<T>(
  nodes: readonly NodeSpec[],
  options: FanOutOptions,
  work: (connection: NodeConnection) => Promise<T>,
): Promise<NodeResult<T>[]> {
  const limit = pLimit(Math.max(1, options.concurrency));
  return Promise.all(
    nodes.map((node) =>
      limit(async (): Promise<NodeResult<T>> => {
        const started = performance.now();
        let connection: NodeConnection | undefined;
        let result: NodeResult<T>;
        try {
          connection = await connect(node, { acceptNew: options.acceptNew ?? false });
          const value = await work(connection);
          result = { node, ok: true, value, ms: performance.now() - started };
        } catch (error) {
          result = { node, ok: false, error: (error as Error).message, ms: performance.now() - started };
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
