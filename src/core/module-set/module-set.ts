import picomatch from "picomatch";
import { GitIgnore, type IgnoreFile } from "./git-ignore.js";

/**
 * Rule 1 of docs/DESIGN.md section 4: which files under the root make the module set of script and
 * package modes. Pure: the caller lists directories on demand (`pending`) and calls again until
 * nothing is pending, because which namespace directories go depends on what the shipped modules
 * import, and big directories that nothing needs are never listed at all.
 */

export interface TreeEntry {
  name: string;
  type: "file" | "dir" | "other";
  size: number;
  /** Permission bits. */
  mode: number;
  mtimeMs: number;
  /** Set when the entry is a symbolic link: where it leads, and whether that is outside the root. */
  link?: { target: string; outsideRoot: boolean };
  /** Why the entry could not be read (broken link, loop, permission). */
  error?: string;
  /** The content of a `.gitignore` file, read with the listing (rule 1 honours it in a git work tree). */
  text?: string;
}

/** Listings of directories by path relative to the root ("" is the root itself, "a/b" below it). */
export type TreeSnapshot = ReadonlyMap<string, readonly TreeEntry[]>;

export interface ModuleSetInput {
  tree: TreeSnapshot;
  /** Every module name the set imports, with each of its dotted prefixes (`a`, `a.b`, `a.b.c`). */
  imported: ReadonlySet<string>;
  include: readonly string[];
  exclude: readonly string[];
  /**
   * Set when the root is inside a git work tree: the ignore files above the root (outermost
   * first). The `.gitignore` files inside the root come with the listings.
   */
  gitIgnoreAbove?: readonly IgnoreFile[];
}

export interface SelectedFile {
  path: string;
  size: number;
  mode: number;
  mtimeMs: number;
  /** Present when the file is reached through a symbolic link. */
  link?: { target: string; outsideRoot: boolean };
}

export interface ModuleSetSelection {
  files: SelectedFile[];
  /** Directories that must be listed before the selection is complete. */
  pending: string[];
  /** Things a user should know about: links that are not followed, unreadable files. */
  notes: string[];
}

/**
 * Files at a root that are never shipped: importing them on a worker would run them (`import
 * setup` runs `setup()`), and they are tooling, not the workflow. A root's own `__init__.py` makes
 * no package of an import-path entry (rule 2), so it is nothing a worker could import either.
 */
const ROOT_NEVER_SHIPPED = new Set(["setup.py", "conftest.py", "noxfile.py", "__init__.py"]);

/** A file is a Python module of the set; anything else shipped is data (templates, schemas, YAML). */
export function isModulePath(path: string): boolean {
  return path.endsWith(".py");
}

/** Names never shipped whatever the rules or globs say. */
export function isNeverShippedName(name: string): boolean {
  return (
    name.startsWith(".") ||
    name === "__pycache__" ||
    name === "node_modules" ||
    name === "site-packages" ||
    name.endsWith(".pyc") ||
    name.endsWith(".pyo")
  );
}

export function isVirtualenvListing(entries: readonly TreeEntry[]): boolean {
  return entries.some((e) => e.name === "pyvenv.cfg" && e.type === "file");
}

export function isRegularPackageListing(entries: readonly TreeEntry[]): boolean {
  return entries.some((e) => e.name === "__init__.py" && e.type === "file");
}

const IDENTIFIER = /^[\p{L}_][\p{L}\p{N}_]*$/u;

/** A `.py` file that Python can import by name (`my-notes.py` cannot be). */
export function isImportableModuleFile(name: string): boolean {
  return name.endsWith(".py") && IDENTIFIER.test(name.slice(0, -3));
}

function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

function dottedName(dir: string): string {
  return dir.split("/").join(".");
}

interface Matchers {
  include: ((path: string) => boolean) | undefined;
  exclude: ((path: string) => boolean) | undefined;
  includeBases: string[];
}

function compileMatchers(include: readonly string[], exclude: readonly string[]): Matchers {
  const options = { dot: false };
  return {
    include: include.length > 0 ? picomatch([...include], options) : undefined,
    exclude: exclude.length > 0 ? picomatch([...exclude], options) : undefined,
    includeBases: include.map((glob) => picomatch.scan(glob).base.replace(/\/+$/, "")),
  };
}

/** A path is excluded when it or any directory above it matches an exclude glob. */
function isExcluded(path: string, m: Matchers): boolean {
  if (!m.exclude) return false;
  if (m.exclude(path)) return true;
  let slash = path.lastIndexOf("/");
  while (slash > 0) {
    const parent = path.slice(0, slash);
    if (m.exclude(parent) || m.exclude(`${parent}/`)) return true;
    slash = parent.lastIndexOf("/");
  }
  return false;
}

/** Could an include glob match something below this directory? Decides whether to list it. */
function includeMayReach(dir: string, m: Matchers): boolean {
  return m.includeBases.some(
    (base) => base === "" || base === dir || base.startsWith(`${dir}/`) || dir.startsWith(`${base}/`),
  );
}

/**
 * Why a directory is visited. Inside a regular package every regular file goes, data included,
 * and so does every directory below it (`templates/`, `schemas/` need no `__init__.py`), as
 * `pip install .` with package data and Toil's own auto-deployment ship them.
 */
type DirRole = "package" | "namespace" | "include-only";

export function selectModuleSet(input: ModuleSetInput): ModuleSetSelection {
  const m = compileMatchers(input.include, input.exclude);
  const files = new Map<string, SelectedFile>();
  const pending: string[] = [];
  const notes: string[] = [];
  const gitIgnore = input.gitIgnoreAbove ? new GitIgnore(input.gitIgnoreAbove) : undefined;

  const addFile = (path: string, e: TreeEntry): void => {
    if (e.error) {
      notes.push(`${path}: skipped, ${e.error}`);
      return;
    }
    if (e.type !== "file") {
      notes.push(`${path}: skipped, not a regular file`);
      return;
    }
    if (e.link?.outsideRoot)
      notes.push(`${path}: a link to ${e.link.target}, outside the root; its content is shipped`);
    const file: SelectedFile = { path, size: e.size, mode: e.mode, mtimeMs: e.mtimeMs };
    if (e.link) file.link = e.link;
    files.set(path, file);
  };

  // `role` says why we are in this directory; it decides which of its files go.
  const visit = (dir: string, role: DirRole | "root"): void => {
    const entries = input.tree.get(dir);
    if (!entries) {
      pending.push(dir);
      return;
    }
    const ignoreFile = gitIgnore && entries.find((e) => e.name === ".gitignore" && e.text !== undefined);
    if (ignoreFile) gitIgnore!.add({ dir, text: ignoreFile.text! });
    for (const e of entries) {
      if (isNeverShippedName(e.name)) continue;
      const path = join(dir, e.name);
      if (isExcluded(path, m)) continue;
      if (role === "root" && ROOT_NEVER_SHIPPED.has(e.name)) continue;
      // An include glob names what the user wants shipped: it wins over .gitignore.
      const ignored = gitIgnore?.ignores(path, e.type === "dir") === true;
      if (e.type === "dir") {
        if (!ignored) visitSubdirectory(path, e, role);
        else if (includeMayReach(path, m)) visitSubdirectory(path, e, "include-only");
        continue;
      }
      const byRule = !ignored && (role === "package" || (role !== "include-only" && isModulePath(e.name)));
      if (byRule || m.include?.(path)) addFile(path, e);
    }
  };

  const visitSubdirectory = (path: string, e: TreeEntry, parentRole: DirRole | "root"): void => {
    if (e.link) {
      // Following directory links could escape into a foreign tree or loop; say so once.
      if (input.imported.has(dottedName(path)) || includeMayReach(path, m)) {
        notes.push(`${path}: a link to the directory ${e.link.target}; directory links are not followed`);
      }
      return;
    }
    if (e.error) return;
    const listing = input.tree.get(path);
    const name = path.slice(path.lastIndexOf("/") + 1);
    const pythonic = parentRole !== "include-only" && IDENTIFIER.test(name);
    const imported = pythonic && input.imported.has(dottedName(path));
    const reachable = includeMayReach(path, m);
    if (!listing) {
      // Only list what may matter: a directory that may be a package, an imported one, package
      // data, or an include target.
      if (pythonic || reachable || parentRole === "package") pending.push(path);
      return;
    }
    if (isVirtualenvListing(listing)) return;
    if (parentRole === "package") visit(path, "package");
    else if (pythonic && isRegularPackageListing(listing)) visit(path, "package");
    else if (imported) visit(path, "namespace");
    else if (reachable) visit(path, "include-only");
  };

  visit("", "root");
  const sorted = [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files: sorted, pending, notes };
}

/** Top-level importable names of a selection: root `.py` modules and root directories. */
export function topLevelNamesOf(files: readonly { path: string }[]): Set<string> {
  const names = new Set<string>();
  for (const f of files) {
    const slash = f.path.indexOf("/");
    if (slash === -1) {
      if (isImportableModuleFile(f.path)) names.add(f.path.slice(0, -3));
    } else {
      const first = f.path.slice(0, slash);
      if (IDENTIFIER.test(first)) names.add(first);
    }
  }
  return names;
}
