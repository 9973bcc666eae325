/**
 * How the leader finds where the worker agent's frames begin. sshd runs the agent's command
 * through the user's login shell, whose files (~/.bashrc, ~/.profile) may print to stdout before
 * the agent starts: a banner, a quota, a `module load` message. The agent first writes
 * AGENT_MARKER and its protocol version on a line of their own (src/worker/sync_cluster_agent/framing.py, ANNOUNCE);
 * what came before is the login shell's, and the frames follow.
 */

/** Bytes no login file prints by accident: a NUL and an ASCII record separator around a name. */
export const AGENT_MARKER = Buffer.from("\x00\x1esync-cluster-agent/", "latin1");

/** A login shell printing more than this before the agent starts is broken, not chatty. */
export const PREAMBLE_LIMIT = 1024 * 1024;

// The version and its newline: a few digits, never more.
const VERSION_LINE_LIMIT = 12;

export type Announcement =
  | { kind: "waiting" }
  /** What the login shell printed before (`preamble`) and the agent's first frame bytes (`rest`). */
  | { kind: "announced"; version: number; preamble: Buffer; rest: Buffer }
  /** More than PREAMBLE_LIMIT bytes and no marker. */
  | { kind: "overflow"; preamble: Buffer }
  /** The marker, then no version line: the stream is not the agent's. */
  | { kind: "garbled"; preamble: Buffer };

/** Fed the agent's stdout chunk by chunk until it has found the announcement. */
export class AnnouncementScanner {
  private seen: Buffer = Buffer.alloc(0);
  // Where the marker can still start: earlier bytes were searched already.
  private searchFrom = 0;

  push(chunk: Buffer): Announcement {
    this.seen = this.seen.length === 0 ? chunk : Buffer.concat([this.seen, chunk]);
    const at = this.seen.indexOf(AGENT_MARKER, this.searchFrom);
    if (at < 0) {
      this.searchFrom = Math.max(0, this.seen.length - AGENT_MARKER.length + 1);
      return this.seen.length > PREAMBLE_LIMIT
        ? { kind: "overflow", preamble: this.seen }
        : { kind: "waiting" };
    }
    this.searchFrom = at;
    const versionAt = at + AGENT_MARKER.length;
    const newline = this.seen.indexOf(0x0a, versionAt);
    const preamble = this.seen.subarray(0, at);
    if (newline < 0) {
      return this.seen.length - versionAt > VERSION_LINE_LIMIT
        ? { kind: "garbled", preamble }
        : { kind: "waiting" };
    }
    const version = this.seen.subarray(versionAt, newline).toString("latin1");
    if (!/^\d{1,9}$/.test(version)) return { kind: "garbled", preamble };
    return { kind: "announced", version: Number(version), preamble, rest: this.seen.subarray(newline + 1) };
  }

  /** Everything received so far (for the error when the agent never announces itself). */
  get received(): Buffer {
    return this.seen;
  }
}

/** What a login shell printed, as the user is shown it: the first line that says something. */
export interface PreambleSummary {
  bytes: number;
  lines: number;
  firstLine: string;
}

const SHOWN_LINE = 120;

export function summarizePreamble(preamble: Buffer): PreambleSummary {
  const text = preamble
    .toString("utf8")
    // Colours and cursor moves of a fancy banner, then any other control character.
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, "")
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
  const lines = text.split("\n").filter((line) => line.trim().length > 0);
  const first = (lines[0] ?? "").trim();
  return {
    bytes: preamble.length,
    lines: lines.length,
    firstLine: first.length > SHOWN_LINE ? `${first.slice(0, SHOWN_LINE)}...` : first,
  };
}

/** "printed 'Welcome to w1' (and 3 more lines, 2.1 KiB)": the words for what a login shell printed. */
export function describePreamble(summary: PreambleSummary): string {
  if (summary.lines === 0) return `printed ${summary.bytes} byte(s) of blank or control characters`;
  const more =
    summary.lines > 1
      ? ` (and ${summary.lines - 1} more line(s), ${formatSize(summary.bytes)} in all)`
      : summary.bytes > 1024
        ? ` (${formatSize(summary.bytes)})`
        : "";
  return `printed '${summary.firstLine}'${more}`;
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/** The warning shown once when a node's login shell printed before the agent started. */
export function loginOutputWarning(summary: PreambleSummary): string {
  return `the login shell ${describePreamble(summary)} before the sync-cluster agent started (set aside; commands run over SSH should print nothing: see the README, Troubleshooting)`;
}
