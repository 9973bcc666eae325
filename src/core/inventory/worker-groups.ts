import { groupReferences, NodeSetError } from "./node-set.js";

/**
 * The ClusterShell groups a `workers` list names (`- "@compute"`, `- host: "@gpu,node9"`),
 * found in the parsed document before it is validated, so that the edge can ask `nodeset` for
 * their members first. An entry that is no node set is left to the validation to report.
 */

export interface NamedGroup {
  group: string;
  /** Key path of the host that names it, for the message when it cannot be looked up. */
  path: (string | number)[];
}

export function groupsNamedByWorkers(doc: unknown): NamedGroup[] {
  const isMapping = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isMapping(doc) || !Array.isArray(doc.workers)) return [];
  const found: NamedGroup[] = [];
  doc.workers.forEach((entry: unknown, i) => {
    const bare = typeof entry === "string";
    const host = bare ? entry : isMapping(entry) ? entry.host : undefined;
    if (typeof host !== "string" || !host.includes("@")) return;
    try {
      for (const group of groupReferences(host))
        found.push({ group, path: bare ? ["workers", i] : ["workers", i, "host"] });
    } catch (error) {
      if (!(error instanceof NodeSetError)) throw error;
    }
  });
  return found;
}
