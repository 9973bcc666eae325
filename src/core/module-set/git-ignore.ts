import ignore, { type Ignore } from "ignore";

/**
 * Rule 1 of docs/DESIGN.md section 4: files the project's `.gitignore` files ignore do not ship (build
 * outputs, caches, local data), when the root is inside a git work tree. The matching is the
 * `ignore` library's (gitignore's own syntax: negation, `**`, anchoring, directory-only
 * patterns); what is left here is git's layering, which the library does not do: each
 * `.gitignore` speaks for its own directory and below, the deepest one that has an opinion
 * about a path wins, and `.git/info/exclude` speaks last. Pure: the caller reads the files.
 * The user's global `core.excludesFile` is not read: it describes one person's editor, not the
 * project, and would make two leaders ship different sets.
 */

export interface IgnoreFile {
  /** The directory holding the file, relative to the project root ("" for the root itself). */
  dir: string;
  /**
   * For a file in a directory above the root (or `.git/info/exclude`): the root's path relative
   * to that directory, e.g. "src" for the work tree's top `.gitignore` when the root is `src/`.
   */
  above?: string;
  text: string;
}

interface Layer {
  rules: Ignore;
  dir: string;
  above: string | undefined;
}

export class GitIgnore {
  private readonly layers: Layer[] = [];

  /** `outer`: files above the root, outermost first (`.git/info/exclude` before any `.gitignore`). */
  constructor(outer: readonly IgnoreFile[] = []) {
    for (const f of outer) this.add(f);
  }

  /** Adds a `.gitignore` found while walking the root (parents before children). */
  add(file: IgnoreFile): void {
    this.layers.push({
      rules: ignore({ allowRelativePaths: true }).add(file.text),
      dir: file.dir,
      above: file.above,
    });
  }

  /**
   * Whether git ignores `path` (relative to the root). The caller never asks about a path under a
   * directory already found ignored: git does not look inside those, and neither does the walk.
   */
  ignores(path: string, isDir: boolean): boolean {
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      let local: string;
      if (layer.above !== undefined) local = layer.above === "" ? path : `${layer.above}/${path}`;
      else if (layer.dir === "") local = path;
      else if (path.startsWith(`${layer.dir}/`)) local = path.slice(layer.dir.length + 1);
      else continue;
      const verdict = layer.rules.test(isDir ? `${local}/` : local);
      if (verdict.ignored) return true;
      if (verdict.unignored) return false;
    }
    return false;
  }
}
