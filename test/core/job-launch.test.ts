import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GRID_BATCH_SYSTEMS } from "../../src/core/inventory/batch-systems.js";
import { jobLaunchOf, LOGIN_SHELL_PATH, SCHEDULER_LAUNCH } from "../../src/core/readiness/job-launch.js";
import {
  judgeNode,
  type LeaderExpectations,
  type NodeCheckFacts,
  nodePasses,
} from "../../src/core/readiness/node-checks.js";

/**
 * The rule `check` applies per batch system: where a job's command is looked up (the leader's PATH
 * or a login shell's), and whether Toil submits the absolute path of the venv's `_toil_worker`
 * (TOIL_CHECK_ENV=True). Grid Engine's is also shown on a real cluster (test/toil/grid-engine.test.ts);
 * LSF's, HTCondor's and Torque's come from Toil 5.9's submission code and their documentation.
 */

const VENV = "/srv/sc/venv";
const projectDir = "/srv/sc/deploy/proj";
const release = `${projectDir}/releases/abcdef0123456789abcdef01`;
const fromRelease = {
  workflow: { origin: `${release}/workflow/__init__.py`, real: "/x" },
  util: { origin: `${release}/util/__init__.py`, real: "/y" },
};

/** A node whose venv is set up and pushed; `found` is what the job's lookup of `command` finds. */
function node(
  command: string,
  path: string,
  found: string | null,
  interpreter: string | null,
): NodeCheckFacts {
  return {
    venvPython: `${VENV}/bin/python`,
    venvIsVenv: true,
    pyvenvCfg: { path: `${VENV}/pyvenv.cfg`, line: 2, value: "true" },
    imports: {
      python: "3.11.2",
      venvSite: `${VENV}/lib/python3.11/site-packages`,
      toil: { found: true, origin: "/usr/lib/python3/dist-packages/toil/__init__.py", version: "5.9.0" },
      modules: {},
    },
    deploy: { path: projectDir, existing: projectDir, writable: true, free: 1 << 30 },
    pth: {
      path: `${VENV}/lib/python3.11/site-packages/sync-cluster-proj.pth`,
      expected: projectDir,
      serves: projectDir,
    },
    current: "abcdef0123456789abcdef01",
    releases: [],
    venv: VENV,
    projectDir,
    entry: { origins: fromRelease },
    toilWorker: {
      command,
      path,
      found,
      ours: found?.startsWith(VENV) ?? false,
      interpreter,
      ...(interpreter?.startsWith(VENV) ? { origins: fromRelease } : {}),
    },
  };
}

function leaderWith(
  batchSystem: (typeof GRID_BATCH_SYSTEMS)[number],
  toilCheckEnv: boolean,
): LeaderExpectations {
  return {
    venv: VENV,
    pythonVersion: "3.11.2",
    toilVersion: "5.9.0",
    thirdParty: [],
    releaseId: "abcdef0123456789abcdef01",
    setBytes: 100,
    topLevel: ["util", "workflow"],
    jobs: jobLaunchOf({
      batchSystem,
      leaderVenv: VENV,
      leaderPath: `${VENV}/bin:/usr/bin:/bin`,
      toilCheckEnv,
    })!,
  };
}

/** What the node's lookup finds for this launch: the venv's worker where the venv is on the path. */
function nodeFor(leader: LeaderExpectations): NodeCheckFacts {
  const jobs = leader.jobs!;
  if (jobs.absolute) return node(jobs.command, jobs.path, jobs.command, `${VENV}/bin/python`);
  if (jobs.path.split(":").includes(`${VENV}/bin`))
    return node(jobs.command, jobs.path, `${VENV}/bin/_toil_worker`, `${VENV}/bin/python`);
  return node(jobs.command, jobs.path, "/usr/bin/_toil_worker", "/usr/bin/python3");
}

const toilWorker = (leader: LeaderExpectations, facts = nodeFor(leader)) =>
  judgeNode(facts, leader).find((r) => r.id === "toilWorker")!;

describe("how each batch system starts _toil_worker", () => {
  test("Slurm, LSF and HTCondor look it up on the leader's PATH (venv first); Grid Engine and Torque on a login shell's", () => {
    const byPath = Object.fromEntries(GRID_BATCH_SYSTEMS.map((b) => [b, SCHEDULER_LAUNCH[b].path]));
    assert.deepEqual(byPath, {
      slurm: "leader",
      grid_engine: "login-shell",
      gridengine: "login-shell",
      lsf: "leader",
      torque: "login-shell",
      htcondor: "leader",
    });
    for (const b of ["slurm", "lsf", "htcondor"] as const)
      assert.equal(leaderWith(b, false).jobs!.path, `${VENV}/bin:/usr/bin:/bin`, b);
    for (const b of ["grid_engine", "gridengine", "torque"] as const)
      assert.equal(leaderWith(b, false).jobs!.path, LOGIN_SHELL_PATH, b);
  });

  test("without TOIL_CHECK_ENV, a node is ready for Slurm, LSF and HTCondor, never for Grid Engine or Torque", () => {
    for (const b of ["slurm", "lsf", "htcondor"] as const) {
      const leader = leaderWith(b, false);
      assert.ok(nodePasses(judgeNode(nodeFor(leader), leader)), b);
    }
    for (const b of ["grid_engine", "gridengine", "torque"] as const) {
      const leader = leaderWith(b, false);
      const v = toilWorker(leader);
      assert.equal(v.status, "fail", b);
      assert.match(v.detail, /export TOIL_CHECK_ENV=True on the leader before the run/);
      assert.match(
        v.detail,
        /Toil submits \/srv\/sc\/venv\/bin\/_toil_worker; keep the venv at \/srv\/sc\/venv on every node/,
      );
      assert.match(v.detail, /here \/usr\/bin\/_toil_worker under \/usr\/bin\/python3/);
    }
    assert.match(
      toilWorker(leaderWith("grid_engine", false)).detail,
      /^qsub -V -b y carries the leader's variables but runs the command through the queue's shell as a login shell/,
    );
    assert.match(
      toilWorker(leaderWith("torque", false)).detail,
      /^qsub -V -S \/bin\/sh .* pbs_mom starts the job's shell as a login shell/,
    );
  });

  test("a login shell that happened to find the venv's worker is still not trusted: its PATH is the node's to set", () => {
    const leader = leaderWith("grid_engine", false);
    const lucky = node("_toil_worker", LOGIN_SHELL_PATH, `${VENV}/bin/_toil_worker`, `${VENV}/bin/python`);
    assert.equal(toilWorker(leader, lucky).status, "fail");
  });

  test("with TOIL_CHECK_ENV=True every batch system runs the venv's _toil_worker by its absolute path: ready", () => {
    for (const b of GRID_BATCH_SYSTEMS) {
      const leader = leaderWith(b, true);
      assert.equal(leader.jobs!.command, `${VENV}/bin/_toil_worker`, b);
      const results = judgeNode(nodeFor(leader), leader);
      assert.ok(nodePasses(results), `${b}: ${JSON.stringify(results.filter((r) => r.status === "fail"))}`);
      assert.equal(toilWorker(leader).detail, `${VENV}/bin/_toil_worker runs ${VENV}/bin/python`);
    }
  });

  test("TOIL_CHECK_ENV=True: a node whose venv is elsewhere, or lacks the worker, fails with Grid Engine's fix", () => {
    const leader = leaderWith("grid_engine", true);
    const elsewhere = { ...nodeFor(leader), venv: "/opt/venv" };
    assert.match(
      toilWorker(leader, elsewhere).detail,
      /^Toil submits \/srv\/sc\/venv\/bin\/_toil_worker \(TOIL_CHECK_ENV=True\), the leader's venv, but this node's venv is \/opt\/venv: put the venv at \/srv\/sc\/venv on every node/,
    );
    const missing = node(leader.jobs!.command, leader.jobs!.path, null, null);
    assert.match(
      toilWorker(leader, missing).detail,
      /^no \/srv\/sc\/venv\/bin\/_toil_worker on this node, which Toil submits \(TOIL_CHECK_ENV=True\): run `sync-cluster check --fix`/,
    );
  });

  test("TOIL_CHECK_ENV=True on a leader outside any venv changes nothing: Toil submits the bare name", () => {
    const launch = jobLaunchOf({
      batchSystem: "grid_engine",
      leaderVenv: null,
      leaderPath: "/usr/bin:/bin",
      toilCheckEnv: true,
    })!;
    assert.equal(launch.command, "_toil_worker");
    assert.equal(launch.absolute, false);
    const leader = { ...leaderWith("grid_engine", true), jobs: launch };
    assert.match(
      toilWorker(leader).detail,
      /Grid Engine jobs reach a venv only through the absolute path Toil submits from one/,
    );
  });
});
