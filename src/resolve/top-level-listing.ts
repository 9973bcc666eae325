import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import type { InterpreterFacts, PathEntry, TopLevelKind } from "../core/python/interpreter-facts.js";

/**
 * Re-lists the project's own sys.path entries (the start directory and PYTHONPATH), the way
 * probe.py does, so watch mode sees a new top-level package without starting python again.
 */

const SOURCE = /^([A-Za-z_][A-Za-z0-9_]*)\.(py|pyw)$/;
const EXTENSION = /^([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z0-9_-]+)*\.(so|pyd)$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export async function listTopLevel(dir: string): Promise<Record<string, TopLevelKind> | null> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return null;
  }
  const names: Record<string, TopLevelKind> = {};
  for (const e of entries) {
    let isDir = e.isDirectory();
    if (e.isSymbolicLink())
      isDir = await stat(join(dir, e.name)).then(
        (s) => s.isDirectory(),
        () => false,
      );
    if (isDir) {
      if (!IDENTIFIER.test(e.name)) continue;
      const hasInit = await stat(join(dir, e.name, "__init__.py")).then(
        (s) => s.isFile(),
        () => false,
      );
      if (hasInit) names[e.name] = "package";
      else names[e.name] ??= "namespace";
      continue;
    }
    const source = SOURCE.exec(e.name);
    if (source) {
      if (names[source[1]!] !== "package") names[source[1]!] = "module";
      continue;
    }
    const extension = EXTENSION.exec(e.name);
    if (extension && names[extension[1]!] !== "package") names[extension[1]!] = "extension";
  }
  return names;
}

/** `stale` picks the project entries to list again (default: all of them). */
export async function refreshProjectEntries(
  facts: InterpreterFacts,
  stale: (entry: PathEntry) => boolean = () => true,
): Promise<InterpreterFacts> {
  const path: PathEntry[] = await Promise.all(
    facts.path.map(async (entry) =>
      (entry.kind === "start" || entry.kind === "pythonpath") && stale(entry)
        ? { ...entry, names: await listTopLevel(entry.path) }
        : entry,
    ),
  );
  return { ...facts, path };
}
