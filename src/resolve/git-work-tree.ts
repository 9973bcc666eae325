import { readFile, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { IgnoreFile } from "../core/module-set/git-ignore.js";

/**
 * The ignore files that speak for a root from above it, when the root is inside a git work tree:
 * `.git/info/exclude` of the work tree, then every `.gitignore` from the work tree's top down to
 * the root's parent. Undefined when the root is in no work tree (then no `.gitignore` counts,
 * as for git itself). `.git` may be a file (submodules, worktrees): its `gitdir:` line says where
 * the repository is.
 */
export async function gitIgnoreAbove(root: string): Promise<IgnoreFile[] | undefined> {
  let top: string | undefined;
  let gitDir: string | undefined;
  for (let dir = root; ; dir = dirname(dir)) {
    const dotGit = join(dir, ".git");
    const s = await stat(dotGit).catch(() => undefined);
    if (s?.isDirectory()) {
      top = dir;
      gitDir = dotGit;
      break;
    }
    if (s?.isFile()) {
      top = dir;
      const text = await readFile(dotGit, "utf8").catch(() => "");
      const m = /^gitdir:\s*(.+)$/m.exec(text);
      if (m) gitDir = join(dir, m[1]!.trim());
      break;
    }
    if (dirname(dir) === dir) return undefined;
  }
  const files: IgnoreFile[] = [];
  const rootFrom = (dir: string) => relative(dir, root).split(sep).join("/");
  if (gitDir) {
    const exclude = await readFile(join(gitDir, "info", "exclude"), "utf8").catch(() => undefined);
    if (exclude !== undefined) files.push({ dir: "", above: rootFrom(top), text: exclude });
  }
  const chain: string[] = [];
  for (let dir = root; dir !== top; dir = dirname(dir)) chain.unshift(dirname(dir));
  for (const dir of chain) {
    const text = await readFile(join(dir, ".gitignore"), "utf8").catch(() => undefined);
    if (text !== undefined) files.push({ dir: "", above: rootFrom(dir), text });
  }
  return files;
}
