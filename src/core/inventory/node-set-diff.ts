import type { NodeSpec } from "./inventory-types.js";

/**
 * What changes when `watch` reads the node list again (the inventory edited, or its workers
 * command run again): nodes that appeared, nodes that are gone, and nodes whose address or
 * settings changed, which are reconnected from scratch. Matched by name.
 */
export interface NodeSetDiff {
  added: NodeSpec[];
  removed: NodeSpec[];
  changed: NodeSpec[];
}

export function diffNodeSets(previous: readonly NodeSpec[], next: readonly NodeSpec[]): NodeSetDiff {
  const before = new Map(previous.map((n) => [n.name, n]));
  const after = new Map(next.map((n) => [n.name, n]));
  const diff: NodeSetDiff = { added: [], removed: [], changed: [] };
  for (const [name, node] of before) if (!after.has(name)) diff.removed.push(node);
  for (const [name, node] of after) {
    const old = before.get(name);
    if (!old) diff.added.push(node);
    else if (!sameNode(old, node)) diff.changed.push(node);
  }
  return diff;
}

function sameNode(a: NodeSpec, b: NodeSpec): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof NodeSpec>;
  for (const key of keys) if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) return false;
  return true;
}
