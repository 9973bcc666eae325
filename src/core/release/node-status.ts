import type { ManifestFile } from "./manifest.js";

/**
 * `status`: what one worker runs compared with the leader's module set. Pure: the worker's
 * report comes from the agent's hello, the leader's set from the resolver.
 */

export interface WorkerReleaseReport {
  current: string | null;
  releases: readonly { id: string; time: number }[];
  manifest: readonly ManifestFile[] | undefined;
}

export interface ReleaseStatus {
  current: string | null;
  /** Seconds since the current release was published on the node; null when unknown. */
  ageSeconds: number | null;
  /** Whether the node runs exactly the leader's set; null when the leader's set is unknown. */
  inSync: boolean | null;
  /** Paths added, changed or removed between the node's release and the leader's set. */
  filesDiffering: number | null;
  releasesKept: number;
}

/** Paths whose content, size or mode differ, plus paths only one side has. */
export function countDifferingFiles(leader: readonly ManifestFile[], node: readonly ManifestFile[]): number {
  const nodeByPath = new Map(node.map((f) => [f.path, f]));
  let differing = 0;
  for (const f of leader) {
    const other = nodeByPath.get(f.path);
    if (!other || other.sha256 !== f.sha256 || other.size !== f.size || other.mode !== f.mode) differing++;
    nodeByPath.delete(f.path);
  }
  return differing + nodeByPath.size;
}

export function releaseStatus(
  report: WorkerReleaseReport,
  leader: { id: string; files: readonly ManifestFile[] } | undefined,
  nowSeconds: number,
): ReleaseStatus {
  const published = report.releases.find((r) => r.id === report.current);
  const ageSeconds = published ? Math.max(0, Math.round(nowSeconds - published.time)) : null;
  let inSync: boolean | null = null;
  let filesDiffering: number | null = null;
  if (leader) {
    inSync = report.current === leader.id;
    if (inSync) filesDiffering = 0;
    else if (report.current === null) filesDiffering = leader.files.length;
    else if (report.manifest) filesDiffering = countDifferingFiles(leader.files, report.manifest);
  }
  return {
    current: report.current,
    ageSeconds,
    inSync,
    filesDiffering,
    releasesKept: report.releases.length,
  };
}

/** "3s", "5m", "2h", "4d": enough precision to tell a fresh push from a stale one. */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return "-";
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}
