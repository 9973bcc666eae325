import { type Delta, planDelta } from "./delta.js";
import type { ManifestFile } from "./manifest.js";

/**
 * The `prepare` request that turns a worker's base release into the target: what is new or
 * changed (`upsert`, with the files among them that the worker links from another path, in
 * `reuse`) and what is gone. Everything else the worker links from the same path of its base.
 * Pure and keyed by content, so one plan serves every worker that runs the same base release.
 */

export type WireFile = [path: string, size: number, mode: number, sha256: string];

export interface PublishPlan {
  delta: Delta;
  upsert: WireFile[];
  remove: string[];
  /** [path in the target, path of the same content in the base]. */
  reuse: [string, string][];
}

export function planPublish(
  target: readonly ManifestFile[],
  base: readonly ManifestFile[] | undefined,
): PublishPlan {
  const delta = planDelta(target, base);
  // planDelta prefers the same path, and only when its content is the same: those need no entry.
  const moved = delta.reuse.filter((r) => r.from !== r.file.path);
  return {
    delta,
    upsert: [...delta.send, ...moved.map((r) => r.file)].map((f) => [f.path, f.size, f.mode, f.sha256]),
    remove: delta.removed,
    reuse: moved.map((r) => [r.file.path, r.from]),
  };
}
