import type { ManifestFile } from "./manifest.js";

/**
 * Where each file of the module set sits in a worker's release (docs/DESIGN.md section 5). With one
 * root the release holds the root's files at its top. With several (project code on a second
 * import-path entry) it holds them as `.roots/0/...`, `.roots/1/...`, numbered in the leader's
 * sys.path order and nothing else at its top, and the worker puts every `.roots/<k>` on its path
 * in that order.
 */

export const ROOTS_DIR = ".roots";

/** A file of the set: its path relative to its own root, and which root (an index into the roots). */
export interface ResolvedFile extends ManifestFile {
  root: number;
}

export function releasePathOf(file: { path: string; root: number }, rootCount: number): string {
  return rootCount > 1 ? `${ROOTS_DIR}/${file.root}/${file.path}` : file.path;
}

/** The manifest of the release: what a worker holds, and what the release id is computed from. */
export function releaseFilesOf(files: readonly ResolvedFile[], rootCount: number): ManifestFile[] {
  return files.map((f) => ({
    path: releasePathOf(f, rootCount),
    size: f.size,
    mode: f.mode,
    sha256: f.sha256,
  }));
}

/** The inverse of releasePathOf: which root a release path comes from, and its path below that root. */
export function sourceOf(releasePath: string, rootCount: number): { root: number; path: string } {
  if (rootCount <= 1) return { root: 0, path: releasePath };
  const m = /^\.roots\/(\d+)\/(.+)$/s.exec(releasePath);
  if (!m || Number(m[1]) >= rootCount)
    throw new Error(`${releasePath} is not a path of a ${rootCount}-root release`);
  return { root: Number(m[1]), path: m[2]! };
}
