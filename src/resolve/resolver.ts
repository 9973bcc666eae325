import { readdirSync, statSync } from "node:fs";
import { access, realpath, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { type Entry, isValidModuleName, refusedRootReason, scriptNameProblem } from "../core/entry-rules.js";
import {
  classifyImports,
  type ImportSite,
  isStandardLibrary,
  type LocatedModule,
  locateTopLevel,
  type ThirdPartyModule,
  type UnresolvedImport,
} from "../core/import-classification.js";
import { absoluteImports, addWithPrefixes, topLevelOf } from "../core/import-graph.js";
import { editableInstallOf, type NativeDistribution, selectInstalledSet } from "../core/installed-set.js";
import type { InterpreterFacts } from "../core/interpreter-facts.js";
import type { ManifestFile } from "../core/manifest.js";
import {
  isNeverShippedName,
  type SelectedFile,
  selectModuleSet,
  type TreeEntry,
  topLevelNamesOf,
} from "../core/module-set.js";
import { ResolutionError } from "../errors.js";
import {
  type DigestCache,
  digestFiles,
  type FileDigest,
  MAX_FILE_BYTES,
  tooLargeError,
} from "./file-digest.js";
import type { ListingCache } from "./listing-cache.js";
import { probeInterpreter } from "./probe.js";
import { listDirectory } from "./tree-lister.js";

export type ResolutionMode = "script" | "package" | "installed";

export interface Resolution {
  mode: ResolutionMode;
  /** The module the workers import: `workflow.main`, or the script's stem. */
  module: string;
  root: string;
  python: { executable: string; version: string };
  /** Toil's version as the leader's interpreter sees it (null when Toil is not installed there). */
  toilVersion: string | null;
  files: ManifestFile[];
  thirdParty: ThirdPartyModule[];
  native: NativeDistribution[];
  unresolved: UnresolvedImport[];
  warnings: string[];
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
  /** Kept across runs by watch mode so unchanged files are not read again. */
  cache?: DigestCache;
  /** Kept across runs by watch mode so unchanged directories are not listed again. */
  listings?: ListingCache;
  /** Facts from an earlier probe of the same interpreter (watch mode probes once). */
  facts?: InterpreterFacts;
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
    if (mode === "package" && (await exists(join(root, "__init__.py")))) {
      throw new ResolutionError(
        `The root ${root} is itself a package (it has an __init__.py), so the workers could not import \`${name}\` from it. Run from its parent directory, or remove ${join(root, "__init__.py")}.`,
      );
    }
    await checkModulePath(root, name);
  }

  const refused = refusedRootReason(root, home);
  if (refused) throw new ResolutionError(refused);

  const digests = new Map<string, FileDigest>();
  let files: SelectedFile[];
  let installedNative: NativeDistribution[] = [];
  if (mode === "installed") {
    const picked = await selectInstalled(root, facts, warnings);
    files = picked.files;
    installedNative = picked.native;
  } else {
    files = await selectByRules(root, module, options, digests, warnings);
  }
  const manifestFiles = await digestSelection(root, files, digests, options.cache);

  const inSet = topLevelNamesOf(manifestFiles);
  if (mode !== "installed") checkShadowing(inSet, module, mode, root, facts, warnings);
  const sites = importSites(manifestFiles, digests);
  const nativeScan = new Map<string, boolean>();
  const classified = classifyImports({
    sites,
    inSet,
    facts,
    hasCompiledCode: (name, located) => hasCompiledCode(name, located, nativeScan),
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
  return {
    mode,
    module,
    root,
    python: { executable: facts.executable, version: facts.version },
    toilVersion: facts.distributions.find((d) => d.name?.toLowerCase() === "toil")?.version ?? null,
    files: manifestFiles,
    thirdParty: classified.thirdParty,
    native,
    unresolved: classified.unresolved,
    warnings,
  };
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

/** Script and package modes: list directories on demand until the selection is complete. */
async function selectByRules(
  root: string,
  module: string,
  options: ResolveOptions,
  digests: Map<string, FileDigest>,
  warnings: string[],
): Promise<SelectedFile[]> {
  const tree = new Map<string, readonly TreeEntry[]>();
  const imported = new Set<string>();
  addWithPrefixes(module, imported);
  for (let round = 0; ; round++) {
    const selection = selectModuleSet({
      tree,
      imported,
      include: options.include ?? [],
      exclude: options.exclude ?? [],
    });
    if (selection.pending.length > 0) {
      await Promise.all(
        selection.pending.map(async (dir) => {
          try {
            const known = options.listings?.get(dir);
            const entries = known ?? (await listDirectory(root, dir));
            if (!known) options.listings?.set(dir, entries);
            tree.set(dir, entries);
          } catch (error) {
            if (dir === "")
              throw new ResolutionError(`Cannot read the project root ${root}: ${(error as Error).message}`);
            warnings.push(`${dir}/: skipped, ${(error as Error).message}`);
            tree.set(dir, []);
          }
        }),
      );
      continue;
    }
    // Imports decide which namespace directories go; scan what is new, then look again.
    await digestSelection(root, selection.files, digests, options.cache);
    const before = imported.size;
    for (const f of selection.files) {
      const imports = digests.get(f.path)?.imports;
      if (!imports) continue;
      for (const imp of absoluteImports(f.path, imports)) {
        addWithPrefixes(imp.module, imported);
        for (const c of imp.candidates) addWithPrefixes(c, imported);
      }
    }
    if (imported.size === before || round > 1000) {
      warnings.push(...selection.notes);
      return selection.files;
    }
  }
}

/** Hashes the files not yet hashed and returns the manifest entries, sorted by path. */
async function digestSelection(
  root: string,
  files: readonly SelectedFile[],
  digests: Map<string, FileDigest>,
  cache: DigestCache | undefined,
): Promise<ManifestFile[]> {
  const missing = files.filter((f) => !digests.has(f.path));
  const tooLarge = missing.find((f) => f.size > MAX_FILE_BYTES);
  if (tooLarge) throw tooLargeError(tooLarge.path, tooLarge.size);
  const computed = await digestFiles(
    missing.map((f) => ({ absPath: join(root, f.path), size: f.size, mtimeMs: f.mtimeMs })),
    cache,
  ).catch((error: NodeJS.ErrnoException) => {
    if (error instanceof ResolutionError) throw error;
    throw new ResolutionError(`Cannot read ${error.path ?? "a file of the project"}: ${error.message}`);
  });
  for (const [i, f] of missing.entries()) digests.set(f.path, computed[i]!);
  return files.map((f) => {
    const d = digests.get(f.path)!;
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

function importSites(files: readonly ManifestFile[], digests: ReadonlyMap<string, FileDigest>): ImportSite[] {
  const sites: ImportSite[] = [];
  for (const f of files) {
    const imports = digests.get(f.path)?.imports;
    if (!imports) continue;
    for (const imp of absoluteImports(f.path, imports)) {
      if (!imp.relative) sites.push({ module: topLevelOf(imp.module), file: f.path, line: imp.line });
    }
  }
  return sites;
}

/** Rule 3: a top-level name of the set that the standard library or an installed module also has. */
function checkShadowing(
  inSet: ReadonlySet<string>,
  module: string,
  mode: ResolutionMode,
  root: string,
  facts: InterpreterFacts,
  warnings: string[],
): void {
  for (const name of [...inSet].sort()) {
    if (isStandardLibrary(name, facts)) {
      throw new ResolutionError(
        `\`${name}\` in ${root} has the name of a standard-library module: on the workers \`import ${name}\` would load the standard one. Rename it.`,
      );
    }
    if (mode === "script" && name === module) continue;
    const other = locateTopLevel(name, facts);
    if (other && other.entry.path !== root) {
      warnings.push(
        `\`${name}\` in the project shadows the installed \`${name}\` in ${other.entry.path}; on the workers the one from the virtualenv's own site-packages wins over the shipped one. Rename it if both are needed.`,
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
