import type { ThirdPartyModule } from "../python/import-classification.js";

/**
 * `sync-cluster check`: judges what a node reported (the agent's operations.py, op_check) against the
 * leader. Pure: the agent gathers facts in one request, the verdicts are decided here.
 */

export type CheckStatus = "pass" | "warn" | "fail" | "skip";
export type CheckId =
  | "venv"
  | "systemSite"
  | "python"
  | "toil"
  | "toilWorker"
  | "imports"
  | "entry"
  | "deployDir"
  | "release";

export const CHECK_TITLES: Record<CheckId, string> = {
  venv: "venv",
  systemSite: "system-site",
  python: "python",
  toil: "toil",
  toilWorker: "toil worker",
  imports: "imports",
  entry: "entry",
  deployDir: "deploy dir",
  release: "release",
};

export interface CheckResult {
  id: CheckId;
  status: CheckStatus;
  detail: string;
}

export interface ImportProbe {
  found: boolean;
  origin?: string | null;
  version?: string | null;
  error?: string;
}

/** Where a fresh interpreter on the node finds each top-level name of the module set. */
export interface OriginsProbe {
  executable?: string;
  error?: string;
  origins?: Record<string, { origin: string | null; real: string | null } | { error: string } | null>;
}

/** Toil's worker command as a batch system's job on the node finds it (the agent's venv_doctor.py, probe_toil_worker). */
export interface ToilWorkerProbe extends OriginsProbe {
  command: string;
  path: string;
  found: string | null;
  ours: boolean;
  interpreter: string | null;
}

/** What the agent's `check` request answers. */
export interface NodeCheckFacts {
  venvPython: string | null;
  venvIsVenv: boolean;
  pyvenvCfg: { path: string; line: number | null; value: string | null };
  imports?: {
    error?: string;
    python?: string;
    venvSite?: string;
    toil?: ImportProbe;
    modules?: Record<string, ImportProbe>;
  };
  deploy: { path: string; existing: string; writable: boolean; free: number | null };
  /** `expected` is this project's directory; `serves` the one an existing .pth serves. */
  pth: { path: string | null; expected: string; serves: string | null };
  current: string | null;
  releases: { id: string; time: number }[];
  /** The venv and the project directory, expanded on the node. */
  venv?: string;
  projectDir?: string;
  /** Asked for with the module set's top-level names. */
  entry?: OriginsProbe;
  /** Asked for when the leader says how its batch system starts jobs. */
  toilWorker?: ToilWorkerProbe;
}

/**
 * Which PATH a job's command is looked up on: the leader's, copied by the scheduler, or the one a
 * login shell on the node sets from its start-up files (the leader's does not arrive).
 */
export type JobPath = "leader" | "login-shell";

/**
 * How the leader's batch system starts a job (job-launch.ts): it runs `command`
 * (`_toil_worker`, or its absolute path with TOIL_CHECK_ENV=True) looked up along `path`.
 */
export interface JobLaunch {
  command: string;
  path: string;
  /** The leader's venv, expanded; null when the leader does not run in one. */
  venv: string | null;
  /** The scheduler's name ("Grid Engine"), for messages. */
  scheduler: string;
  jobPath: JobPath;
  /** Toil submits the absolute path of the leader's venv's `_toil_worker` (TOIL_CHECK_ENV=True). */
  absolute: boolean;
  /** How the scheduler starts the command, for messages. */
  how: string;
}

export interface LeaderExpectations {
  venv: string;
  pythonVersion: string;
  toilVersion: string | null;
  thirdParty: readonly ThirdPartyModule[];
  releaseId: string;
  setBytes: number;
  /** Top-level names of the module set: each must resolve into the release on the node. */
  topLevel: readonly string[];
  jobs?: JobLaunch;
}

const minor = (v: string) => v.split(".").slice(0, 2).join(".");

/**
 * Every check's verdict on what one node reported, in the order `check` prints them. Each check
 * is decided by its own function below, from the facts and what the leader expects.
 */
export function judgeNode(f: NodeCheckFacts, leader: LeaderExpectations): CheckResult[] {
  const verdicts: [CheckId, Verdict][] = [
    ["venv", venvVerdict(f, leader)],
    ["systemSite", systemSiteVerdict(f)],
    ["python", pythonVerdict(f, leader)],
    ["toil", toilVerdict(f, leader)],
    ["imports", importsVerdict(f, leader)],
    ["toilWorker", toilWorkerCheck(f, leader)],
    ["entry", entryCheck(f, leader)],
    ["deployDir", deployDirVerdict(f, leader)],
    ["release", releaseVerdict(f, leader)],
  ];
  return verdicts.map(([id, { status, detail }]) => ({ id, status, detail }));
}

/** One check's outcome before it is named. */
export interface Verdict {
  status: CheckStatus;
  detail: string;
}

const verdict = (status: CheckStatus, detail: string): Verdict => ({ status, detail });

/** The venv exists, is a virtualenv, and its python runs. */
export function venvVerdict(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  if (!f.venvPython)
    return verdict(
      "fail",
      `no virtualenv at ${leader.venv} (no bin/python): create it with \`python3 -m venv --system-site-packages ${leader.venv}\` or run \`sync-cluster check --fix\``,
    );
  if (!f.venvIsVenv)
    return verdict("fail", `${leader.venv} has a bin/python but no pyvenv.cfg: it is not a virtualenv`);
  if (f.imports?.error && !f.imports.python)
    return verdict("fail", `${f.venvPython} does not run: ${f.imports.error}`);
  return verdict("pass", f.venvPython);
}

/** The venv sees the system's site-packages, where Toil and the native libraries live. */
export function systemSiteVerdict(f: NodeCheckFacts): Verdict {
  const cfg = f.pyvenvCfg;
  if (!f.venvIsVenv) return verdict("skip", "no virtualenv");
  if (cfg.value === "true") return verdict("pass", `${cfg.path}:${cfg.line}`);
  const where = cfg.line
    ? `${cfg.path}:${cfg.line} says include-system-site-packages = ${cfg.value}`
    : `${cfg.path} has no include-system-site-packages line`;
  return verdict(
    "fail",
    `${where}: the venv cannot see the system's Toil and native libraries. Recreate it with --system-site-packages or run \`sync-cluster check --fix\``,
  );
}

/** The node's Python has the leader's major.minor: pickled jobs and compiled modules depend on it. */
export function pythonVerdict(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  const nodePython = f.imports?.python;
  if (!nodePython) return verdict("skip", "the venv's python did not answer");
  if (minor(nodePython) !== minor(leader.pythonVersion))
    return verdict(
      "fail",
      `Python ${nodePython} on the node, ${leader.pythonVersion} on the leader: pickled jobs and compiled modules need the same major.minor`,
    );
  if (nodePython !== leader.pythonVersion)
    return verdict("warn", `Python ${nodePython} on the node, ${leader.pythonVersion} on the leader`);
  return verdict("pass", nodePython);
}

/** Toil imports from the system (not reinstalled in the venv) at the leader's version. */
export function toilVerdict(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  const toil = f.imports?.toil;
  const venvSite = f.imports?.venvSite;
  if (!toil) return verdict("skip", "the venv's python did not answer");
  if (!toil.found)
    return verdict(
      "fail",
      `\`import toil\` fails in the venv${toil.error ? ` (${toil.error})` : ""}: install Toil system-wide on the node`,
    );
  if (venvSite && toil.origin?.startsWith(`${venvSite}/`)) {
    const other = leader.toilVersion && toil.version && toil.version !== leader.toilVersion;
    return verdict(
      other ? "fail" : "warn",
      `Toil${toil.version ? ` ${toil.version}` : ""} was reinstalled inside the venv (${toil.origin})${other ? `, unlike the leader's ${leader.toilVersion}` : ""}; it should come from the system. Uninstall it from the venv: ${leader.venv}/bin/pip uninstall toil`,
    );
  }
  if (leader.toilVersion && toil.version && toil.version !== leader.toilVersion)
    return verdict(
      "fail",
      `Toil ${toil.version} on the node, ${leader.toilVersion} on the leader: install the same version`,
    );
  return verdict("pass", `${toil.version ?? "?"} (${toil.origin ?? "?"})`);
}

/** Every third-party module the workflow imports is importable on the node, compiled ones at the leader's version. */
export function importsVerdict(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  const modules = f.imports?.modules;
  if (!modules) return verdict("skip", "the venv's python did not answer");
  const failures: string[] = [];
  const differences: string[] = [];
  for (const t of leader.thirdParty) {
    // Toil has a check of its own.
    if (t.module === "toil") continue;
    const m = modules[t.module];
    const wanted = t.dist ? `${t.dist}${t.version ? `==${t.version}` : ""}` : t.module;
    // An optional import (inside `try: ... except ImportError`) is never a reason to refuse a node.
    if (!m?.found && t.optional)
      differences.push(`${t.module} is missing (an optional import: the workflow runs without it)`);
    else if (!m?.found) failures.push(`${t.module} is missing: install ${wanted}`);
    else if (t.version && m.version && m.version !== t.version) {
      // Compiled code must match the leader's build; pure Python usually still works.
      if (t.native && !t.optional)
        failures.push(
          `${t.module} ${m.version} differs from the leader's ${t.version} (compiled code): install ${wanted}`,
        );
      else differences.push(`${t.module} ${m.version} differs from the leader's ${t.version}`);
    }
  }
  if (failures.length > 0) return verdict("fail", [...failures, ...differences].join("; "));
  if (differences.length > 0) return verdict("warn", differences.join("; "));
  return verdict("pass", `${leader.thirdParty.length} third-party module(s) importable`);
}

/**
 * The deploy directory can take a release: writable, with room for about twice the module set
 * plus 16 MiB, and its .pth not serving another project (two projects of one name would swap).
 */
export function deployDirVerdict(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  const need = leader.setBytes * 2 + 16 * 1024 * 1024;
  if (!f.deploy.writable)
    return verdict(
      "fail",
      `${f.deploy.existing} is not writable, so ${f.deploy.path} cannot be created or changed`,
    );
  if (f.deploy.free !== null && f.deploy.free < need)
    return verdict(
      "fail",
      `only ${Math.floor(f.deploy.free / 1048576)} MiB free under ${f.deploy.existing}; the module set needs about ${Math.ceil(need / 1048576)} MiB`,
    );
  if (f.pth.serves !== null && f.pth.serves !== f.pth.expected)
    return verdict(
      "fail",
      `${f.pth.path} serves ${f.pth.serves}, not ${f.pth.expected}: another project or deploy directory uses this name`,
    );
  return verdict("pass", f.deploy.path);
}

/** Whether the node runs the leader's module set; an older one is a warning, since push fixes it. */
export function releaseVerdict(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  if (!f.current) return verdict("warn", "nothing pushed yet");
  if (f.current === leader.releaseId) return verdict("pass", `${f.current} (up to date)`);
  return verdict("warn", `${f.current}, the leader's set is ${leader.releaseId}: push to update`);
}

/**
 * Whether a fresh interpreter on the node loads every top-level name of the set from the project
 * directory. Release roots go before site-packages (the agent's selector.py), so what still wins over
 * them is an import hook or path hack of an older install (an editable finder, an easy-install
 * .pth), under which workers would silently run old code.
 */
export function entryVerdict(
  probe: OriginsProbe,
  topLevel: readonly string[],
  projectDir: string,
  current: string | null,
): Verdict {
  if (probe.error) return { status: "fail", detail: `the venv's python could not be asked: ${probe.error}` };
  const shadowed: string[] = [];
  const missing: string[] = [];
  const byOtherProject: string[] = [];
  const deployDir = projectDir.slice(0, projectDir.lastIndexOf("/"));
  for (const name of topLevel) {
    const o = probe.origins?.[name];
    if (o && "error" in o) shadowed.push(`\`${name}\` fails to load: ${o.error}`);
    else if (!o?.origin) missing.push(name);
    else if (!o.origin.startsWith(`${projectDir}/`)) {
      const other = otherProjectOf(o.origin, deployDir);
      if (other)
        byOtherProject.push(
          `\`import ${name}\` loads the release of project '${other}', which sync-cluster also deployed to this venv`,
        );
      else shadowed.push(`\`import ${name}\` loads ${o.origin}, not the release`);
    }
  }
  if (byOtherProject.length > 0)
    return {
      status: "fail",
      detail: `${byOtherProject.join("; ")}: two projects in one venv provide the same top-level name, and the other one's comes first. Rename the package in one of them, or give each project its own venv`,
    };
  if (shadowed.length > 0)
    return {
      status: "fail",
      detail: `${shadowed.join("; ")}: an older copy installed on the node shadows the workflow, and jobs would run it. Remove that copy (pip uninstall it from the venv, or delete it)`,
    };
  if (missing.length > 0 && current)
    return {
      status: "fail",
      detail: `${missing.join(", ")} cannot be imported on the node although release ${current} is current: push again`,
    };
  // The release check says so already.
  if (missing.length > 0) return { status: "skip", detail: "nothing pushed yet" };
  return { status: "pass", detail: `${topLevel.length} top-level name(s) load from the release` };
}

/** The project whose release `origin` lies in, when it is another project of the same deploy directory. */
function otherProjectOf(origin: string, deployDir: string): string | undefined {
  if (!origin.startsWith(`${deployDir}/`)) return undefined;
  const [project, releases] = origin.slice(deployDir.length + 1).split("/");
  return releases === "releases" ? project : undefined;
}

function entryCheck(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  if (!f.entry || !f.projectDir) return { status: "skip", detail: "not asked" };
  return entryVerdict(f.entry, leader.topLevel, f.projectDir, f.current);
}

/**
 * A grid batch system's job starts `_toil_worker` on the node: looked up along the leader's PATH
 * (Slurm, LSF, HTCondor), along the PATH a login shell sets there (Grid Engine, Torque: the leader's
 * venv never reaches it), or at the absolute path Toil submits with TOIL_CHECK_ENV=True. It must be
 * the node's venv's (so the venv's python runs it and reads its .pth), which must therefore sit at
 * the leader's venv path, and that interpreter must load the workflow from the release.
 */
function toilWorkerCheck(f: NodeCheckFacts, leader: LeaderExpectations): Verdict {
  const probe = f.toilWorker;
  const jobs = leader.jobs;
  if (!probe || !jobs || !f.venv) return { status: "skip", detail: "not asked" };
  const fix = `run \`sync-cluster check --fix\` (it writes ${f.venv}/bin/_toil_worker, which runs the venv's python)`;
  const absoluteFix = (venv: string) =>
    `export TOIL_CHECK_ENV=True on the leader before the run (and before \`sync-cluster check\`), with the leader's venv activated, so that Toil submits ${venv}/bin/_toil_worker; keep the venv at ${venv} on every node`;
  if (jobs.venv === null)
    return {
      status: "fail",
      detail:
        jobs.jobPath === "leader"
          ? "the leader does not run in a virtualenv, so jobs started by a batch system get no venv on their PATH: activate the leader's venv (`. VENV/bin/activate`) before running sync-cluster and the workflow"
          : `the leader does not run in a virtualenv, and ${jobs.scheduler} jobs reach a venv only through the absolute path Toil submits from one: activate the leader's venv (\`. VENV/bin/activate\`) and ${absoluteFix("VENV")}`,
    };
  if (jobs.jobPath === "login-shell" && !jobs.absolute) {
    const runs = probe.found
      ? `${probe.found}${probe.interpreter ? ` under ${probe.interpreter}` : ""}`
      : "no `_toil_worker` at all";
    return {
      status: "fail",
      detail: `${jobs.how}: the leader's PATH, and the venv on it, never reach the job, which finds \`_toil_worker\` on the node's own PATH (here ${runs}), not ${jobs.venv}/bin/_toil_worker, and cannot see the venv: ${absoluteFix(jobs.venv)}`,
    };
  }
  if (f.venv !== jobs.venv)
    return {
      status: "fail",
      detail: jobs.absolute
        ? `Toil submits ${jobs.venv}/bin/_toil_worker (TOIL_CHECK_ENV=True), the leader's venv, but this node's venv is ${f.venv}: put the venv at ${jobs.venv} on every node (\`venv:\` in the inventory)`
        : `the batch system gives jobs the leader's PATH, which starts with ${jobs.venv}/bin, but this node's venv is ${f.venv}: put the venv at ${jobs.venv} on every node (\`venv:\` in the inventory)`,
    };
  if (!probe.found)
    return {
      status: "fail",
      detail: jobs.absolute
        ? `no ${probe.command} on this node, which Toil submits (TOIL_CHECK_ENV=True): ${fix}`
        : `no \`${probe.command}\` on the leader's PATH (${probe.path}) on this node: ${fix}`,
    };
  if (probe.interpreter === null || !probe.interpreter.startsWith(`${f.venv}/bin/`))
    return {
      status: "fail",
      detail: `jobs run ${probe.found}, whose interpreter ${probe.interpreter ?? "(none)"} never reads the venv's .pth and cannot import the workflow: ${fix}, and start the run with the venv activated`,
    };
  const verdict = entryVerdict(probe, leader.topLevel, f.projectDir ?? "", f.current);
  if (verdict.status === "fail")
    return { status: "fail", detail: `${probe.interpreter} (behind ${probe.found}): ${verdict.detail}` };
  return {
    status: "pass",
    detail: `${probe.found} runs ${probe.interpreter}${f.current ? "" : " (it will load the release once pushed)"}`,
  };
}

export function nodePasses(results: readonly CheckResult[]): boolean {
  return results.every((r) => r.status !== "fail");
}
