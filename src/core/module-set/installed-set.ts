import type { DistributionFacts, InterpreterFacts } from "../python/interpreter-facts.js";
import { isNeverShippedName } from "./module-set.js";

/**
 * Rule 5 of docs/DESIGN.md section 4: in installed mode the set is what lives in the virtualenv's own
 * site-packages: pure-Python distributions with their metadata, and top-level modules that belong
 * to no distribution (copied in by hand, as in the seed's `cp -R workflow util venv/...`).
 */

/** Packaging tools that every venv has and no worker must receive. */
const PACKAGING_TOOLS = new Set([
  "pip",
  "setuptools",
  "wheel",
  "_distutils_hack",
  "pkg_resources",
  "distutils-precedence",
]);
const PACKAGING_DISTS = new Set(["pip", "setuptools", "wheel", "distribute"]);

export interface NativeDistribution {
  dist: string;
  version: string;
  location: "venv" | "system" | "user" | "pythonpath" | "other";
  modules: string[];
  /** Why it counts as native, e.g. a compiled file it contains. */
  evidence: string;
}

export interface InstalledSelection {
  /** Files relative to site-packages, from distributions' file lists. */
  distFiles: string[];
  /** Top-level packages owned by no distribution: the caller lists them recursively. */
  orphanPackages: string[];
  /** Top-level single-file modules owned by no distribution. */
  orphanModules: string[];
  native: NativeDistribution[];
  shippedDists: { name: string; version: string }[];
  warnings: string[];
}

function isPackagingDist(d: DistributionFacts): boolean {
  return d.name !== null && PACKAGING_DISTS.has(d.name.toLowerCase());
}

function isCompiled(path: string): boolean {
  return path.endsWith(".so") || path.endsWith(".pyd") || path.includes(".so.");
}

/** A file of a distribution's RECORD that belongs in the set: inside site-packages and not a cache. */
function isShippableRecordFile(path: string): boolean {
  if (path.startsWith("../") || path.startsWith("/") || path.includes("/../")) return false;
  const parts = path.split("/");
  if (parts.some((p) => p === "__pycache__" || p === "")) return false;
  const last = parts[parts.length - 1]!;
  if (last.endsWith(".pyc") || last.endsWith(".pyo")) return false;
  // A .pth at the top would be inert under `current` (only site directories read them).
  if (parts.length === 1 && last.endsWith(".pth")) return false;
  return true;
}

export function selectInstalledSet(facts: InterpreterFacts): InstalledSelection {
  const site = facts.venvSite;
  const result: InstalledSelection = {
    distFiles: [],
    orphanPackages: [],
    orphanModules: [],
    native: [],
    shippedDists: [],
    warnings: [],
  };
  if (!site) return result;
  const dists = facts.distributions.filter((d) => d.siteDir === site);
  const owned = new Set<string>();
  for (const d of dists) {
    for (const t of [...d.topLevel, ...d.fileTopLevel]) owned.add(t);
    if (isPackagingDist(d)) continue;
    const files = d.files ?? [];
    const compiled = files.find(isCompiled);
    const name = d.name ?? d.metaDir ?? "unknown";
    if (compiled) {
      result.native.push({
        dist: name,
        version: d.version,
        location: "venv",
        modules: [...new Set([...d.topLevel, ...d.fileTopLevel])].sort(),
        evidence: compiled,
      });
      continue;
    }
    if (!d.hasFileList) {
      result.warnings.push(
        `${name} ${d.version} in the virtualenv lists no files (no RECORD), so it cannot be shipped; reinstall it with pip.`,
      );
      continue;
    }
    result.shippedDists.push({ name, version: d.version });
    for (const f of files) if (isShippableRecordFile(f)) result.distFiles.push(f);
  }
  const names = facts.path.find((e) => e.kind === "venv-site")?.names ?? {};
  for (const [name, kind] of Object.entries(names)) {
    if (owned.has(name) || PACKAGING_TOOLS.has(name) || isNeverShippedName(name)) continue;
    if (kind === "package" || kind === "namespace") result.orphanPackages.push(name);
    else if (kind === "module") result.orphanModules.push(name);
    else
      result.native.push({
        dist: name,
        version: "",
        location: "venv",
        modules: [name],
        evidence: "a compiled extension module copied into site-packages by hand",
      });
  }
  result.distFiles.sort();
  result.orphanPackages.sort();
  result.orphanModules.sort();
  return result;
}

/** The editable or egg install that provides a top-level name, if any; such an install cannot be shipped. */
export function editableInstallOf(
  top: string,
  foundIn: string | undefined,
  facts: InterpreterFacts,
): { kind: string; file: string } | undefined {
  const within = (dir: string, parent: string) => dir === parent || dir.startsWith(`${parent}/`);
  for (const install of facts.installs) {
    if (install.topLevel.includes(top)) return install;
    if (foundIn && install.paths.some((p) => within(foundIn, p))) return install;
  }
  for (const d of facts.distributions) {
    if (!d.editable || !d.sourceUrl?.startsWith("file://")) continue;
    const source = decodeURIComponent(d.sourceUrl.slice("file://".length));
    if (d.topLevel.includes(top) || (foundIn && within(foundIn, source))) {
      return { kind: "editable (direct_url.json)", file: `${d.siteDir}/${d.metaDir ?? d.name}` };
    }
  }
  return undefined;
}
