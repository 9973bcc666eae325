import type { NodePushResult } from "../push/node-push.js";
import type { PushEvent } from "../push/push.js";
import { LiveBlock } from "./live-block.js";
import { formatBytes } from "./terminal.js";

/**
 * The live view of `push` on a terminal: one line per worker (state, bytes, files), redrawn in
 * place on stderr at most every 100 ms, and cleared before the summary table is printed on stdout.
 * Past 20 workers the block shows counts per state and the bytes in flight instead.
 */

export type NodeState =
  | { state: "queued" | "connecting" | "checking" | "preparing" | "publishing" }
  | { state: "sending"; bytesSent: number; bytesTotal: number; files: number }
  | { state: "done"; result: NodePushResult; ms: number }
  | { state: "failed"; error: string };

export function nextNodeState(current: NodeState | undefined, event: PushEvent): NodeState | undefined {
  switch (event.type) {
    case "node-start":
      return { state: "connecting" };
    case "node-progress":
      return event.phase === "sending"
        ? { state: "sending", bytesSent: event.bytesSent, bytesTotal: event.bytesTotal, files: event.files }
        : { state: event.phase };
    case "node-done":
      return { state: "done", result: event.result, ms: event.ms };
    case "node-failed":
      return { state: "failed", error: event.error };
    default:
      return current;
  }
}

function describe(node: NodeState): string {
  switch (node.state) {
    case "sending": {
      const percent = node.bytesTotal > 0 ? Math.floor((node.bytesSent / node.bytesTotal) * 100) : 100;
      return `sending     ${formatBytes(node.bytesSent)} of ${formatBytes(node.bytesTotal)} (${percent}%), ${node.files} file(s)`;
    }
    case "done": {
      const r = node.result;
      const what =
        r.status === "published" || r.status === "would-publish"
          ? `${r.filesSent} file(s), ${formatBytes(r.bytesSent)}`
          : r.status === "unchanged"
            ? "already current"
            : "switched";
      return `done        ${what} in ${(node.ms / 1000).toFixed(1)}s`;
    }
    case "failed":
      return `failed      ${node.error.split("\n")[0]}`;
    default:
      return node.state;
  }
}

/** The lines of the live block for the nodes' states, each cut to the terminal's width. */
export function pushProgressLines(nodes: ReadonlyMap<string, NodeState>, width: number): string[] {
  const cut = (line: string) => line.slice(0, Math.max(10, width - 1));
  const entries = [...nodes.entries()];
  if (entries.length <= 20) {
    const nameWidth = Math.max(4, ...entries.map(([name]) => name.length));
    return entries.map(([name, node]) => cut(`${name.padEnd(nameWidth)}  ${describe(node)}`));
  }
  const counts = new Map<string, number>();
  let bytesSent = 0;
  let bytesTotal = 0;
  for (const [, node] of entries) {
    counts.set(node.state, (counts.get(node.state) ?? 0) + 1);
    if (node.state === "sending") {
      bytesSent += node.bytesSent;
      bytesTotal += node.bytesTotal;
    }
  }
  const order = ["done", "sending", "publishing", "preparing", "checking", "connecting", "queued", "failed"];
  const summary = order
    .filter((state) => counts.has(state))
    .map((state) => `${counts.get(state)} ${state}`)
    .join(", ");
  const inFlight =
    bytesTotal > 0 ? `; ${formatBytes(bytesSent)} of ${formatBytes(bytesTotal)} in flight` : "";
  const failures = entries
    .filter(([, node]) => node.state === "failed")
    .slice(0, 5)
    .map(([name, node]) => cut(`  ${name}: ${describe(node).replace(/^failed\s+/, "")}`));
  return [cut(`${entries.length} workers: ${summary}${inFlight}`), ...failures];
}

export class PushDisplay {
  private readonly nodes = new Map<string, NodeState>();
  private readonly block: LiveBlock;

  constructor(out: NodeJS.WriteStream, workers: readonly string[]) {
    for (const name of workers) this.nodes.set(name, { state: "queued" });
    this.block = new LiveBlock(out, (width) => pushProgressLines(this.nodes, width));
  }

  handle(event: PushEvent): void {
    if (!("node" in event)) return;
    const next = nextNodeState(this.nodes.get(event.node), event);
    if (next) this.nodes.set(event.node, next);
    this.block.redrawSoon();
  }

  /** Removes the live block, so the summary that follows stands alone. */
  close(): void {
    this.block.stop({ clear: true });
  }
}
