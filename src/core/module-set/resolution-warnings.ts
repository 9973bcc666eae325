import { join } from "node:path";
import type { NotShippedImport, UnresolvedImport } from "../python/import-classification.js";
import type { NativeDistribution } from "./installed-set.js";

/**
 * What `resolve` warns about once the set is chosen: each warning says what will go wrong on the
 * workers and what to do about it. Pure: the resolver gathers the findings.
 */

/** Files above this size are shipped with a warning: each change sends them whole to every worker. */
export const LARGE_FILE_BYTES = 10 * 1024 * 1024;

/**
 * An import-path entry is no package for Python, whatever it holds (many projects keep a
 * src/__init__.py): the workers put it on their path the same way.
 */
export function rootInitWarning(root: string): string {
  return `${join(root, "__init__.py")} is ignored: ${root} is an import-path entry, not a package, for Python here and on the workers; it is not shipped.`;
}

/** The files over LARGE_FILE_BYTES, named relative to their root (absolute when there are several). */
export function largeFileWarnings(
  files: readonly { path: string; root: number; size: number }[],
  roots: readonly string[],
): string[] {
  return files
    .filter((f) => f.size > LARGE_FILE_BYTES)
    .map(
      (f) =>
        `${roots.length > 1 ? join(roots[f.root]!, f.path) : f.path} is ${(f.size / 1024 / 1024).toFixed(1)} MiB: every change to it is sent whole to every worker. If the workers do not need it, add it to \`project.exclude\` or the project's .gitignore.`,
    );
}

export interface ImportFindings {
  native: readonly NativeDistribution[];
  unresolved: readonly UnresolvedImport[];
  syntaxErrors: readonly { file: string; line: number; message: string }[];
  notShipped: readonly NotShippedImport[];
}

/** One warning per finding, grouped by kind: compiled code, unresolved imports, syntax errors, the start directory. */
export function importWarnings(found: ImportFindings, pythonVersion: string): string[] {
  return [
    ...found.native.map(
      (n) =>
        `${n.dist}${n.version ? ` ${n.version}` : ""} contains compiled code (${n.evidence}): it is not shipped and must be installed on each worker.`,
    ),
    ...found.unresolved.map(
      (u) =>
        `${u.file}:${u.line}: \`import ${u.module}\` cannot be resolved on the leader; it will fail on the workers too.`,
    ),
    ...found.syntaxErrors.map(
      (e) =>
        `${e.file}:${e.line}: does not compile with the leader's Python ${pythonVersion} (${e.message}): every job importing it would fail. push refuses it (--force pushes it anyway); watch keeps the workers on the last good release until it is fixed.`,
    ),
    ...found.notShipped.map(
      (n) =>
        `${n.file}:${n.line}: \`import ${n.module}\` is found on the leader, not shipped: only in the start directory ${n.path}, which \`python -m\` puts on the leader's path but no worker has. Move it into one of the project's packages, or put ${n.path} on PYTHONPATH to ship it as a root.`,
    ),
  ];
}
