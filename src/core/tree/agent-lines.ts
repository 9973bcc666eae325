import { AGENT_MARKER, type PreambleSummary, summarizePreamble } from "../protocol/agent-announcement.js";

/**
 * A node's agent, run through ClusterShell's tree, answers every request on a line of JSON of its
 * own (SYNC_CLUSTER_AGENT_REPLIES=lines, src/worker/sync_cluster_agent/framing.py) after its
 * announcement line. Read here: what the login shell printed before it, then one reply per request.
 */

const MARKER = AGENT_MARKER.toString("latin1");

export type AgentLines =
  | { kind: "replies"; replies: Record<string, unknown>[]; loginOutput?: PreambleSummary }
  /** The agent never announced itself: what the node printed instead. */
  | { kind: "no-agent"; loginOutput?: PreambleSummary }
  /** A line after the announcement that is no reply: the stream cannot be followed. */
  | { kind: "garbled"; line: string };

export function readAgentLines(lines: readonly string[]): AgentLines {
  const at = lines.findIndex((line) => line.includes(MARKER));
  const before = at < 0 ? lines : [...lines.slice(0, at), lines[at]!.slice(0, lines[at]!.indexOf(MARKER))];
  const printed = before.join("\n");
  const loginOutput = printed.trim().length > 0 ? summarizePreamble(Buffer.from(printed, "utf8")) : undefined;
  if (at < 0) return { kind: "no-agent", ...(loginOutput ? { loginOutput } : {}) };
  const announced = lines[at]!;
  const version = Number(announced.slice(announced.indexOf(MARKER) + MARKER.length));
  const replies: Record<string, unknown>[] = [];
  for (const line of lines.slice(at + 1)) {
    let reply: unknown;
    try {
      reply = JSON.parse(line);
    } catch {
      return { kind: "garbled", line };
    }
    if (typeof reply !== "object" || reply === null || Array.isArray(reply)) return { kind: "garbled", line };
    replies.push(reply as Record<string, unknown>);
  }
  // Another version answers hello with its version: the caller names it; only a mangled line is refused here.
  if (!Number.isInteger(version)) return { kind: "garbled", line: announced };
  return { kind: "replies", replies, ...(loginOutput ? { loginOutput } : {}) };
}
