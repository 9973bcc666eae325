import { constants } from "node:fs";
import { access, readFile, readlink, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve as resolvePath } from "node:path";
import { distributionFor } from "../core/python/import-classification.js";
import type { InterpreterFacts } from "../core/python/interpreter-facts.js";
import { foundOnPath, interpreterOf } from "../core/python/path-environment.js";
import type { ResolutionInput } from "../core/python/resolution-inputs.js";
import type { Resolution, ResolveOptions } from "./resolver.js";

/**
 * Every path a resolution read, beyond the directories it listed (those the caller sees through
 * its listing cache): the roots, every sys.path directory, the interpreter and its venv, the ignore
 * files above the roots, the script, and the imported packages searched for compiled files.
 */

export interface InputsOfResolution {
  inputs: ResolutionInput[];
  /** Why no watch can stand for these inputs (the resolution must be made afresh each time). */
  unwatchable?: string;
  /**
   * The interpreter named is not the one that answered (a pyenv shim, a wrapper script): which
   * python it starts depends on more than these paths, so it has to be asked every time.
   */
  interpreterUnpinned: boolean;
}

async function kindOf(path: string): Promise<"dir" | "other" | undefined> {
  try {
    return (await stat(path)).isDirectory() ? "dir" : "other";
  } catch {
    return undefined;
  }
}

/** The path and every symbolic link it leads through, to the file at the end. */
async function linkChain(path: string): Promise<string[]> {
  const chain = [path];
  let current = path;
  for (let hop = 0; hop < 40; hop++) {
    let target: string;
    try {
      target = await readlink(current);
    } catch {
      break;
    }
    current = resolvePath(dirname(current), target);
    chain.push(current);
  }
  return chain;
}

async function realOrSelf(path: string): Promise<string> {
  return realpath(path).catch(() => path);
}

/** `name` searched on PATH as execvp does: every directory tried before the one that has it, and that one. */
async function pathLookup(name: string, searchPath: string): Promise<{ tried: string[]; found?: string }> {
  const tried: string[] = [];
  for (const dir of searchPath.split(":")) {
    const candidate = join(dir === "" ? "." : dir, name);
    if (!isAbsolute(candidate)) continue;
    tried.push(candidate);
    const executable = await access(candidate, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (executable && (await kindOf(candidate)) === "other") return { tried, found: candidate };
  }
  return { tried };
}

async function interpreterInputs(
  facts: InterpreterFacts,
  options: ResolveOptions,
): Promise<{ inputs: ResolutionInput[]; pinned: boolean }> {
  const env = options.env ?? process.env;
  const named = interpreterOf(options.python, env);
  const paths: string[] = [];
  let started: string | undefined;
  if (foundOnPath(named)) {
    const lookup = await pathLookup(named, env.PATH ?? process.env.PATH ?? "");
    paths.push(...lookup.tried);
    started = lookup.found;
  } else if (isAbsolute(named)) started = named;
  for (const exe of [started, facts.executable]) {
    if (!exe) continue;
    paths.push(...(await linkChain(exe)));
    // Python finds its venv by a pyvenv.cfg beside its executable or one directory up.
    paths.push(join(dirname(exe), "pyvenv.cfg"), join(dirname(dirname(exe)), "pyvenv.cfg"));
  }
  const pinned =
    started !== undefined && (await realOrSelf(started)) === (await realOrSelf(facts.executable));
  return { inputs: paths.map((path) => ({ kind: "file", path, scope: "interpreter" })), pinned };
}

/** The `.git` and ignore files gitIgnoreAbove reads for a root, found the way it finds them. */
async function ignoreFileInputs(root: string): Promise<ResolutionInput[]> {
  const inputs: ResolutionInput[] = [];
  const file = (path: string): ResolutionInput => ({ kind: "file", path, scope: "project" });
  let top: string | undefined;
  let gitDir: string | undefined;
  for (let dir = root; ; dir = dirname(dir)) {
    const dotGit = join(dir, ".git");
    inputs.push(file(dotGit));
    const kind = await kindOf(dotGit);
    if (kind === "dir") {
      top = dir;
      gitDir = dotGit;
      break;
    }
    if (kind === "other") {
      top = dir;
      const m = /^gitdir:\s*(.+)$/m.exec(await readFile(dotGit, "utf8").catch(() => ""));
      if (m) gitDir = join(dir, m[1]!.trim());
      break;
    }
    if (dirname(dir) === dir) break;
  }
  if (top === undefined) return inputs;
  if (gitDir) inputs.push(file(join(gitDir, "info", "exclude")));
  for (let dir = root; dir !== top; dir = dirname(dir)) inputs.push(file(join(dirname(dir), ".gitignore")));
  return inputs;
}

export async function resolutionInputsOf(
  resolution: Resolution,
  facts: InterpreterFacts,
  options: ResolveOptions,
): Promise<InputsOfResolution> {
  const inputs: ResolutionInput[] = [];
  for (const entry of facts.path) {
    const scope = entry.kind === "start" || entry.kind === "pythonpath" ? "project" : "interpreter";
    const kind = (await kindOf(entry.path)) === "dir" ? "import-dir" : "file";
    inputs.push({ kind, path: entry.path, scope });
  }
  // Site directories count even when missing: a user site made later joins sys.path.
  for (const site of [facts.venvSite, facts.userSite, ...facts.systemSites]) {
    if (site) inputs.push({ kind: "file", path: site, scope: "interpreter" });
  }
  const interpreter = await interpreterInputs(facts, options);
  inputs.push(...interpreter.inputs);
  if (options.entry.kind === "script")
    inputs.push({ kind: "file", path: resolvePath(options.startDir, options.entry.path), scope: "project" });
  for (const t of resolution.thirdParty) {
    const dist = distributionFor(t.module, t.path, facts.distributions);
    if ((dist?.compiledFiles.length ?? 0) > 0) continue;
    const dir = join(t.path, t.module);
    if ((await kindOf(dir)) === "dir") inputs.push({ kind: "scan", path: dir, scope: "compiled" });
  }
  const installed = resolution.mode === "installed";
  if (!installed) {
    for (const root of resolution.roots) {
      inputs.push({ kind: "tree", path: root, scope: "project" });
      inputs.push(...(await ignoreFileInputs(root)));
    }
  }
  return {
    inputs,
    interpreterUnpinned: !interpreter.pinned,
    ...(installed
      ? { unwatchable: "the project is installed in the venv's site-packages (installed mode)" }
      : {}),
  };
}
