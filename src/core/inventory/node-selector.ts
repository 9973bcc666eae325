import picomatch from "picomatch";
import type { NodeSpec } from "./inventory-types.js";
import {
  applyOperator,
  expandNodeSet,
  foldedIfShorter,
  type GroupMembers,
  groupReferences,
  NodeSetError,
  splitNodeSet,
} from "./node-set.js";

/**
 * `--nodes` for exec (and NODE for ssh): terms joined as in ClusterShell, left to right: `,`
 * adds, `!` takes away, `&` keeps the nodes on both sides, `^` those on one side only. A term is
 * `workers`, `leader` or `all`; a ClusterShell group (`@gpu`, its members looked up at the edge
 * and passed in); a name or node set (`node[01-04]`); or a glob (`gpu-*`). Brackets holding only
 * numbers, ranges and steps make a node set (`w[12]` is w12), any other brackets a glob
 * (`w[a-c]`). A term that matches nothing, or a name that is no node, is an error, so a typo
 * never runs on other nodes than the user meant.
 */

export type SelectorResult = { nodes: NodeSpec[] } | { problem: string };

/** Whether a term is a name or node set rather than a glob (see above). */
export function isNodeSetTerm(term: string): boolean {
  if (/[*?{}()|+]/.test(term)) return false;
  for (const [, inside] of term.matchAll(/\[([^\]]*)\]/g)) if (!/^[\d\s,/-]*$/.test(inside!)) return false;
  return true;
}

/** The ClusterShell groups a selector names, for the edge to look up before selecting. */
export function selectorGroups(selector: string): string[] {
  try {
    return [
      ...new Set(
        splitNodeSet(selector).flatMap((t) => (t.text.startsWith("@") ? groupReferences(t.text) : [])),
      ),
    ];
  } catch (error) {
    // selectNodes says what is wrong with it.
    if (error instanceof NodeSetError) return [];
    throw error;
  }
}

export function selectNodes(
  all: readonly NodeSpec[],
  selector: string,
  groups: GroupMembers = new Map(),
): SelectorResult {
  if (/^[\s,]*$/.test(selector))
    return {
      problem: "--nodes is empty: give node names, node sets, @groups, globs, `workers`, `leader` or `all`",
    };
  let terms: ReturnType<typeof splitNodeSet>;
  try {
    terms = splitNodeSet(selector);
  } catch (error) {
    if (!(error instanceof NodeSetError)) throw error;
    const hint = /^\s*!/.test(selector)
      ? ` (to leave nodes out of all of them: \`all${selector.trim()}\`)`
      : "";
    return { problem: `--nodes ${error.message}${hint}` };
  }
  let chosen = new Set<NodeSpec>();
  for (const term of terms) {
    const matched = termNodes(all, term.text, groups);
    if ("problem" in matched) return matched;
    chosen = applyOperator(chosen, term.operator, matched.nodes);
  }
  if (chosen.size === 0) return { problem: `\`${selector}\` leaves no node to run on` };
  // Inventory order, whatever order the terms came in.
  return { nodes: all.filter((n) => chosen.has(n)) };
}

function termNodes(all: readonly NodeSpec[], term: string, groups: GroupMembers): SelectorResult {
  if (term === "all") return { nodes: [...all] };
  if (term === "workers")
    return some(
      all,
      term,
      all.filter((n) => n.role === "worker"),
    );
  if (term === "leader")
    return some(
      all,
      term,
      all.filter((n) => n.role === "leader"),
    );
  try {
    if (term.startsWith("@")) return groupNodes(all, term, groups);
    if (isNodeSetTerm(term)) return namedNodes(all, term, expandNodeSet(term));
  } catch (error) {
    if (!(error instanceof NodeSetError)) throw error;
    return { problem: `--nodes: ${error.message}` };
  }
  const isMatch = picomatch(term, { dot: true });
  return some(
    all,
    term,
    all.filter((n) => isMatch(n.name)),
  );
}

function some(all: readonly NodeSpec[], term: string, matched: NodeSpec[]): SelectorResult {
  return matched.length > 0
    ? { nodes: matched }
    : { problem: `no node matches \`${term}\` (${nodeList(all)})` };
}

/** Every name must be a node: `node[01-04]` with node03 missing is a mistake, not three nodes. */
function namedNodes(all: readonly NodeSpec[], term: string, names: string[]): SelectorResult {
  const byName = new Map(all.map((n) => [n.name, n]));
  const missing = names.filter((name) => !byName.has(name));
  if (missing.length === names.length) return some(all, term, []);
  if (missing.length > 0)
    return {
      problem: `\`${term}\` names ${missing.length === 1 ? "a node" : `${missing.length} nodes`} the inventory does not have: ${brief(missing)} (${nodeList(all)})`,
    };
  return { nodes: names.map((name) => byName.get(name)!) };
}

/** A group lists hosts of the whole cluster: the inventory's nodes among them, by name or address. */
function groupNodes(all: readonly NodeSpec[], term: string, groups: GroupMembers): SelectorResult {
  const members = new Set<string>();
  for (const group of groupReferences(term)) {
    const names = groups.get(group);
    if (names === undefined)
      return { problem: `--nodes: ${group} is a ClusterShell group that was not looked up` };
    for (const name of names) members.add(name);
  }
  const matched = all.filter((n) => members.has(n.name) || members.has(n.host));
  if (matched.length > 0) return { nodes: matched };
  return {
    problem: `no node of the inventory is in \`${term}\` (${term}: ${brief([...members])}; ${nodeList(all)})`,
  };
}

function nodeList(all: readonly NodeSpec[]): string {
  return `nodes: ${all.length === 0 ? "none" : brief(all.map((n) => n.name))}`;
}

/** Names for a message: folded when shorter, the first dozen of a long list. */
function brief(names: readonly string[]): string {
  const folded = foldedIfShorter(names);
  return folded.length <= 160 ? folded : `${names.slice(0, 12).join(", ")}, ...`;
}
