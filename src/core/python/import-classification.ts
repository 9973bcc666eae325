import type { DistributionFacts, InterpreterFacts, PathEntry, TopLevelKind } from "./interpreter-facts.js";

/**
 * Rule 6 of docs/DESIGN.md section 4: every imported top-level name is in the set, in the standard
 * library, third-party (importable on the leader from somewhere else) or unresolved.
 */

export type ThirdPartyLocation = "venv" | "system" | "user" | "pythonpath" | "other";

export interface LocatedModule {
  entry: PathEntry;
  kind: TopLevelKind;
}

export interface ThirdPartyModule {
  module: string;
  dist: string | null;
  version: string | null;
  native: boolean;
  location: ThirdPartyLocation;
  /** The sys.path directory it was found in. */
  path: string;
  /** Every import of it sits in a `try` that catches ImportError: a node without it still runs the workflow. */
  optional: boolean;
}

export interface ImportSite {
  /** Absolute top-level module name. */
  module: string;
  file: string;
  line: number;
  /** Inside a `try` whose handler catches ImportError (python-imports.ts). */
  optional?: boolean;
}

export interface UnresolvedImport {
  module: string;
  file: string;
  line: number;
}

/** An import every site of which is guarded by `except ImportError`; `found` says whether the leader has it. */
export interface OptionalImport {
  module: string;
  file: string;
  line: number;
  found: boolean;
}

/**
 * A module the leader finds only in the start directory, which is on the path of `python -m`
 * started there but is no root of the set: it is not shipped, and the workers will lack it.
 */
export interface NotShippedImport {
  module: string;
  file: string;
  line: number;
  path: string;
}

export interface ImportClassification {
  thirdParty: ThirdPartyModule[];
  unresolved: UnresolvedImport[];
  optional: OptionalImport[];
  notShipped: NotShippedImport[];
}

/**
 * Where Python would find a top-level name on the leader, ignoring the start directory (which is
 * the project itself). A regular package or module anywhere wins over namespace portions, as in
 * importlib's PathFinder.
 */
export function locateTopLevel(
  name: string,
  facts: InterpreterFacts,
  skipStart = true,
): LocatedModule | undefined {
  let namespace: LocatedModule | undefined;
  for (const entry of facts.path) {
    if (skipStart && entry.kind === "start") continue;
    const kind = entry.names?.[name];
    if (!kind) continue;
    if (kind !== "namespace") return { entry, kind };
    namespace ??= { entry, kind };
  }
  return namespace;
}

/**
 * A standard-library name, including those found in the standard library's directories but left
 * out of `sys.stdlib_module_names` (`test`, and Debian's `sitecustomize`): on a worker they come
 * before any shipped root, so they matter as much as the listed ones.
 */
export function isStandardLibrary(name: string, facts: InterpreterFacts): boolean {
  return (
    name === "__future__" ||
    facts.stdlibNames.includes(name) ||
    facts.path.some(
      (e) => e.kind === "stdlib" && e.names?.[name] !== undefined && e.names[name] !== "namespace",
    )
  );
}

function normalizeDistName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "_");
}

/** The distribution that provides a top-level name in one site directory, if any says so. */
export function distributionFor(
  name: string,
  siteDir: string,
  dists: readonly DistributionFacts[],
): DistributionFacts | undefined {
  const here = dists.filter((d) => d.siteDir === siteDir);
  return (
    here.find((d) => d.topLevel.includes(name) || d.fileTopLevel.includes(name)) ??
    here.find((d) => d.name !== null && normalizeDistName(d.name) === normalizeDistName(name))
  );
}

function locationOf(kind: PathEntry["kind"]): ThirdPartyLocation {
  switch (kind) {
    case "venv-site":
      return "venv";
    case "system-site":
      return "system";
    case "user-site":
      return "user";
    case "pythonpath":
      return "pythonpath";
    default:
      return "other";
  }
}

export interface ClassifyInput {
  sites: readonly ImportSite[];
  /** Top-level names the module set provides. */
  inSet: ReadonlySet<string>;
  facts: InterpreterFacts;
  /** Whether the code behind a located name contains compiled files (decided at the edge by looking). */
  hasCompiledCode: (name: string, located: LocatedModule) => boolean;
  /**
   * Package mode with a root other than the start directory: `python -m` on the leader also
   * finds modules in the start directory, which no worker has.
   */
  startDirOnPath?: boolean;
}

export function classifyImports(input: ClassifyInput): ImportClassification {
  // One verdict per top-level name: required when any of its imports is, and reported at its
  // first required site (else its first site).
  const firstSite = new Map<string, ImportSite>();
  const required = new Set<string>();
  for (const site of input.sites) {
    const name = site.module;
    if (input.inSet.has(name) || isStandardLibrary(name, input.facts)) continue;
    if (!site.optional && !required.has(name)) {
      required.add(name);
      firstSite.set(name, site);
    } else if (!firstSite.has(name)) firstSite.set(name, site);
  }
  const thirdParty: ThirdPartyModule[] = [];
  const unresolved: UnresolvedImport[] = [];
  const optional: OptionalImport[] = [];
  const notShipped: NotShippedImport[] = [];
  const start = input.startDirOnPath ? input.facts.path.find((e) => e.kind === "start") : undefined;
  for (const [name, site] of firstSite) {
    const isOptional = !required.has(name);
    const at = { module: name, file: site.file, line: site.line };
    // The start directory comes first on the leader's path: what it holds is what the leader imports.
    if (start?.names?.[name]) {
      if (isOptional) optional.push({ ...at, found: true });
      else notShipped.push({ ...at, path: start.path });
      continue;
    }
    const located = locateTopLevel(name, input.facts);
    if (isOptional) optional.push({ ...at, found: located !== undefined });
    if (!located) {
      if (!isOptional) unresolved.push(at);
      continue;
    }
    const dist = distributionFor(name, located.entry.path, input.facts.distributions);
    const native =
      (dist?.compiledFiles.length ?? 0) > 0 ||
      located.kind === "extension" ||
      input.hasCompiledCode(name, located);
    thirdParty.push({
      module: name,
      dist: dist?.name ?? null,
      version: dist?.version ?? null,
      native,
      location: locationOf(located.entry.kind),
      path: located.entry.path,
      optional: isOptional,
    });
  }
  const byName = (a: { module: string }, b: { module: string }) =>
    a.module < b.module ? -1 : a.module > b.module ? 1 : 0;
  return {
    thirdParty: thirdParty.sort(byName),
    unresolved: unresolved.sort(byName),
    optional: optional.sort(byName),
    notShipped: notShipped.sort(byName),
  };
}
