import type { ManifestFile } from "./manifest.js";

/**
 * What a worker lacks: the files of the target release that its base release cannot provide.
 * Content is matched by hash, not by path, so a renamed or moved file is linked on the worker from
 * where it was, and only what the worker has nowhere crosses the network.
 */

export interface ReusedFile {
  file: ManifestFile;
  /** Path of the same content (and mode) in the base release on the worker. */
  from: string;
}

export interface Delta {
  /** Files to send over the network. */
  send: ManifestFile[];
  /** Files the worker already has in the base release. */
  reuse: ReusedFile[];
  /** Paths of the base release that the target no longer has. */
  removed: string[];
  bytesToSend: number;
}

function contentKey(f: ManifestFile): string {
  return `${f.sha256}:${f.size}:${f.mode}`;
}

export function planDelta(target: readonly ManifestFile[], base: readonly ManifestFile[] | undefined): Delta {
  const byContent = new Map<string, string>();
  const basePaths = new Map<string, string>();
  for (const f of base ?? []) {
    basePaths.set(f.path, contentKey(f));
    if (!byContent.has(contentKey(f))) byContent.set(contentKey(f), f.path);
  }
  const send: ManifestFile[] = [];
  const reuse: ReusedFile[] = [];
  const targetPaths = new Set<string>();
  let bytesToSend = 0;
  for (const f of target) {
    targetPaths.add(f.path);
    const key = contentKey(f);
    // Prefer the same path: the link then needs no other lookup on the worker.
    const from = basePaths.get(f.path) === key ? f.path : byContent.get(key);
    if (from !== undefined) {
      reuse.push({ file: f, from });
    } else {
      send.push(f);
      bytesToSend += f.size;
    }
  }
  const removed = (base ?? []).filter((f) => !targetPaths.has(f.path)).map((f) => f.path);
  return { send, reuse, removed, bytesToSend };
}
