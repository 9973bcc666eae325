import { readdirSync, statSync } from "node:fs";
import { access, realpath, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { ResolutionError } from "../core/errors.js";
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

export type ResolutionMode = "script" | "package" | "installed";

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

/** Files above this size are shipped with a warning: each change sends them whole to every worker. */
export const LARGE_FILE_BYTES = 10 * 1024 * 1024;

export interface ResolveOptions {
  entry: Entry;
  /** The directory python is started from (--root, project.root, else the current directory). */
  startDir: string;
  /** The leader's interpreter; default $VIRTUAL_ENV/bin/python, then python3. */
  python?: string;
  include?: readonly string[];
  exclude?: readonly string[];
  env?: NodeJS.ProcessEnv;
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
  return env.VIRTUAL_ENV ? join(env.VIRTUAL_ENV, "bin", "python") : "python3";
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
  options: Pick<ResolveOptions, "python" | "startDir" | "env">,
): Promise<InterpreterFacts> {
  const env = options.env ?? process.env;
  return probeInterpreter(options.python ?? defaultPython(env), options.startDir, pythonPathOf(env));
}

export async function resolveProject(options: ResolveOptions): Promise<Resolution> {
  const env = options.env ?? process.env;
  const facts = options.facts ?? (await probeFor(options));
  const stdlib = new Set(facts.stdlibNames);
  const home = env.HOME ?? homedir();
  const warnings: string[] = [];

  let mode: ResolutionMode;
  let root: string;
  let module: string;
  if (options.entry.kind === "script") {
    const scriptPath = resolvePath(options.startDir, options.entry.path);
    if (!(await isFile(scriptPath))) {
      throw new ResolutionError(`The script ${scriptPath} does not exist or is not a file.`);
    }
    const real = await realpath(scriptPath);
    const problem = scriptNameProblem(basename(real), stdlib);
    if (problem) throw new ResolutionError(problem);
    mode = "script";
    root = dirname(real);
    module = basename(real).slice(0, -3);
    const elsewhere = locateTopLevel(module, facts);
    if (elsewhere && elsewhere.entry.path !== root) {
      throw new ResolutionError(
        `The script ${basename(real)} has the name of the module \`${module}\` found in ${elsewhere.entry.path}: on the workers \`import ${module}\` could load that one instead. Rename the script.`,
      );
    }
    if (await exists(join(root, "__init__.py"))) {
      throw new ResolutionError(await packageScriptAdvice(root, module));
    }
  } else {
    const name = options.entry.name;
    if (!isValidModuleName(name)) {
      throw new ResolutionError(
        `\`${name}\` is not a valid Python module name (expected something like workflow.main).`,
      );
    }
    module = name;
    const top = topLevelOf(name);
    const located = locateTopLevel(top, facts, false);
    const editable = editableInstallOf(top, located?.entry.path, facts);
    if (editable) {
      throw new ResolutionError(
        `\`${top}\` is installed as an ${editable.kind === "egg" ? ".egg" : `editable install (${editable.kind})`} (${editable.file}). ` +
          `Such installs point at the source tree instead of copying the modules, so they cannot be auto-deployed (the Toil documentation says the same of \`pip install -e .\`, \`setup.py develop\` and \`setup.py install\`). ` +
          `Uninstall it and run \`pip install .\` in the project instead.`,
      );
    }
    if (!located) {
      const looked = facts.path.map((e) => `  ${e.path} (${e.kind})`).join("\n");
      throw new ResolutionError(
        `No module named \`${top}\` was found for \`python -m ${name}\`. Looked in:\n${looked}\nRun from the project directory, pass --root DIR, or set PYTHONPATH.`,
      );
    }
    switch (located.entry.kind) {
      case "start":
      case "pythonpath":
      case "pth":
        mode = "package";
        root = located.entry.path;
        break;
      case "venv-site":
        mode = "installed";
        root = located.entry.path;
        break;
      case "stdlib":
        throw new ResolutionError(
          `\`${top}\` is a standard-library module: there is nothing to ship. Rename your package if it is meant to be yours.`,
        );
      default:
        throw new ResolutionError(
          `\`${top}\` is found in ${located.entry.path} (the system's or the user's site-packages), not in the project or the virtualenv: there is nothing to ship. ` +
            `Run from the project directory, or install the project into a --system-site-packages virtualenv with \`pip install .\`.`,
        );
    }
    await checkModulePath(root, name);
  }

  const refused = refusedRootReason(root, home);
  if (refused) throw new ResolutionError(refused);

  const digests = new Map<string, FileDigest>();
  let roots = [root];
  let files: ResolvedFile[];
  let installedNative: NativeDistribution[] = [];
  if (mode === "installed") {
    const picked = await selectInstalled(root, facts, warnings);
    files = (await digestSelection(root, picked.files, digests, options.cache)).map((f) => ({
      ...f,
      root: 0,
    }));
    installedNative = picked.native;
  } else {
    const selected = await selectByRules(root, module, facts, home, options, digests, warnings);
    roots = selected.roots;
    files = selected.files;
    for (const r of roots) {
      // An import-path entry is no package for Python, whatever it holds (many projects keep a
      // src/__init__.py): the workers put it on their path the same way.
      if (mode === "package" || r !== root) {
        if (await exists(join(r, "__init__.py")))
          warnings.push(
            `${join(r, "__init__.py")} is ignored: ${r} is an import-path entry, not a package, for Python here and on the workers; it is not shipped.`,
          );
      }
    }
  }
  for (const f of files) {
    if (f.size > LARGE_FILE_BYTES)
      warnings.push(
        `${roots.length > 1 ? join(roots[f.root]!, f.path) : f.path} is ${(f.size / 1024 / 1024).toFixed(1)} MiB: every change to it is sent whole to every worker. If the workers do not need it, add it to \`project.exclude\` or the project's .gitignore.`,
      );
  }

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
  for (const n of native) {
    warnings.push(
      `${n.dist}${n.version ? ` ${n.version}` : ""} contains compiled code (${n.evidence}): it is not shipped and must be installed on each worker.`,
    );
  }
  for (const u of classified.unresolved) {
    warnings.push(
      `${u.file}:${u.line}: \`import ${u.module}\` cannot be resolved on the leader; it will fail on the workers too.`,
    );
  }
  const syntaxErrors =
    mode === "installed" ? [] : await compileModules(files, roots, digests, facts, options.compiler);
  for (const e of syntaxErrors) {
    warnings.push(
      `${e.file}:${e.line}: does not compile with the leader's Python ${facts.version} (${e.message}): every job importing it would fail. push refuses it (--force pushes it anyway); watch keeps the workers on the last good release until it is fixed.`,
    );
  }
  for (const n of classified.notShipped) {
    warnings.push(
      `${n.file}:${n.line}: \`import ${n.module}\` is found on the leader, not shipped: only in the start directory ${n.path}, which \`python -m\` puts on the leader's path but no worker has. Move it into one of the project's packages, or put ${n.path} on PYTHONPATH to ship it as a root.`,
    );
  }
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
