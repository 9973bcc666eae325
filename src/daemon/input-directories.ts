import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { importDirReadsInside, type ResolutionInput } from "../core/python/resolution-inputs.js";

/**
 * The directories to watch so that every change to an input of a resolution is reported: the
 * nearest existing directory above each input (it reports the input appearing, going, or changing
 * when it is a file), and the directories whose contents the resolution read below it.
 */

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function subdirectories(dir: string): Promise<Dirent[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const dirs: Dirent[] = [];
  for (const e of entries) {
    // A link to a directory is followed by the interpreter and by fs.watch alike.
    if (e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(join(dir, e.name))))) dirs.push(e);
  }
  return dirs;
}

/** The nearest directory above `path` that exists. */
async function existingAbove(path: string): Promise<string> {
  let dir = dirname(path);
  while (dir !== dirname(dir) && !(await isDirectory(dir))) dir = dirname(dir);
  return dir;
}

/** Every directory below `dir` but bytecode caches, `dir` itself included; undefined past `limit`. */
async function allBelow(dir: string, limit: number): Promise<string[] | undefined> {
  const found = [dir];
  for (let i = 0; i < found.length; i++) {
    for (const e of await subdirectories(found[i]!))
      if (e.name !== "__pycache__") found.push(join(found[i]!, e.name));
    if (found.length > limit) return undefined;
  }
  return found;
}

/** Watches enough for one package: a larger one would take much of the kernel's allowance of watches. */
export const MAX_SCAN_DIRECTORIES = 5_000;

export interface CoveringDirectories {
  dirs: string[];
  /** Why the input cannot be covered by watches, when it cannot. */
  uncovered?: string;
}

export async function directoriesFor(input: ResolutionInput): Promise<CoveringDirectories> {
  const dirs = [await existingAbove(input.path)];
  if (input.kind === "file" || !(await isDirectory(input.path))) return { dirs };
  switch (input.kind) {
    case "tree":
      // Its directories are watched as they are listed.
      dirs.push(input.path);
      break;
    case "import-dir":
      dirs.push(input.path);
      for (const e of await subdirectories(input.path)) {
        if (!importDirReadsInside(e.name)) continue;
        dirs.push(join(input.path, e.name));
        if (e.name.endsWith(".egg")) dirs.push(join(input.path, e.name, "EGG-INFO"));
      }
      break;
    case "scan": {
      const below = await allBelow(input.path, MAX_SCAN_DIRECTORIES);
      if (!below)
        return {
          dirs,
          uncovered: `${input.path} has more than ${MAX_SCAN_DIRECTORIES} directories to watch for compiled files`,
        };
      dirs.push(...below);
      break;
    }
  }
  return { dirs };
}
