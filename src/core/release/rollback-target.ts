/**
 * `rollback`: which release one worker goes back to. Pure, so the choice is tested without a
 * cluster: the previous release is the newest one published before the current one.
 */

export interface KeptRelease {
  id: string;
  /** Publish time, seconds since the epoch. */
  time: number;
}

export type RollbackTarget =
  | { kind: "switch"; release: string }
  | { kind: "already"; release: string }
  | { kind: "missing"; reason: string };

/** Matches `wanted` as a full id or a unique prefix (at least 4 characters), like git. */
export function findRelease(
  releases: readonly KeptRelease[],
  wanted: string,
): KeptRelease | { problem: string } {
  const exact = releases.find((r) => r.id === wanted);
  if (exact) return exact;
  if (wanted.length < 4)
    return { problem: `release ${wanted} is not on this node (give at least 4 characters of its id)` };
  const matches = releases.filter((r) => r.id.startsWith(wanted));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1)
    return { problem: `${wanted} is ambiguous here: ${matches.map((m) => m.id).join(", ")}` };
  const kept = releases.map((r) => r.id).join(", ") || "none";
  return { problem: `release ${wanted} is not on this node (it keeps: ${kept})` };
}

export function rollbackTarget(
  current: string | null,
  releases: readonly KeptRelease[],
  to?: string,
): RollbackTarget {
  if (to !== undefined) {
    const found = findRelease(releases, to);
    if ("problem" in found) return { kind: "missing", reason: found.problem };
    return found.id === current
      ? { kind: "already", release: found.id }
      : { kind: "switch", release: found.id };
  }
  if (current === null) return { kind: "missing", reason: "nothing has been pushed to this node" };
  const now = releases.find((r) => r.id === current);
  if (!now)
    return { kind: "missing", reason: `its current release ${current} is not among its kept releases` };
  // Ties in time are broken by id so every node picks the same release from the same history.
  const older = releases
    .filter((r) => r.id !== current && (r.time < now.time || (r.time === now.time && r.id < now.id)))
    .sort((a, b) => b.time - a.time || (a.id < b.id ? 1 : -1));
  const previous = older[0];
  if (!previous) return { kind: "missing", reason: `no release older than ${current} is kept on this node` };
  return { kind: "switch", release: previous.id };
}
