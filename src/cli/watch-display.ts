import type { WatchEvent } from "../watch/watch.js";
import { LiveBlock } from "./live-block.js";
import { formatBytes } from "./terminal.js";

/**
 * The live view of `watch` on a terminal: a log of releases and failures scrolling above a block
 * of one status line per node, redrawn in place. Past 20 nodes the block shows counts instead.
 */

/** The log's clock: 24-hour HH:MM:SS, whatever the locale (a 12-hour clock without AM/PM is ambiguous). */
export function clock24(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
}

/** Nodes shown as left at most: older ones drop off the block. */
const MAX_LEFT_SHOWN = 5;

/** A line of a command's output without what a terminal would act on (colors, cursor moves, carriage returns). */
function printable(line: string): string {
  return line.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, "").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
}

interface NodeLine {
  phase: string;
  release?: string;
  detail?: string;
}

export class WatchDisplay {
  private readonly nodes = new Map<string, NodeLine>();
  private readonly block: LiveBlock;
  /** Set while a module does not compile: shown above the nodes until a release replaces it. */
  private held: string | undefined;

  constructor(out: NodeJS.WriteStream) {
    this.block = new LiveBlock(out, (width) => this.lines(width));
  }

  handle(event: WatchEvent): void {
    if (event.type === "on-synced-output") {
      // Each line of the command's output gets the clock and a prefix; nothing it prints can
      // move the cursor into the live block.
      const time = clock24(new Date());
      this.block.printAbove(event.lines.map((l) => `${time} on-synced | ${printable(l)}\n`).join(""));
      return;
    }
    const log = this.logLine(event);
    this.track(event);
    if (log) this.block.printAbove(`${clock24(new Date())} ${log}\n`);
    else this.block.redrawSoon();
  }

  private track(event: WatchEvent): void {
    switch (event.type) {
      case "held":
        this.held = `HELD: ${event.errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join("; ")} (workers keep ${event.keeping ?? "what they have"})`;
        break;
      case "release":
      case "unchanged":
        this.held = undefined;
        break;
      case "node-phase":
        this.nodes.set(event.node, {
          ...this.nodes.get(event.node),
          phase: event.phase,
          ...(event.release ? { release: event.release } : {}),
          detail: "",
        });
        break;
      case "node-synced":
        this.nodes.set(event.node, {
          phase: "in-sync",
          release: event.release,
          detail: `${Math.round(event.latencyMs)} ms after the change`,
        });
        break;
      case "node-failed":
        this.nodes.set(event.node, {
          ...this.nodes.get(event.node),
          phase: "failed",
          detail: `${event.error} (retry in ${(event.retryInMs / 1000).toFixed(1)}s)`,
        });
        break;
      case "node-removed":
        this.nodes.delete(event.node);
        break;
      case "node-left":
        // Shown as left (the most recent few only: an autoscaled cluster sees many come and go).
        this.nodes.delete(event.node);
        this.nodes.set(event.node, { phase: "left", detail: `no longer listed by ${event.source}` });
        this.forgetOldLeft();
        break;
    }
  }

  private forgetOldLeft(): void {
    const left = [...this.nodes].filter(([, l]) => l.phase === "left").map(([name]) => name);
    for (const name of left.slice(0, Math.max(0, left.length - MAX_LEFT_SHOWN))) this.nodes.delete(name);
  }

  private logLine(event: WatchEvent): string | undefined {
    switch (event.type) {
      case "watching":
        return `watching ${event.root} for ${event.nodes.length} worker(s); release ${event.release}`;
      case "release":
        return `release ${event.release}: ${event.files} files, ${formatBytes(event.bytes)} (resolved in ${Math.round(event.resolveMs)} ms)`;
      case "held":
        return `not released, ${event.errors.length} module(s) do not compile; workers keep ${event.keeping ?? "what they have"}:\n${event.errors.map((e) => `  ${e.file}:${e.line}: ${e.message}`).join("\n")}`;
      case "unresolved":
        return `${event.file}:${event.line}: \`import ${event.module}\` cannot be resolved on the leader; it will fail on the workers too`;
      case "resolve-error":
        return `cannot resolve, workers keep ${event.keeping ?? "what they have"}:\n  ${event.message.replaceAll("\n", "\n  ")}`;
      case "inventory-error":
        return `inventory: ${event.message}`;
      case "node-added":
        return `${event.node} added`;
      case "node-removed":
        return `${event.node} removed`;
      case "node-left":
        return `${event.node} left (no longer listed by ${event.source})`;
      case "workers-error":
        return `${event.source} failed; keeping the last ${event.keeping} worker(s) until it works again:\n  ${event.message.replaceAll("\n", "\n  ")}`;
      case "workers-recovered":
        return `${event.source} works again: ${event.workers} worker(s)`;
      case "all-synced":
        return `every node (${event.nodes.length}) holds release ${event.release}`;
      case "on-synced-start":
        return `on-synced: running \`${event.command}\` for release ${event.release}`;
      case "on-synced-queued":
        return `on-synced: release ${event.release} is on every node; it runs once the run for ${event.running} ends`;
      case "on-synced-done":
        if (event.ok)
          return `on-synced: done for release ${event.release} (${(event.ms / 1000).toFixed(1)}s)`;
        return `on-synced: FAILED for release ${event.release} (${event.signal ? `killed by ${event.signal}` : `exit ${event.code}`}); watch goes on${event.stderrTail.length ? `; its last stderr lines:\n${event.stderrTail.map((l) => `  ${printable(l)}`).join("\n")}` : ""}`;
      case "warning":
        return `warning: ${event.message}`;
      case "node-warning":
        return `warning: ${event.node}: ${event.message}`;
      case "stopping":
        return `stopping${event.inFlight ? ` (${event.inFlight} push(es) in flight)` : ""}`;
      case "node-failed":
        return event.attempt === 1 ? `${event.node} failed: ${event.error}` : undefined;
      case "node-run-release":
        return `${event.node} lacked release ${event.release}, which a workflow run uses: installed beside its current one`;
      default:
        return undefined;
    }
  }

  private lines(width: number): string[] {
    const held = this.held ? [this.held.slice(0, width - 1)] : [];
    return [...held, ...this.nodeLines(width)];
  }

  private nodeLines(width: number): string[] {
    const entries = [...this.nodes.entries()];
    if (entries.length > 20) {
      const counts = new Map<string, number>();
      for (const [, l] of entries) counts.set(l.phase, (counts.get(l.phase) ?? 0) + 1);
      const failed = entries
        .filter(([, l]) => l.phase === "failed")
        .slice(0, 5)
        .map(([n, l]) => `  ${n}: ${l.detail ?? ""}`);
      return [[...counts].map(([p, n]) => `${n} ${p}`).join(", "), ...failed].map((l) =>
        l.slice(0, width - 1),
      );
    }
    const nameWidth = Math.max(4, ...entries.map(([n]) => n.length));
    return entries.map(([name, l]) =>
      `${name.padEnd(nameWidth)}  ${l.phase.padEnd(10)} ${l.release ?? ""} ${l.detail ?? ""}`
        .trimEnd()
        .slice(0, width - 1),
    );
  }

  close(): void {
    this.block.stop({ clear: false });
  }
}
