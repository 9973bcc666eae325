import type { Dirent } from "node:fs";
import { lstat, readdir, readFile, realpath, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { TreeEntry } from "../core/module-set/module-set.js";

/** A `.gitignore` larger than this is not a list of patterns someone maintains; it is left unread. */
const MAX_GITIGNORE_BYTES = 1024 * 1024;

const NOT_UTF8 = "its name is not valid UTF-8 (rename the file to ship it)";

function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ELOOP":
      return "a symbolic link loop";
    case "ENOENT":
      return "a broken symbolic link or a file removed while reading";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    default:
      return (error as Error).message;
  }
}

function isInside(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

async function entryFacts(root: string, dir: string, d: Dirent): Promise<TreeEntry> {
  const path = join(dir, d.name);
  // readdir decodes names as UTF-8, replacing invalid bytes with U+FFFD: such a name no longer
  // leads to the file, and could not be written into the manifest anyway.
  if (d.name.includes("\uFFFD")) {
    try {
      await lstat(path);
    } catch {
      return { name: d.name, type: "other", size: 0, mode: 0, mtimeMs: 0, error: NOT_UTF8 };
    }
  }
  try {
    if (d.isSymbolicLink()) {
      const target = await realpath(path);
      const s = await stat(target);
      return {
        name: d.name,
        type: s.isFile() ? "file" : s.isDirectory() ? "dir" : "other",
        size: s.size,
        mode: s.mode & 0o7777,
        mtimeMs: s.mtimeMs,
        link: { target, outsideRoot: !isInside(target, root) },
      };
    }
    const type = d.isFile() ? "file" : d.isDirectory() ? "dir" : "other";
    if (type !== "file") return { name: d.name, type, size: 0, mode: 0, mtimeMs: 0 };
    const s = await lstat(path);
    const entry: TreeEntry = { name: d.name, type, size: s.size, mode: s.mode & 0o7777, mtimeMs: s.mtimeMs };
    // Read with the listing: which of its siblings ship depends on it (rule 1, in a git work tree).
    if (d.name === ".gitignore" && s.size <= MAX_GITIGNORE_BYTES) entry.text = await readFile(path, "utf8");
    return entry;
  } catch (error) {
    return { name: d.name, type: "other", size: 0, mode: 0, mtimeMs: 0, error: describeError(error) };
  }
}

/** Lists one directory of the project; `root` must be a real (symlink-free) absolute path. */
export async function listDirectory(root: string, relDir: string): Promise<TreeEntry[]> {
  const dir = relDir === "" ? root : join(root, ...relDir.split("/"));
  const dirents = await readdir(dir, { withFileTypes: true });
  return Promise.all(dirents.map((d) => entryFacts(root, dir, d)));
}

export function relativePosix(root: string, path: string): string {
  return relative(root, path).split(sep).join("/");
}
