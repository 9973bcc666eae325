/** What the leader's interpreter reported about itself (see src/resolve/probe.py). Plain data. */

export type PathEntryKind =
  | "start"
  | "pythonpath"
  | "stdlib"
  | "venv-site"
  | "system-site"
  | "user-site"
  | "egg"
  | "pth";
export type TopLevelKind = "package" | "namespace" | "module" | "extension";

export interface PathEntry {
  path: string;
  kind: PathEntryKind;
  /** Importable top-level names in that directory; null when it is not a readable directory. */
  names: Record<string, TopLevelKind> | null;
  /** PYTHONPATH entries only: the directory holds `.dist-info` metadata (an install target, not source). */
  distInfo?: boolean;
}

export interface DistributionFacts {
  name: string | null;
  version: string;
  /** `foo-1.0.dist-info`, `foo.egg-info`, ... */
  metaDir: string | null;
  siteDir: string;
  /** Files relative to siteDir (RECORD / installed-files.txt); null when not asked for or not listed. */
  files: string[] | null;
  hasFileList: boolean;
  compiledFiles: string[];
  topLevel: string[];
  fileTopLevel: string[];
  editable: boolean;
  sourceUrl: string | null;
  installer: string | null;
}

export interface InstallFacts {
  kind: "egg-link" | "editable-finder" | "editable-pth" | "egg";
  file: string;
  paths: string[];
  topLevel: string[];
}

export interface InterpreterFacts {
  executable: string;
  version: string;
  prefix: string;
  basePrefix: string;
  venvSite: string | null;
  systemSites: string[];
  userSite: string | null;
  startDir: string;
  path: PathEntry[];
  stdlibNames: string[];
  distributions: DistributionFacts[];
  installs: InstallFacts[];
}
