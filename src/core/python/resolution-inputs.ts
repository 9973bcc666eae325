import { isNeverShippedName } from "../module-set/module-set.js";

/**
 * What a resolution read, as paths, and how a change at a path bears on it: the daemon keeps a
 * resolution only while none of these changed. Pure: the paths are gathered and watched at the edge.
 */

/**
 * What has to be done again when an input changed: `project`, list again what changed (the module
 * set, the start directory and PYTHONPATH entries, the ignore files); `compiled`, search an
 * imported package for compiled files again; `interpreter`, ask the interpreter again (its venv,
 * its site directories and every other sys.path entry).
 */
export type InputScope = "project" | "compiled" | "interpreter";

export type InputKind =
  /** A root of the module set: every file and directory below it that can ship. */
  | "tree"
  /** A sys.path directory: the names in it, `NAME/__init__.py`, and installed metadata. */
  | "import-dir"
  /** An imported package searched for compiled files: everything below it but bytecode. */
  | "scan"
  /** One path: whether it exists, what it is, what it holds. */
  | "file";

export interface ResolutionInput {
  kind: InputKind;
  /** Absolute. */
  path: string;
  scope: InputScope;
}

export interface ChangeVerdict {
  scope: InputScope;
  /**
   * The path is an input directory itself or lies above an input: whatever was watched at and
   * below it may now watch something else (a directory moved, or removed and made again).
   */
  structural: boolean;
}

const RANK: Record<InputScope, number> = { project: 0, compiled: 1, interpreter: 2 };

/** Installed metadata: a change there is seen by asking the interpreter again. */
const METADATA = /\.(dist-info|egg-info|egg-link|egg|pth)$/;

function isAbove(path: string, below: string): boolean {
  return path === "/" ? below !== "/" : below.startsWith(`${path}/`);
}

function partsBelow(dir: string, path: string): string[] | undefined {
  if (!isAbove(dir, path)) return undefined;
  return path.slice(dir === "/" ? 1 : dir.length + 1).split("/");
}

/** Whether a change at `parts` below a root of the set can change the set. */
function countsInTree(parts: readonly string[]): boolean {
  return parts.every((p, i) => !isNeverShippedName(p) || (p === ".gitignore" && i === parts.length - 1));
}

function importDirScope(input: ResolutionInput, parts: readonly string[]): InputScope | undefined {
  const [first, second, third] = parts;
  if (first === undefined || first === "__pycache__") return undefined;
  if (parts.length === 1) return METADATA.test(first) ? "interpreter" : input.scope;
  if (parts.length === 2 && second === "__init__.py") return input.scope;
  const eggInfo = first.endsWith(".egg") && second === "EGG-INFO";
  if (parts.length === 2 && (/\.(dist-info|egg-info)$/.test(first) || eggInfo)) return "interpreter";
  if (parts.length === 3 && eggInfo && third !== undefined) return "interpreter";
  return undefined;
}

function verdictOf(input: ResolutionInput, path: string): ChangeVerdict | undefined {
  if (isAbove(path, input.path)) return { scope: input.scope, structural: true };
  if (path === input.path) return { scope: input.scope, structural: input.kind !== "file" };
  const parts = partsBelow(input.path, path);
  if (!parts) return undefined;
  switch (input.kind) {
    case "file":
      return undefined;
    case "tree":
      return countsInTree(parts) ? { scope: input.scope, structural: false } : undefined;
    case "scan":
      return parts.includes("__pycache__") || /\.py[co]$/.test(parts[parts.length - 1]!)
        ? undefined
        : { scope: input.scope, structural: false };
    case "import-dir": {
      const scope = importDirScope(input, parts);
      return scope && { scope, structural: false };
    }
  }
}

/** Both verdicts at once: the wider scope, structural when either is. */
export function mergeVerdicts(a: ChangeVerdict | undefined, b: ChangeVerdict): ChangeVerdict {
  return {
    scope: a && RANK[a.scope] > RANK[b.scope] ? a.scope : b.scope,
    structural: (a?.structural ?? false) || b.structural,
  };
}

/** How a change at `path` bears on a resolution that read `inputs`; undefined when it does not. */
export function changeVerdict(inputs: readonly ResolutionInput[], path: string): ChangeVerdict | undefined {
  let verdict: ChangeVerdict | undefined;
  for (const input of inputs) {
    const v = verdictOf(input, path);
    if (v) verdict = mergeVerdicts(verdict, v);
  }
  return verdict;
}

/**
 * The directories directly in a sys.path directory whose contents are read too: packages (is
 * there an `__init__.py`?), installed metadata, and an `.egg`'s EGG-INFO below it.
 */
export function importDirReadsInside(name: string): boolean {
  return name !== "__pycache__" && (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || METADATA.test(name));
}
