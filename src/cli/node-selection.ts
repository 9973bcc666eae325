import { UsageError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { selectNodes, selectorGroups } from "../core/inventory/node-selector.js";
import type { GroupMembers } from "../core/inventory/node-set.js";
import { lookUpNodeGroups, NodeGroupError } from "../inventory/node-groups.js";

/** Help for a selector, shared by the commands that take one. */
export const SELECTOR_HELP =
  "names, node sets (node[01-04]), ClusterShell @groups, globs (gpu-*), `workers`, `leader`, `all`; joined by , (add) ! (take away) & (on both sides); brackets holding numbers are a node set (w[12] is w12), other brackets a glob (w[a-c])";

/** The nodes a selector picks, its ClusterShell groups asked of `nodeset` first. Throws UsageError. */
export async function chooseNodes(
  nodes: readonly NodeSpec[],
  selector: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<NodeSpec[]> {
  let groups: GroupMembers = new Map();
  const named = selectorGroups(selector);
  if (named.length > 0) {
    try {
      groups = await lookUpNodeGroups(named, { env, cwd: process.cwd() });
    } catch (error) {
      if (error instanceof NodeGroupError) throw new UsageError(`\`${selector}\`: ${error.message}`);
      throw error;
    }
  }
  const selected = selectNodes(nodes, selector, groups);
  if ("problem" in selected) throw new UsageError(selected.problem);
  return selected.nodes;
}
