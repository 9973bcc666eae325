import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jobLaunchOf } from "../../src/core/readiness/job-launch.js";
import {
  type CheckId,
  deployDirVerdict,
  entryVerdict,
  judgeNode,
  type LeaderExpectations,
  type NodeCheckFacts,
  nodePasses,
  pythonVerdict,
  releaseVerdict,
} from "../../src/core/readiness/node-checks.js";

const projectDir = "/srv/sc/deploy/proj";
const release = `${projectDir}/releases/abcdef0123456789abcdef01`;

const healthy = (): NodeCheckFacts => ({
  venvPython: "/srv/sc/venv/bin/python",
  venvIsVenv: true,
  pyvenvCfg: { path: "/srv/sc/venv/pyvenv.cfg", line: 2, value: "true" },
  imports: {
    python: "3.11.2",
    venvSite: "/srv/sc/venv/lib/python3.11/site-packages",
    toil: { found: true, origin: "/usr/lib/python3/dist-packages/toil/__init__.py", version: "5.9.0" },
    modules: {},
  },
  deploy: { path: projectDir, existing: projectDir, writable: true, free: 1 << 30 },
  pth: {
    path: "/srv/sc/venv/lib/python3.11/site-packages/sync-cluster-proj.pth",
    expected: projectDir,
    serves: projectDir,
  },
  current: "abcdef0123456789abcdef01",
  releases: [],
  venv: "/srv/sc/venv",
  projectDir,
  entry: {
    origins: {
      workflow: { origin: `${release}/workflow/__init__.py`, real: "/x" },
      util: { origin: `${release}/util/__init__.py`, real: "/y" },
    },
  },
  toilWorker: {
    command: "_toil_worker",
    path: "/srv/sc/venv/bin:/usr/bin:/bin",
    found: "/srv/sc/venv/bin/_toil_worker",
    ours: true,
    interpreter: "/srv/sc/venv/bin/python",
    origins: {
      workflow: { origin: `${release}/workflow/__init__.py`, real: "/x" },
      util: { origin: `${release}/util/__init__.py`, real: "/y" },
    },
  },
});

const leader: LeaderExpectations = {
  venv: "/srv/sc/venv",
  pythonVersion: "3.11.2",
  toilVersion: "5.9.0",
  thirdParty: [],
  releaseId: "abcdef0123456789abcdef01",
  setBytes: 100,
  topLevel: ["util", "workflow"],
  jobs: jobLaunchOf({
    batchSystem: "slurm",
    leaderVenv: "/srv/sc/venv",
    leaderPath: "/usr/bin:/bin",
    toilCheckEnv: false,
  })!,
};

const verdict = (facts: NodeCheckFacts, id: CheckId, expect: LeaderExpectations = leader) =>
  judgeNode(facts, expect).find((r) => r.id === id)!;

describe("node checks: Toil on a batch system", () => {
  test("a node set up for Slurm passes every check", () => {
    const results = judgeNode(healthy(), leader);
    assert.ok(nodePasses(results), JSON.stringify(results.filter((r) => r.status !== "pass")));
    assert.equal(
      verdict(healthy(), "toilWorker").detail,
      "/srv/sc/venv/bin/_toil_worker runs /srv/sc/venv/bin/python",
    );
  });

  test("jobs that would run /usr/bin/_toil_worker under the system python fail, naming it and the fix", () => {
    const f = healthy();
    f.toilWorker = {
      ...f.toilWorker!,
      found: "/usr/bin/_toil_worker",
      ours: false,
      interpreter: "/usr/bin/python3",
    };
    const v = verdict(f, "toilWorker");
    assert.equal(v.status, "fail");
    assert.match(
      v.detail,
      /jobs run \/usr\/bin\/_toil_worker, whose interpreter \/usr\/bin\/python3 never reads the venv's \.pth/,
    );
    assert.match(v.detail, /sync-cluster check --fix` \(it writes \/srv\/sc\/venv\/bin\/_toil_worker/);
  });

  test("no _toil_worker anywhere on the leader's PATH", () => {
    const f = healthy();
    f.toilWorker = { ...f.toilWorker!, found: null, interpreter: null };
    assert.match(
      verdict(f, "toilWorker").detail,
      /no `_toil_worker` on the leader's PATH \(\/srv\/sc\/venv\/bin:\/usr\/bin:\/bin\)/,
    );
  });

  test("a venv at another path than the leader's fails: the scheduler copies the leader's PATH", () => {
    const f = healthy();
    f.venv = "/home/u/venv";
    const v = verdict(f, "toilWorker");
    assert.equal(v.status, "fail");
    assert.match(v.detail, /starts with \/srv\/sc\/venv\/bin, but this node's venv is \/home\/u\/venv/);
  });

  test("a leader that runs no venv fails every node's Toil worker check", () => {
    const v = verdict(healthy(), "toilWorker", { ...leader, jobs: { ...leader.jobs!, venv: null } });
    assert.equal(v.status, "fail");
    assert.match(v.detail, /the leader does not run in a virtualenv/);
  });

  test("the interpreter behind _toil_worker finds the workflow outside the release", () => {
    const f = healthy();
    f.toilWorker = {
      ...f.toilWorker!,
      origins: { ...f.toilWorker!.origins, workflow: { origin: "/old/workflow/__init__.py", real: null } },
    };
    const v = verdict(f, "toilWorker");
    assert.equal(v.status, "fail");
    assert.match(v.detail, /`import workflow` loads \/old\/workflow\/__init__\.py, not the release/);
  });

  test("nothing pushed yet: the worker command is right, the release is still to come", () => {
    const f = healthy();
    f.current = null;
    f.entry = { origins: { workflow: null, util: null } };
    f.toilWorker = { ...f.toilWorker!, origins: { workflow: null, util: null } };
    assert.equal(verdict(f, "toilWorker").status, "pass");
    assert.match(verdict(f, "toilWorker").detail, /once pushed/);
    assert.equal(verdict(f, "entry").status, "skip");
  });

  test("other batch systems, or a check that was not asked, skip the Toil worker check", () => {
    const { jobs: _, ...noJobs } = leader;
    assert.equal(verdict(healthy(), "toilWorker", noJobs).status, "skip");
  });
});

describe("node checks: Toil and the entry module", () => {
  test("Toil reinstalled in the venv: a warning at the leader's version, a failure at another", () => {
    const f = healthy();
    f.imports!.toil = { found: true, origin: `${f.imports!.venvSite}/toil/__init__.py`, version: "5.9.0" };
    assert.equal(verdict(f, "toil").status, "warn");
    f.imports!.toil.version = "5.12.0";
    const v = verdict(f, "toil");
    assert.equal(v.status, "fail");
    assert.match(
      v.detail,
      /Toil 5\.12\.0 was reinstalled inside the venv .*unlike the leader's 5\.9\.0.*pip uninstall toil/,
    );
  });

  test("an installed copy that shadows the release fails the entry check, naming the file", () => {
    const v = entryVerdict(
      {
        origins: {
          workflow: { origin: "/srv/sc/venv/lib/python3.11/site-packages/workflow/__init__.py", real: null },
        },
      },
      ["workflow"],
      projectDir,
      "abcdef0123456789abcdef01",
    );
    assert.equal(v.status, "fail");
    assert.match(
      v.detail,
      /`import workflow` loads \/srv\/sc\/venv\/lib\/python3\.11\/site-packages\/workflow\/__init__\.py, not the release/,
    );
  });

  test("a name another project deployed to the same venv also provides is named as that project, not as an installed copy", () => {
    const other = `${projectDir.slice(0, projectDir.lastIndexOf("/"))}/other_project`;
    const v = entryVerdict(
      {
        origins: {
          util: { origin: `${other}/releases/0123456789abcdef01234567/util/__init__.py`, real: null },
        },
      },
      ["util"],
      projectDir,
      "abcdef0123456789abcdef01",
    );
    assert.equal(v.status, "fail");
    assert.match(
      v.detail,
      /`import util` loads the release of project 'other_project', which sync-cluster also deployed/,
    );
    assert.match(v.detail, /give each project its own venv/);
    assert.doesNotMatch(v.detail, /pip uninstall/);
  });

  test("a name missing although a release is current, a name that fails to load, an unanswered probe", () => {
    const current = "abcdef0123456789abcdef01";
    assert.match(
      entryVerdict({ origins: { util: null } }, ["util"], projectDir, current).detail,
      /push again/,
    );
    assert.match(
      entryVerdict({ origins: { util: { error: "ValueError: bad" } } }, ["util"], projectDir, current).detail,
      /`util` fails to load: ValueError: bad/,
    );
    assert.equal(entryVerdict({ error: "timed out" }, ["util"], projectDir, current).status, "fail");
    // A directory whose name merely starts like the project directory is not inside it.
    assert.equal(
      entryVerdict(
        { origins: { util: { origin: `${projectDir}2/util/__init__.py`, real: null } } },
        ["util"],
        projectDir,
        current,
      ).status,
      "fail",
    );
  });

  test("a .pth that serves another project directory fails the deploy dir check", () => {
    const f = healthy();
    f.pth.serves = "/other/deploy/proj";
    assert.match(verdict(f, "deployDir").detail, /serves \/other\/deploy\/proj, not \/srv\/sc\/deploy\/proj/);
  });
});

describe("job launch", () => {
  test("grid batch systems find _toil_worker through the leader's PATH, the venv's bin first", () => {
    assert.deepEqual(
      jobLaunchOf({
        batchSystem: "slurm",
        leaderVenv: "/srv/sc/venv/",
        leaderPath: "/usr/bin:/srv/sc/venv/bin:/bin",
        toilCheckEnv: false,
      }),
      {
        command: "_toil_worker",
        path: "/srv/sc/venv/bin:/usr/bin:/bin",
        venv: "/srv/sc/venv",
        scheduler: "Slurm",
        jobPath: "leader",
        absolute: false,
        how: "sbatch --export=ALL gives each job the leader's environment, PATH included",
      },
    );
  });

  test("TOIL_CHECK_ENV=True makes Toil submit the absolute path in the leader's venv", () => {
    assert.equal(
      jobLaunchOf({ batchSystem: "lsf", leaderVenv: "/v", leaderPath: "/usr/bin", toilCheckEnv: true })
        ?.command,
      "/v/bin/_toil_worker",
    );
  });

  test("no venv on the leader: the PATH as it is; other batch systems: nothing to check", () => {
    const launch = jobLaunchOf({
      batchSystem: "lsf",
      leaderVenv: null,
      leaderPath: "/usr/bin:/bin",
      toilCheckEnv: true,
    });
    assert.deepEqual(
      { command: launch?.command, path: launch?.path, venv: launch?.venv },
      { command: "_toil_worker", path: "/usr/bin:/bin", venv: null },
    );
    for (const batchSystem of ["single_machine", "kubernetes", "mesos", "aws_batch"] as const)
      assert.equal(
        jobLaunchOf({ batchSystem, leaderVenv: "/v", leaderPath: "/usr/bin", toilCheckEnv: false }),
        undefined,
      );
  });
});

describe("each check decided on its own", () => {
  test("the deploy directory needs about twice the set plus 16 MiB free", () => {
    const facts = healthy();
    const big = { ...leader, setBytes: 100 * 1048576 };
    assert.equal(
      deployDirVerdict({ ...facts, deploy: { ...facts.deploy, free: 216 * 1048576 } }, big).status,
      "pass",
    );
    const short = deployDirVerdict({ ...facts, deploy: { ...facts.deploy, free: 215 * 1048576 } }, big);
    assert.equal(short.status, "fail");
    assert.match(short.detail, /only 215 MiB free .* needs about 216 MiB/);
  });

  test("a .pth serving another directory fails the deploy directory even with room", () => {
    const facts = healthy();
    const taken = deployDirVerdict({ ...facts, pth: { ...facts.pth, serves: "/elsewhere/proj" } }, leader);
    assert.equal(taken.status, "fail");
    assert.match(taken.detail, /serves \/elsewhere\/proj/);
  });

  test("python: another patch level warns, another minor fails, no answer skips", () => {
    const withPython = (python: string | undefined): NodeCheckFacts => ({
      ...healthy(),
      imports: { ...healthy().imports, ...(python ? { python } : { python: undefined }) },
    });
    assert.equal(pythonVerdict(withPython("3.11.2"), leader).status, "pass");
    assert.equal(pythonVerdict(withPython("3.11.9"), leader).status, "warn");
    assert.equal(pythonVerdict(withPython("3.12.0"), leader).status, "fail");
    assert.equal(pythonVerdict(withPython(undefined), leader).status, "skip");
  });

  test("release: up to date passes, another release or none warns", () => {
    assert.equal(releaseVerdict(healthy(), leader).status, "pass");
    assert.equal(releaseVerdict({ ...healthy(), current: "0".repeat(24) }, leader).status, "warn");
    assert.equal(releaseVerdict({ ...healthy(), current: null }, leader).detail, "nothing pushed yet");
  });
});
