import type { ThirdPartyModule } from "./import-classification.js";

/**
 * `sync-cluster check`: judges what a node reported (src/worker/agent.py, op_check) against the
 * leader. Pure: the agent gathers facts in one request, the verdicts are decided here.
 */

export type CheckStatus = "pass" | "warn" | "fail" | "skip";
export type CheckId = "venv" | "systemSite" | "python" | "toil" | "imports" | "deployDir" | "release";

export const CHECK_TITLES: Record<CheckId, string> = {
  venv: "venv",
  systemSite: "system-site",
  python: "python",
  toil: "toil",
  imports: "imports",
  deployDir: "deploy dir",
  release: "release",
};

export interface CheckResult {
  id: CheckId;
  status: CheckStatus;
  detail: string;
}

interface ImportProbe {
  found: boolean;
  origin?: string | null;
  version?: string | null;
  error?: string;
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
  pth: { path: string | null; expected: string; content: string | null };
  current: string | null;
  releases: { id: string; time: number }[];
}

export interface LeaderExpectations {
  venv: string;
  pythonVersion: string;
  toilVersion: string | null;
  thirdParty: readonly ThirdPartyModule[];
  releaseId: string;
  setBytes: number;
}

const minor = (v: string) => v.split(".").slice(0, 2).join(".");

export function judgeNode(f: NodeCheckFacts, leader: LeaderExpectations): CheckResult[] {
  const results: CheckResult[] = [];
  const add = (id: CheckId, status: CheckStatus, detail: string) => results.push({ id, status, detail });

  if (!f.venvPython) {
    add(
      "venv",
      "fail",
      `no virtualenv at ${leader.venv} (no bin/python): create it with \`python3 -m venv --system-site-packages ${leader.venv}\` or run \`sync-cluster check --fix\``,
    );
  } else if (!f.venvIsVenv) {
    add("venv", "fail", `${leader.venv} has a bin/python but no pyvenv.cfg: it is not a virtualenv`);
  } else if (f.imports?.error && !f.imports.python) {
    add("venv", "fail", `${f.venvPython} does not run: ${f.imports.error}`);
  } else {
    add("venv", "pass", f.venvPython);
  }

  const cfg = f.pyvenvCfg;
  if (!f.venvIsVenv) add("systemSite", "skip", "no virtualenv");
  else if (cfg.value === "true") add("systemSite", "pass", `${cfg.path}:${cfg.line}`);
  else {
    const where = cfg.line
      ? `${cfg.path}:${cfg.line} says include-system-site-packages = ${cfg.value}`
      : `${cfg.path} has no include-system-site-packages line`;
    add(
      "systemSite",
      "fail",
      `${where}: the venv cannot see the system's Toil and native libraries. Recreate it with --system-site-packages or run \`sync-cluster check --fix\``,
    );
  }

  const nodePython = f.imports?.python;
  if (!nodePython) add("python", "skip", "the venv's python did not answer");
  else if (minor(nodePython) !== minor(leader.pythonVersion)) {
    add(
      "python",
      "fail",
      `Python ${nodePython} on the node, ${leader.pythonVersion} on the leader: pickled jobs and compiled modules need the same major.minor`,
    );
  } else if (nodePython !== leader.pythonVersion) {
    add("python", "warn", `Python ${nodePython} on the node, ${leader.pythonVersion} on the leader`);
  } else add("python", "pass", nodePython);

  const toil = f.imports?.toil;
  const venvSite = f.imports?.venvSite;
  if (!toil) add("toil", "skip", "the venv's python did not answer");
  else if (!toil.found)
    add(
      "toil",
      "fail",
      `\`import toil\` fails in the venv${toil.error ? ` (${toil.error})` : ""}: install Toil system-wide on the node`,
    );
  else if (venvSite && toil.origin?.startsWith(`${venvSite}/`)) {
    add(
      "toil",
      "warn",
      `Toil was reinstalled inside the venv (${toil.origin}); it should come from the system. Uninstall it from the venv: ${leader.venv}/bin/pip uninstall toil`,
    );
  } else if (leader.toilVersion && toil.version && toil.version !== leader.toilVersion) {
    add(
      "toil",
      "fail",
      `Toil ${toil.version} on the node, ${leader.toilVersion} on the leader: install the same version`,
    );
  } else add("toil", "pass", `${toil.version ?? "?"} (${toil.origin ?? "?"})`);

  const modules = f.imports?.modules;
  if (!modules) add("imports", "skip", "the venv's python did not answer");
  else {
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
    if (failures.length > 0) add("imports", "fail", [...failures, ...differences].join("; "));
    else if (differences.length > 0) add("imports", "warn", differences.join("; "));
    else add("imports", "pass", `${leader.thirdParty.length} third-party module(s) importable`);
  }

  const need = leader.setBytes * 2 + 16 * 1024 * 1024;
  if (!f.deploy.writable)
    add(
      "deployDir",
      "fail",
      `${f.deploy.existing} is not writable, so ${f.deploy.path} cannot be created or changed`,
    );
  else if (f.deploy.free !== null && f.deploy.free < need) {
    add(
      "deployDir",
      "fail",
      `only ${Math.floor(f.deploy.free / 1048576)} MiB free under ${f.deploy.existing}; the module set needs about ${Math.ceil(need / 1048576)} MiB`,
    );
  } else if (f.pth.content !== null && f.pth.content !== f.pth.expected) {
    add(
      "deployDir",
      "fail",
      `${f.pth.path} points at ${f.pth.content}, not at ${f.pth.expected}: another project or deploy directory uses this name`,
    );
  } else add("deployDir", "pass", f.deploy.path);

  if (!f.current) add("release", "warn", "nothing pushed yet");
  else if (f.current === leader.releaseId) add("release", "pass", `${f.current} (up to date)`);
  else add("release", "warn", `${f.current}, the leader's set is ${leader.releaseId}: push to update`);
  return results;
}

export function nodePasses(results: readonly CheckResult[]): boolean {
  return results.every((r) => r.status !== "fail");
}
