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
}

export interface ImportSite {
  /** Absolute top-level module name. */
  module: string;
  file: string;
  line: number;
}

export interface UnresolvedImport {
  module: string;
  file: string;
  line: number;
}

export interface ImportClassification {
  thirdParty: ThirdPartyModule[];
  unresolved: UnresolvedImport[];
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

export function isStandardLibrary(name: string, facts: InterpreterFacts): boolean {
  return name === "__future__" || facts.stdlibNames.includes(name);
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
}

export function classifyImports(input: ClassifyInput): ImportClassification {
  const thirdParty = new Map<string, ThirdPartyModule>();
  const unresolved: UnresolvedImport[] = [];
  const unresolvedNames = new Set<string>();
  for (const site of input.sites) {
    const name = site.module;
    // The first site of an unresolved module is enough to find it; the rest would be noise.
    if (input.inSet.has(name) || unresolvedNames.has(name) || thirdParty.has(name)) continue;
    if (isStandardLibrary(name, input.facts)) continue;
    const located = locateTopLevel(name, input.facts);
    if (!located) {
      unresolvedNames.add(name);
      unresolved.push({ module: name, file: site.file, line: site.line });
      continue;
    }
    const dist = distributionFor(name, located.entry.path, input.facts.distributions);
    const native =
      (dist?.compiledFiles.length ?? 0) > 0 ||
      located.kind === "extension" ||
      input.hasCompiledCode(name, located);
    thirdParty.set(name, {
      module: name,
      dist: dist?.name ?? null,
      version: dist?.version ?? null,
      native,
      location: locationOf(located.entry.kind),
      path: located.entry.path,
    });
  }
  const byName = (a: { module: string }, b: { module: string }) =>
    a.module < b.module ? -1 : a.module > b.module ? 1 : 0;
  return { thirdParty: [...thirdParty.values()].sort(byName), unresolved: unresolved.sort(byName) };
}
