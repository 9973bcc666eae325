import type { Inventory } from "../core/inventory/inventory-types.js";
import { type RollbackTarget, rollbackTarget } from "../core/release/rollback-target.js";
import type { NodeLinker } from "../transport/node-link.js";
import { activate } from "../transport/worker-client.js";
import { withAgentOnEveryNode } from "./every-node.js";

/**
 * `rollback`: every node's `current` switched back atomically, under the node's lock; the
 * leader's too, since the next workflow run takes its release from there.
 */

export interface RollbackOutcome {
  node: string;
  ok: boolean;
  /** switched: now on `release`; already: it was on it; missing: left unchanged (see reason). */
  kind?: RollbackTarget["kind"];
  from?: string | null;
  release?: string;
  error?: string;
}

export async function rollbackAll(
  inventory: Inventory,
  options: {
    to?: string;
    concurrency?: number;
    acceptNew?: boolean;
    dryRun?: boolean;
    links?: NodeLinker | undefined;
  } = {},
): Promise<RollbackOutcome[]> {
  const results = await withAgentOnEveryNode(
    inventory,
    { ...options, withManifest: false },
    async (session, state, node): Promise<RollbackOutcome> => {
      const target = rollbackTarget(state.current, state.releases, options.to);
      if (target.kind === "missing") {
        return {
          node: node.name,
          ok: false,
          kind: "missing",
          from: state.current,
          error: `left unchanged: ${target.reason}`,
        };
      }
      if (target.kind === "switch" && !options.dryRun)
        // The next push collects, knowing what the leader's runs use; a rollback does not ask.
        await activate(session, { release: target.release, lockTimeout: 60, collect: false });
      return {
        node: node.name,
        ok: true,
        kind: target.kind,
        from: state.current,
        release: target.release,
      };
    },
  );
  return results.map((r) => (r.ok ? r.value : { node: r.node.name, ok: false, error: r.error }));
}
