import { readdirSync, statSync } from "node:fs";
import { access, realpath, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { ResolutionError } from "../core/errors.js";
import {
  editableInstallProblem,
  moduleEntryPlace,
  scriptShadowedProblem,
} from "../core/module-set/entry-location.js";
import {
  type Entry,
  isValidModuleName,
  refusedRootReason,
  scriptNameProblem,
} from "../core/module-set/entry-rules.js";
import {
  editableInstallOf,
  type NativeDistribution,
  selectInstalledSet,
} from "../core/module-set/installed-set.js";
import {
  isNeverShippedName,
  type SelectedFile,
  selectModuleSet,
  type TreeEntry,
  topLevelNamesOf,
} from "../core/module-set/module-set.js";
import { projectRootProviding, sortRootsByPath } from "../core/module-set/project-roots.js";
import type { ResolutionMode } from "../core/module-set/resolution-mode.js";
import {
  importWarnings,
  largeFileWarnings,
  rootInitWarning,
} from "../core/module-set/resolution-warnings.js";
import {
  classifyImports,
  distributionFor,
  type ImportSite,
  isStandardLibrary,
  type LocatedModule,
  locateTopLevel,
  type NotShippedImport,
  type OptionalImport,
  type ThirdPartyModule,
  type UnresolvedImport,
} from "../core/python/import-classification.js";
import { absoluteImports, addWithPrefixes, topLevelOf } from "../core/python/import-graph.js";
import type { InterpreterFacts } from "../core/python/interpreter-facts.js";
import { interpreterOf } from "../core/python/path-environment.js";
import type { ManifestFile } from "../core/release/manifest.js";
import { type ResolvedFile, releaseFilesOf } from "../core/release/release-layout.js";
import { CompileChecker } from "./compile-check.js";
import {
  type DigestCache,
  digestFiles,
  type FileDigest,
  MAX_FILE_BYTES,
  tooLargeError,
} from "./file-digest.js";
import { gitIgnoreAbove } from "./git-work-tree.js";
import type { ListingCache } from "./listing-cache.js";
import { probeInterpreter } from "./probe.js";
import { listDirectory } from "./tree-lister.js";

export type { ResolutionMode };

export interface Resolution {
  mode: ResolutionMode;
  /** The module the workers import: `workflow.main`, or the script's stem. */
  module: string;
  /** The root the entry module is found in. */
  root: string;
  /**
   * Every root of the set in the leader's sys.path order: `root`, and project code found on
   * other import-path entries (rule 1). One root in most projects.
   */
  roots: string[];
  python: { executable: string; version: string };
  /** Toil's version as the leader's interpreter sees it (null when Toil is not installed there). */
  toilVersion: string | null;
  /** Paths relative to their own root (`root` indexes `roots`), sorted by root then path. */
  files: ResolvedFile[];
  /** The same files as the worker's release holds them (see release-layout.ts): what is pushed. */
  release: ManifestFile[];
  thirdParty: ThirdPartyModule[];
  native: NativeDistribution[];
  unresolved: UnresolvedImport[];
  /** Imports guarded by `except ImportError`: never a failure. */
  optional: OptionalImport[];
  /** Imports the leader finds only in the start directory, which is not shipped. */
  notShipped: NotShippedImport[];
  /** Modules that do not compile with the leader's interpreter: push refuses them, watch holds them. */
  syntaxErrors: SyntaxProblem[];
  warnings: string[];
}

export interface SyntaxProblem {
  /** Relative to the root (absolute when the set has several roots). */
  file: string;
  line: number;
  message: string;
}

export interface ResolveOptions {
  entry: Entry;
  /** The directory python is started from (--root, project.root, else the current directory). */
  startDir: string;
  /** The leader's interpreter; default $VIRTUAL_ENV/bin/python, then python3. */
  python?: string;
  include?: readonly string[];
  exclude?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** The environment the interpreter is started with; default: this process's (the daemon's is the client's). */
  interpreterEnv?: NodeJS.ProcessEnv;
  /** Kept across runs by watch mode so unchanged files are not read again. */
  cache?: DigestCache;
  /** Kept across runs by watch mode so unchanged directories are not listed again. */
  listings?: ListingCache;
  /** Facts from an earlier probe of the same interpreter (watch mode probes once). */
  facts?: InterpreterFacts;
  /** Kept by watch mode: compiles changed modules without starting python each time. */
  compiler?: CompileChecker;
}

export function defaultPython(env: NodeJS.ProcessEnv): string {
  return interpreterOf(undefined, env);
}

function pythonPathOf(env: NodeJS.ProcessEnv): string[] {
  return (env.PYTHONPATH ?? "").split(":").filter((p) => p !== "");
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Gathers facts about the interpreter, once; watch mode passes them back in. */
export async function probeFor(
  options: Pick<ResolveOptions, "python" | "startDir" | "env" | "interpreterEnv">,
): Promise<InterpreterFacts> {
  const env = options.env ?? process.env;
  return probeInterpreter(
    options.python ?? defaultPython(env),
    options.startDir,
    pythonPathOf(env),
    options.interpreterEnv,
  );
}

export async function resolveProject(options: ResolveOptions): Promise<Resolution> {
  const env = options.env ?? process.env;
  const facts = options.facts ?? (await probeFor(options));
  const home = env.HOME ?? homedir();
  const { mode, root, module } =
    options.entry.kind === "script"
      ? await locateScript(resolvePath(options.startDir, options.entry.path), facts)
      : await locateModule(options.entry.name, facts);
  const refused = refusedRootReason(root, home);
  if (refused) throw new ResolutionError(refused);

  const warnings: string[] = [];
  const digests = new Map<string, FileDigest>();
  const { roots, files, installedNative } = await selectSet(
    { mode, root, module },
    facts,
    home,
    options,
    digests,
    warnings,
  );
  warnings.push(...largeFileWarnings(files, roots));

  const inSet = new Set<string>();
  for (const [i, r] of roots.entries()) {
    const names = topLevelNamesOf(files.filter((f) => f.root === i));
    if (mode !== "installed") checkShadowing(names, module, mode, r, roots, facts, warnings);
    for (const n of names) inSet.add(n);
  }
  const sites = importSites(files, roots, digests);
  const nativeScan = new Map<string, boolean>();
  const classified = classifyImports({
    sites,
    inSet,
    facts,
    hasCompiledCode: (name, located) => hasCompiledCode(name, located, nativeScan),
    startDirOnPath: mode === "package" && !roots.includes(facts.startDir),
  });
  const native = [...installedNative, ...nativeFromThirdParty(classified.thirdParty)];
  const syntaxErrors =
    mode === "installed" ? [] : await compileModules(files, roots, digests, facts, options.compiler);
  warnings.push(
    ...importWarnings(
      { native, unresolved: classified.unresolved, syntaxErrors, notShipped: classified.notShipped },
      facts.version,
    ),
  );
  return {
    mode,
    module,
    root,
    roots,
    python: { executable: facts.executable, version: facts.version },
    toilVersion: facts.distributions.find((d) => d.name?.toLowerCase() === "toil")?.version ?? null,
    files,
    release: releaseFilesOf(files, roots.length),
    thirdParty: classified.thirdParty,
    native,
    unresolved: classified.unresolved,
    optional: classified.optional,
    notShipped: classified.notShipped,
    syntaxErrors,
    warnings,
  };
}

interface EntryPlace {
  mode: ResolutionMode;
  root: string;
  module: string;
}

/** A script entry: its directory is the root, its stem the module, unless a rule refuses it. */
async function locateScript(scriptPath: string, facts: InterpreterFacts): Promise<EntryPlace> {
  if (!(await isFile(scriptPath))) {
    throw new ResolutionError(`The script ${scriptPath} does not exist or is not a file.`);
  }
  const real = await realpath(scriptPath);
  const problem = scriptNameProblem(basename(real), new Set(facts.stdlibNames));
  if (problem) throw new ResolutionError(problem);
  const root = dirname(real);
  const module = basename(real).slice(0, -3);
  const shadowed = scriptShadowedProblem(basename(real), module, root, locateTopLevel(module, facts));
  if (shadowed) throw new ResolutionError(shadowed);
  if (await exists(join(root, "__init__.py"))) {
    throw new ResolutionError(await packageScriptAdvice(root, module));
  }
  return { mode: "script", root, module };
}

/** A `-m NAME` entry: where the interpreter finds its top-level name decides the mode and root. */
async function locateModule(name: string, facts: InterpreterFacts): Promise<EntryPlace> {
  if (!isValidModuleName(name)) {
    throw new ResolutionError(
      `\`${name}\` is not a valid Python module name (expected something like workflow.main).`,
    );
  }
  const top = topLevelOf(name);
  const located = locateTopLevel(top, facts, false);
  const editable = editableInstallOf(top, located?.entry.path, facts);
  if (editable) throw new ResolutionError(editableInstallProblem(top, editable));
  const place = moduleEntryPlace(top, name, located, facts.path);
  if ("problem" in place) throw new ResolutionError(place.problem);
  await checkModulePath(place.root, name);
  return { ...place, module: name };
}

/**
 * The files of the set and the roots they come from: what is installed in the venv for the
 * installed mode, else the rules of section 4 over the root (and the other project roots found).
 */
async function selectSet(
  entry: EntryPlace,
  facts: InterpreterFacts,
  home: string,
  options: ResolveOptions,
  digests: Map<string, FileDigest>,
  warnings: string[],
): Promise<{ roots: string[]; files: ResolvedFile[]; installedNative: NativeDistribution[] }> {
  const { mode, root, module } = entry;
  if (mode === "installed") {
    const picked = await selectInstalled(root, facts, warnings);
    const files = (await digestSelection(root, picked.files, digests, options.cache)).map((f) => ({
      ...f,
      root: 0,
    }));
    return { roots: [root], files, installedNative: picked.native };
  }
  const selected = await selectByRules(root, module, facts, home, options, digests, warnings);
  for (const r of selected.roots) {
    if ((mode === "package" || r !== root) && (await exists(join(r, "__init__.py"))))
      warnings.push(rootInitWarning(r));
  }
  return { roots: selected.roots, files: selected.files, installedNative: [] };
}

/**
 * Compiles the modules not yet compiled with this interpreter (the verdict is kept with each
 * file's digest, so an unchanged file is compiled once) and returns the ones that fail.
 */
async function compileModules(
  files: readonly ResolvedFile[],
  roots: readonly string[],
  digests: ReadonlyMap<string, FileDigest>,
  facts: InterpreterFacts,
  kept: CompileChecker | undefined,
): Promise<SyntaxProblem[]> {
  const display = (f: ResolvedFile) => (roots.length > 1 ? join(roots[f.root]!, f.path) : f.path);
  const modules = files
    .filter((f) => f.path.endsWith(".py"))
    .map((f) => ({ file: f, abs: join(roots[f.root]!, f.path) }));
  const unknown = modules.filter((m) => digests.get(m.abs)?.compiled?.python !== facts.version);
  if (unknown.length > 0) {
    const checker = kept ?? new CompileChecker(facts.executable);
    try {
      const failed = new Map((await checker.check(unknown.map((m) => m.abs))).map((e) => [e.path, e]));
      for (const m of unknown) {
        const digest = digests.get(m.abs);
        const e = failed.get(m.abs);
        if (digest)
          digest.compiled = { python: facts.version, error: e ? { line: e.line, message: e.message } : null };
      }
    } finally {
      if (!kept) checker.close();
    }
  }
  const problems: SyntaxProblem[] = [];
  for (const m of modules) {
    const error = digests.get(m.abs)?.compiled?.error;
    if (error) problems.push({ file: display(m.file), ...error });
  }
  return problems;
}

/** Script in a package directory: suggest the -m invocation from the top package's parent. */
async function packageScriptAdvice(dir: string, stem: string): Promise<string> {
  const parts = [stem];
  let top = dir;
  while (await exists(join(top, "__init__.py"))) {
    parts.unshift(basename(top));
    const parent = dirname(top);
    if (parent === top) break;
    top = parent;
  }
  return (
    `The script's directory ${dir} is a package (it has an __init__.py), so the script cannot be shipped as a sibling-files workflow. ` +
    `Run it as a module instead: PYTHONPATH=${top} python3 -m ${parts.join(".")}`
  );
}

/** Checks that every component of `a.b.c` exists under the root the way `python -m` needs it. */
async function checkModulePath(root: string, name: string): Promise<void> {
  const parts = name.split(".");
  let dir = root;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const sofar = parts.slice(0, i + 1).join(".");
    const last = i === parts.length - 1;
    const asDir = join(dir, part);
    if (last) {
      if (await isFile(`${asDir}.py`)) return;
      if (await isDirectory(asDir)) {
        if (await isFile(join(asDir, "__main__.py"))) return;
        throw new ResolutionError(
          `\`${sofar}\` is a package without a __main__.py, so \`python -m ${name}\` cannot run it. Name the module to run (for example ${name}.main) or add ${join(asDir, "__main__.py")}.`,
        );
      }
      throw new ResolutionError(`No module named \`${sofar}\`: neither ${asDir}.py nor ${asDir}/ exists.`);
    }
    if (!(await isDirectory(asDir))) {
      const asFile = await isFile(`${asDir}.py`);
      throw new ResolutionError(
        asFile
          ? `\`${sofar}\` is a module (${asDir}.py), not a package, so \`${name}\` cannot be imported from it.`
          : `No package named \`${sofar}\`: ${asDir}/ does not exist.`,
      );
    }
    dir = asDir;
  }
}

/** One root of the set while it is being selected: its listings so far and its ignore files. */
interface RootWalk {
  path: string;
  tree: Map<string, readonly TreeEntry[]>;
  gitIgnoreAbove: Awaited<ReturnType<typeof gitIgnoreAbove>>;
  files: SelectedFile[];
}

/**
 * Script and package modes: list directories on demand until the selection is complete. The
 * imports of what is selected decide which namespace directories go, and which other
 * import-path entries hold project code and become roots: both are followed to a fixed point.
 */
async function selectByRules(
  mainRoot: string,
  module: string,
  facts: InterpreterFacts,
  home: string,
  options: ResolveOptions,
  digests: Map<string, FileDigest>,
  warnings: string[],
): Promise<{ roots: string[]; files: ResolvedFile[] }> {
  const walks: RootWalk[] = [];
  const addRoot = async (path: string) => {
    walks.push({ path, tree: new Map(), gitIgnoreAbove: await gitIgnoreAbove(path), files: [] });
  };
  await addRoot(mainRoot);
  const imported = new Set<string>();
  addWithPrefixes(module, imported);
  for (let round = 0; ; round++) {
    const notes: string[] = [];
    for (const walk of walks) {
      const selection = await selectRoot(walk, imported, options, warnings);
      walk.files = selection.files;
      notes.push(...selection.notes);
      await digestSelection(walk.path, selection.files, digests, options.cache);
    }
    const before = imported.size;
    const inSet = new Set<string>();
    for (const walk of walks) for (const n of topLevelNamesOf(walk.files)) inSet.add(n);
    const newRoots = new Set<string>();
    for (const walk of walks) {
      for (const f of walk.files) {
        const imports = digests.get(join(walk.path, f.path))?.imports;
        if (!imports) continue;
        for (const imp of absoluteImports(f.path, imports)) {
          addWithPrefixes(imp.module, imported);
          for (const c of imp.candidates) addWithPrefixes(c, imported);
          const top = topLevelOf(imp.module);
          if (imp.relative || inSet.has(top)) continue;
          const provider = projectRootProviding(top, facts);
          if (provider && !walks.some((w) => w.path === provider.entry.path))
            newRoots.add(provider.entry.path);
        }
      }
    }
    for (const path of newRoots) {
      const refused = refusedRootReason(path, home);
      if (refused)
        throw new ResolutionError(`${path} is on PYTHONPATH and holds the project's code: ${refused}`);
      await addRoot(path);
    }
    if ((imported.size === before && newRoots.size === 0) || round > 1000) {
      warnings.push(...notes);
      const roots = sortRootsByPath(
        walks.map((w) => w.path),
        facts,
      );
      const files: ResolvedFile[] = [];
      for (const [index, root] of roots.entries()) {
        const walk = walks.find((w) => w.path === root)!;
        for (const f of await digestSelection(root, walk.files, digests, options.cache))
          files.push({ ...f, root: index });
      }
      return { roots, files };
    }
  }
}

/** Selects one root's files, listing the directories the rules ask for until none is pending. */
async function selectRoot(
  walk: RootWalk,
  imported: ReadonlySet<string>,
  options: ResolveOptions,
  warnings: string[],
): Promise<{ files: SelectedFile[]; notes: string[] }> {
  const root = walk.path;
  for (;;) {
    const selection = selectModuleSet({
      tree: walk.tree,
      imported,
      include: options.include ?? [],
      exclude: options.exclude ?? [],
      ...(walk.gitIgnoreAbove ? { gitIgnoreAbove: walk.gitIgnoreAbove } : {}),
    });
    if (selection.pending.length === 0) return selection;
    await Promise.all(
      selection.pending.map(async (dir) => {
        // Keyed by absolute directory: watch invalidates by the absolute paths it sees change.
        const key = dir === "" ? root : join(root, dir);
        try {
          const known = options.listings?.get(key);
          const entries = known ?? (await listDirectory(root, dir));
          if (!known) options.listings?.set(key, entries);
          walk.tree.set(dir, entries);
        } catch (error) {
          if (dir === "")
            throw new ResolutionError(`Cannot read the project root ${root}: ${(error as Error).message}`);
          warnings.push(`${dir}/: skipped, ${(error as Error).message}`);
          walk.tree.set(dir, []);
        }
      }),
    );
  }
}

/** Hashes the files not yet hashed and returns the manifest entries, sorted by path. */
async function digestSelection(
  root: string,
  files: readonly SelectedFile[],
  digests: Map<string, FileDigest>,
  cache: DigestCache | undefined,
): Promise<ManifestFile[]> {
  const missing = files.filter((f) => !digests.has(join(root, f.path)));
  const tooLarge = missing.find((f) => f.size > MAX_FILE_BYTES);
  if (tooLarge) throw tooLargeError(tooLarge.path, tooLarge.size);
  const computed = await digestFiles(
    missing.map((f) => ({ absPath: join(root, f.path), size: f.size, mtimeMs: f.mtimeMs })),
    cache,
  ).catch((error: NodeJS.ErrnoException) => {
    if (error instanceof ResolutionError) throw error;
    throw new ResolutionError(`Cannot read ${error.path ?? "a file of the project"}: ${error.message}`);
  });
  for (const [i, f] of missing.entries()) digests.set(join(root, f.path), computed[i]!);
  return files.map((f) => {
    const d = digests.get(join(root, f.path))!;
    return { path: f.path, size: d.size, mode: f.mode & 0o111 ? 0o755 : 0o644, sha256: d.sha256 };
  });
}

async function selectInstalled(
  siteDir: string,
  facts: InterpreterFacts,
  warnings: string[],
): Promise<{ files: SelectedFile[]; native: NativeDistribution[] }> {
  const picked = selectInstalledSet(facts);
  warnings.push(...picked.warnings);
  const paths = new Set<string>(picked.distFiles);
  for (const m of picked.orphanModules) paths.add(`${m}.py`);
  for (const pkg of picked.orphanPackages) {
    for (const p of walkAllFiles(siteDir, pkg)) paths.add(p);
  }
  const files: SelectedFile[] = [];
  for (const path of [...paths].sort()) {
    try {
      const s = statSync(join(siteDir, path));
      if (!s.isFile()) continue;
      files.push({ path, size: s.size, mode: s.mode & 0o7777, mtimeMs: s.mtimeMs });
    } catch {
      warnings.push(`${join(siteDir, path)} is listed by its distribution but missing; it is not shipped.`);
    }
  }
  return { files, native: picked.native };
}

/** Every shippable file below a directory of site-packages (hand-copied packages go whole, as `cp -R` did). */
function walkAllFiles(base: string, rel: string): string[] {
  const out: string[] = [];
  const stack = [rel];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    for (const d of readdirSync(join(base, dir), { withFileTypes: true })) {
      if (isNeverShippedName(d.name)) continue;
      const path = `${dir}/${d.name}`;
      if (d.isDirectory()) stack.push(path);
      else if (d.isFile()) out.push(path);
    }
  }
  return out;
}

function importSites(
  files: readonly ResolvedFile[],
  roots: readonly string[],
  digests: ReadonlyMap<string, FileDigest>,
): ImportSite[] {
  const sites: ImportSite[] = [];
  for (const f of files) {
    const imports = digests.get(join(roots[f.root]!, f.path))?.imports;
    if (!imports) continue;
    // With several roots a file is named with its root, so the user can find it.
    const file = roots.length > 1 ? join(roots[f.root]!, f.path) : f.path;
    for (const imp of absoluteImports(f.path, imports)) {
      if (!imp.relative)
        sites.push({ module: topLevelOf(imp.module), file, line: imp.line, optional: imp.optional === true });
    }
  }
  return sites;
}

/**
 * Rule 3: a top-level name of the set that the standard library or an installed module also has.
 * The worker's .pth puts the roots after the standard library and the site-packages, so there
 * the other copy is the one imported, whatever wins on the leader.
 */
function checkShadowing(
  inSet: ReadonlySet<string>,
  module: string,
  mode: ResolutionMode,
  root: string,
  roots: readonly string[],
  facts: InterpreterFacts,
  warnings: string[],
): void {
  for (const name of [...inSet].sort()) {
    if (isStandardLibrary(name, facts)) {
      throw new ResolutionError(
        `\`${name}\` in ${root} has the name of a standard-library module: on the workers the standard library comes first on the path, so \`import ${name}\` would load the standard one. Rename it.`,
      );
    }
    if (mode === "script" && name === module) continue;
    const installed = facts.path.find(
      (e) =>
        e.kind !== "start" &&
        e.kind !== "stdlib" &&
        !roots.includes(e.path) &&
        e.names?.[name] !== undefined &&
        e.names[name] !== "namespace",
    );
    if (installed) {
      const dist = distributionFor(name, installed.path, facts.distributions);
      const copy = dist?.name ? `${dist.name} ${dist.version}` : `\`${name}\``;
      warnings.push(
        `\`${name}\` in ${root} has the name of an installed module: ${copy} in ${installed.path}. On the workers the installed copy comes first on the path, so \`import ${name}\` would load it instead of the project's. Rename the project's \`${name}\`, or uninstall ${dist?.name ?? name} on the workers.`,
      );
    }
  }
}

/** Decides "native" from the compiled files in the package's own directory, not from metadata alone. */
function hasCompiledCode(name: string, located: LocatedModule, memo: Map<string, boolean>): boolean {
  if (located.kind === "extension") return true;
  if (located.kind === "module") return false;
  const dir = join(located.entry.path, name);
  const cached = memo.get(dir);
  if (cached !== undefined) return cached;
  let found = false;
  const stack = [dir];
  let budget = 50_000;
  while (stack.length > 0 && !found && budget-- > 0) {
    const current = stack.pop()!;
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const d of entries) {
      if (d.isDirectory()) stack.push(join(current, d.name));
      else if (/\.(so|pyd)$/.test(d.name) || d.name.includes(".so.")) {
        found = true;
        break;
      }
    }
  }
  memo.set(dir, found);
  return found;
}

function nativeFromThirdParty(thirdParty: readonly ThirdPartyModule[]): NativeDistribution[] {
  const byDist = new Map<string, NativeDistribution>();
  for (const t of thirdParty) {
    if (!t.native) continue;
    const key = t.dist ?? t.module;
    const existing = byDist.get(key);
    if (existing) {
      existing.modules.push(t.module);
      continue;
    }
    byDist.set(key, {
      dist: key,
      version: t.version ?? "",
      location: t.location,
      modules: [t.module],
      evidence: `compiled files in ${join(t.path, t.module)}`,
    });
  }
  return [...byDist.values()];
}

/** The absolute leader paths of every file of the set (for caches that forget the rest). */
export function sourcePathsOf(r: Resolution): Set<string> {
  return new Set(r.files.map((f) => join(r.roots[f.root]!, f.path)));
}
