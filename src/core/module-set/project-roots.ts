import { type LocatedModule, locateTopLevel } from "../python/import-classification.js";
import type { InterpreterFacts, PathEntry } from "../python/interpreter-facts.js";

/**
 * Rule 1 of docs/DESIGN.md section 4, several roots: project code found on another import-path entry
 * (a second PYTHONPATH directory such as a git submodule's `src/`) is part of the project and
 * ships as a root of its own. An entry counts as project code when it is a PYTHONPATH directory
 * that is neither the standard library nor a site-packages, and belongs to no installed
 * distribution (no `.dist-info` in it, not the source tree of an editable install).
 */

const SITE_DIR_NAMES = new Set(["site-packages", "dist-packages"]);

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function within(dir: string, parent: string): boolean {
  return dir === parent || dir.startsWith(`${parent}/`);
}

export function isProjectPathEntry(entry: PathEntry, facts: InterpreterFacts): boolean {
  if (entry.kind !== "pythonpath" || entry.distInfo) return false;
  if (SITE_DIR_NAMES.has(baseName(entry.path))) return false;
  const sites = [facts.venvSite, facts.userSite, ...facts.systemSites].filter((s): s is string => !!s);
  if (sites.includes(entry.path)) return false;
  if (facts.path.some((e) => e.kind === "stdlib" && e.path === entry.path)) return false;
  return !facts.installs.some((install) => install.paths.some((p) => within(entry.path, p)));
}

/**
 * The import-path entry a top-level name the set imports but lacks comes from, when that entry is
 * project code that should become a root; undefined when the name is found elsewhere (or nowhere).
 */
export function projectRootProviding(name: string, facts: InterpreterFacts): LocatedModule | undefined {
  const located = locateTopLevel(name, facts);
  return located && isProjectPathEntry(located.entry, facts) ? located : undefined;
}

/**
 * Orders roots as the leader's sys.path does; a root that is not on it (the script's directory,
 * which Python puts first) goes first.
 */
export function sortRootsByPath(roots: readonly string[], facts: InterpreterFacts): string[] {
  const position = (root: string) => facts.path.findIndex((e) => e.path === root);
  return [...roots].sort((a, b) => position(a) - position(b));
}
