/**
 * What the tree relay (src/tree/relay.py, ClusterShell on the leader) reports, one JSON object a
 * line, read into typed events, and how one node's run ended. Pure: the relay's process is
 * src/tree/tree-relay.ts's.
 */

export type RelayEvent =
  | { kind: "route"; node: string; via: string | null }
  | { kind: "out"; run: string; node: string; line: string }
  | { kind: "err"; run: string; node: string; line: string }
  | { kind: "rc"; run: string; node: string; rc: number }
  | { kind: "lost"; run: string; node: string; reason: string }
  | { kind: "timeout"; run: string; node: string }
  | { kind: "done" };

/** One line of the relay's output as an event; undefined for a line that is none (reported as such by the caller). */
export function relayEvent(line: string): RelayEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const o = value as Record<string, unknown>;
  if (o.done === true) return { kind: "done" };
  if (typeof o.route === "string")
    return { kind: "route", node: o.route, via: typeof o.via === "string" ? o.via : null };
  if (typeof o.run !== "string" || typeof o.node !== "string") return undefined;
  const { run, node } = o;
  if (typeof o.out === "string") return { kind: "out", run, node, line: o.out };
  if (typeof o.err === "string") return { kind: "err", run, node, line: o.err };
  if (typeof o.rc === "number") return { kind: "rc", run, node, rc: o.rc };
  if (typeof o.lost === "string") return { kind: "lost", run, node, reason: o.lost };
  if (o.timeout === true) return { kind: "timeout", run, node };
  return undefined;
}

/** How one node's command ended, with everything it printed. */
export interface NodeRun {
  node: string;
  /** The gateway the node was reached through; null when the leader reached it directly. */
  via: string | null;
  out: string[];
  err: string[];
  end: { rc: number } | { lost: string } | { timeout: true };
}

/** In words, for a node whose command did not end with an exit status. */
export function describeEnd(run: NodeRun, timeoutSeconds: number): string | undefined {
  if ("lost" in run.end) return `not reached: ${run.end.lost}`;
  if ("timeout" in run.end)
    return `did not finish within ${timeoutSeconds} s${run.via ? ` (reached through ${run.via})` : ""}`;
  return undefined;
}
