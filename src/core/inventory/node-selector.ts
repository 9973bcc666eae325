import picomatch from "picomatch";
import type { NodeSpec } from "./inventory-types.js";

/**
 * `--nodes` for exec (and NODE for ssh): comma-separated names, globs, or the words `workers`,
 * `leader` and `all`. A term that matches nothing is an error, so a typo never runs on fewer
 * nodes than the user meant.
 */

export type SelectorResult = { nodes: NodeSpec[] } | { problem: string };

export function selectNodes(all: readonly NodeSpec[], selector: string): SelectorResult {
  const terms = selector
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  if (terms.length === 0)
    return { problem: "--nodes is empty: give node names, globs, `workers`, `leader` or `all`" };
  const chosen = new Set<NodeSpec>();
  for (const term of terms) {
    let matched: NodeSpec[];
    if (term === "all") matched = [...all];
    else if (term === "workers") matched = all.filter((n) => n.role === "worker");
    else if (term === "leader") matched = all.filter((n) => n.role === "leader");
    else {
      const isMatch = picomatch(term, { dot: true });
      matched = all.filter((n) => isMatch(n.name));
    }
    if (matched.length === 0) {
      const names = all.map((n) => n.name);
      const shown = names.length > 12 ? `${names.slice(0, 12).join(", ")}, ...` : names.join(", ");
      return { problem: `no node matches \`${term}\` (nodes: ${shown || "none"})` };
    }
    for (const n of matched) chosen.add(n);
  }
  // Inventory order, whatever order the terms came in.
  return { nodes: all.filter((n) => chosen.has(n)) };
}
