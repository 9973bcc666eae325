import { createHash } from "node:crypto";

/**
 * The module set as data: what a release contains. A release is named by its content, so the
 * same set always gets the same id and pushing it twice sends nothing.
 */

export interface ManifestFile {
  /** Relative to the root, `/`-separated. */
  path: string;
  size: number;
  /** 0o644 or 0o755: only the executable bit is carried. */
  mode: number;
  sha256: string;
}

export interface Manifest {
  files: ManifestFile[];
}

export function compareByPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function compareUtf8(a: ManifestFile, b: ManifestFile): number {
  return Buffer.compare(Buffer.from(a.path, "utf8"), Buffer.from(b.path, "utf8"));
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * In byte order of the UTF-8 paths: what the worker agent sorts by too, whatever the characters.
 * JavaScript's own string order (UTF-16 units) is the same but for characters beyond U+FFFF
 * (surrogate pairs), so only lists holding one pay for comparing bytes.
 */
function inUtf8Order(files: readonly ManifestFile[]): ManifestFile[] {
  const sorted = [...files];
  return sorted.sort(sorted.some((f) => SURROGATE.test(f.path)) ? compareUtf8 : compareByPath);
}

/**
 * Content-derived release id: the same files with the same content and modes give the same id.
 * The worker agent recomputes it (src/worker/sync_cluster_agent/release_files.py, release_id_of) to prove what it built.
 */
export function releaseIdOf(files: readonly ManifestFile[]): string {
  const hash = createHash("sha256");
  for (const f of inUtf8Order(files)) {
    hash.update(`${f.path}\0${f.size}\0${f.mode.toString(8)}\0${f.sha256}\n`);
  }
  return hash.digest("hex").slice(0, 24);
}

export function totalBytes(files: readonly ManifestFile[]): number {
  return files.reduce((sum, f) => sum + f.size, 0);
}
