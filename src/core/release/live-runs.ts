import { topLevelNamesOf } from "../module-set/module-set.js";
import type { ManifestFile } from "./manifest.js";
import { ROOTS_DIR } from "./release-layout.js";

/**
 * Workflow runs in progress, and what they ask of every node. A run starts when its first
 * interpreter (the Toil leader) takes the leader's `current` release; it is live while that
 * interpreter runs (the agent's release_store.py, live_runs). Every job of the run imports the run's release, so every
 * node keeps it from collection and receives it when it lacks it (down at the publish, back since,
 * joined, re-imaged).
 */

/** A run in progress, as the node where it started records it. */
export interface LiveRun {
  release: string;
  /** When the run's first interpreter started (seconds since the epoch). */
  since: number;
  pid: number;
}

/** What the leader says now: releases pinned there (used within days), and its live runs. */
export interface LeaderRuns {
  pinned: readonly string[];
  runs: readonly LiveRun[];
}

/** The releases a worker must not collect: pinned on the leader, or used by a live run. */
export function protectedReleases(leader: LeaderRuns): string[] {
  return [...new Set([...leader.pinned, ...leader.runs.map((r) => r.release)])].sort();
}

/**
 * The live runs' releases a node lacks, oldest run first, each once; never `publishing` (the
 * release the node is being brought to: it gets it anyway).
 */
export function runReleasesLacking(
  runs: readonly LiveRun[],
  has: readonly { id: string }[],
  publishing: string | null,
): string[] {
  const held = new Set(has.map((r) => r.id));
  const out: string[] = [];
  for (const run of [...runs].sort((a, b) => a.since - b.since)) {
    if (run.release === publishing || held.has(run.release) || out.includes(run.release)) continue;
    out.push(run.release);
  }
  return out;
}

/** The top-level names a release's manifest provides (every root of a release of several). */
export function releaseTopLevel(files: readonly ManifestFile[]): string[] {
  const prefix = `${ROOTS_DIR}/`;
  const rootRelative = files.map((f) =>
    f.path.startsWith(prefix) ? { path: f.path.slice(f.path.indexOf("/", prefix.length) + 1) } : f,
  );
  return [...topLevelNamesOf(rootRelative)].sort();
}

/** Groups paths into requests of at most `limit` bytes of content each (one file alone may exceed it). */
export function batchesBySize<T extends { size: number }>(files: readonly T[], limit: number): T[][] {
  const batches: T[][] = [];
  let batch: T[] = [];
  let bytes = 0;
  for (const f of files) {
    if (batch.length > 0 && bytes + f.size > limit) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(f);
    bytes += f.size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** A live run as `status` shows it: which nodes lack its release, which could not be asked. */
export interface RunStatus extends LiveRun {
  lacking: string[];
  unknown: string[];
}

/** Each live run of the leader, with the nodes that lack its release. */
export function runsStatus(
  runs: readonly LiveRun[],
  nodes: readonly { node: string; releases?: readonly string[] | undefined }[],
): RunStatus[] {
  return [...runs]
    .sort((a, b) => a.since - b.since)
    .map((run) => ({
      ...run,
      lacking: nodes.filter((n) => n.releases && !n.releases.includes(run.release)).map((n) => n.node),
      unknown: nodes.filter((n) => !n.releases).map((n) => n.node),
    }));
}
