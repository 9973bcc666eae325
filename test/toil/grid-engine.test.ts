import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type CliRun, runCli, startCli } from "../fixtures/cli.js";
import { makePackageProject, QUICK_SORT, SYSTEM_PYTHON, writeTree } from "../fixtures/projects.js";
import {
  type JobReport,
  REPORTING_WORKFLOW,
  type ToilRun,
  toilRunOnGridEngine,
} from "../fixtures/reporting-workflow.js";
import {
  type GridEngineCluster,
  startGridEngineCluster,
  whyGridEngineUnavailable,
} from "../harness/grid-engine-cluster.js";

/**
 * Toil on a real Grid Engine cluster (Toil's `--batchSystem grid_engine`; the exec hosts g1 and g2
 * are network, UTS and mount namespaces with their own address, hostname and private /srv/sc).
 * Grid Engine runs a job's command under a login shell, so the leader's PATH and its venv never
 * reach it: only TOIL_CHECK_ENV=True (Toil then submits the venv's _toil_worker by its absolute
 * path) makes jobs run the venv's python. `check` says so, and is ready only then.
 */

const skip = whyGridEngineUnavailable();
if (skip && process.env.CI === "true") throw new Error(`CI must run the Grid Engine tests: ${skip}`);

/** The workflow of the Slurm tests, whose jobs also import a module installed only in each node's venv. */
const WORKFLOW = REPORTING_WORKFLOW.replace(
  "import util.sort.quick as quick\n",
  "import util.sort.quick as quick\nimport venvonly\n",
).replace(
  '"sorted": quick.quick_sort([3, 1, 2])}',
  '"sorted": quick.quick_sort([3, 1, 2]), "venvonly": venvonly.__file__}',
);

type Report = JobReport & { venvonly: string };

interface CheckDoc {
  nodes: { node: string; results: { id: string; status: string; detail: string }[]; fixed: string[] }[];
}

describe("Toil with --batchSystem grid_engine on a real Grid Engine cluster", {
  skip,
  timeout: 600_000,
}, () => {
  let cluster: GridEngineCluster;
  let project: string;
  let inventory: string;

  before(async () => {
    assert.notEqual(WORKFLOW, REPORTING_WORKFLOW);
    assert.match(WORKFLOW, /"venvonly": venvonly\.__file__/);
    cluster = await startGridEngineCluster({ nodes: 2, slots: 1 });
    project = join(cluster.leader.privateDir, "my_project");
    await makePackageProject(project);
    await writeTree(project, {
      "workflow/main.py": WORKFLOW,
      "util/sort/quick.py": `${QUICK_SORT}\nVERSION = 1\n`,
    });
    for (const n of [cluster.leader, ...cluster.nodes]) {
      const lib = join(n.privateDir, "venv/lib");
      const python = readdirSync(lib).find((d) => d.startsWith("python3."));
      assert.ok(python, `no python3.X in ${lib}`);
      await writeFile(join(lib, python, "site-packages", "venvonly.py"), "");
      // qsub -cwd starts each job in the leader's working directory; on a real cluster that is a
      // shared home. Here it is an empty directory: no code of the project is on the exec hosts.
      if (n !== cluster.leader) await mkdir(join(n.privateDir, "my_project"));
    }
    inventory = cluster.writeInventory({
      project: {
        root: project,
        entry: "-m workflow.main",
        name: "my_project",
        python: SYSTEM_PYTHON,
        batchSystem: "grid_engine",
      },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  const sc = (args: string[], env: Record<string, string> = {}): Promise<CliRun> =>
    runCli([...args, "-i", inventory], project, env);

  async function currentRelease(): Promise<string> {
    const status = await sc(["status", "--json"]);
    return (JSON.parse(status.stdout) as { leaderRelease: string }).leaderRelease;
  }

  /** Every job ran on an exec host, both of them, with the venv's python, the venv-only module and `release`. */
  function assertFromRelease(run: ToilRun, release: string, version: number): void {
    assert.equal(run.code, 0, run.log);
    const jobs = run.jobs as Report[];
    assert.equal(jobs.length, 4);
    for (const j of jobs) {
      assert.ok(["g1", "g2"].includes(j.host), `${j.tag} ran on ${j.host}`);
      assert.equal(j.python, "/srv/sc/venv/bin/python", j.tag);
      assert.match(j.venvonly, /^\/srv\/sc\/venv\/lib\/python3\.\d+\/site-packages\/venvonly\.py$/, j.tag);
      assert.equal(j.file, `/srv/sc/deploy/my_project/releases/${release}/util/sort/quick.py`, j.tag);
      assert.equal(j.release, `my_project:${release}`, j.tag);
      assert.equal(j.version, version, j.tag);
      assert.deepEqual(j.sorted, [1, 2, 3]);
    }
    assert.ok(new Set(jobs.map((j) => j.host)).size >= 2, `every job ran on ${jobs[0]?.host}`);
  }

  const workerVerdicts = (run: CliRun) =>
    (JSON.parse(run.stdout) as CheckDoc).nodes.map((n) => ({
      node: n.node,
      ...n.results.find((r) => r.id === "toilWorker")!,
    }));

  test("before a push the jobs fail on the exec hosts: the module is missing there", async () => {
    const run = await toilRunOnGridEngine(cluster);
    assert.notEqual(run.code, 0);
    assert.match(run.log, /No module named '(workflow|util|venvonly)'/);
  });

  test("check: not ready without TOIL_CHECK_ENV=True, even after --fix and a push, whose jobs do run /usr/bin/python3; ready with it, and every job runs the venv's python", async () => {
    const fixed = await sc(["check", "--fix"]);
    assert.match(fixed.stdout, /fixed: wrote \/srv\/sc\/venv\/bin\/_toil_worker/);
    const push = await sc(["push"]);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assert.match(push.stdout, /3 node\(s\) converged/);

    const without = await sc(["check", "--json"]);
    assert.equal(without.code, 1, without.stdout + without.stderr);
    for (const v of workerVerdicts(without)) {
      assert.equal(v.status, "fail", `${v.node}: ${v.detail}`);
      assert.match(v.detail, /runs the command through the queue's shell as a login shell/);
      assert.match(v.detail, /here \/usr\/bin\/_toil_worker under \/usr\/bin\/python3/);
      assert.match(
        v.detail,
        /export TOIL_CHECK_ENV=True on the leader before the run .* so that Toil submits \/srv\/sc\/venv\/bin\/_toil_worker; keep the venv at \/srv\/sc\/venv on every node/,
      );
    }
    // What check refused: the jobs run /usr/bin/_toil_worker under the system python.
    const failing = await toilRunOnGridEngine(cluster, { toilCheckEnv: false });
    assert.notEqual(failing.code, 0);
    assert.match(failing.log, /No module named '(workflow|util|venvonly)'/);

    const withEnv = await sc(["check", "--json"], { TOIL_CHECK_ENV: "True" });
    assert.equal(withEnv.code, 0, withEnv.stdout + withEnv.stderr);
    for (const v of workerVerdicts(withEnv)) {
      assert.equal(v.status, "pass", `${v.node}: ${v.detail}`);
      assert.equal(v.detail, "/srv/sc/venv/bin/_toil_worker runs /srv/sc/venv/bin/python");
    }
    assertFromRelease(await toilRunOnGridEngine(cluster), await currentRelease(), 1);
  });

  test("after an edit and a push, the next run imports the new code", async () => {
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 2\n`);
    const push = await sc(["push"]);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assertFromRelease(await toilRunOnGridEngine(cluster), await currentRelease(), 2);
  });

  test("a push in the middle of a run: the run's later jobs still import the release it started with", async () => {
    const startedWith = await currentRelease();
    const gate = join(cluster.shared, "gate");
    const running = toilRunOnGridEngine(cluster, { extra: `--gate ${gate} --jobs 2 --waves 2` });
    // Both first-wave jobs are running (each holds an exec host's only slot) before the push.
    const deadline = Date.now() + 120_000;
    while (!(existsSync(`${gate}.a0`) && existsSync(`${gate}.a1`))) {
      assert.ok(Date.now() < deadline, "the first wave never started");
      await new Promise((r) => setTimeout(r, 200));
    }
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 3\n`);
    const push = await sc(["push"]);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    const pushed = await currentRelease();
    assert.notEqual(pushed, startedWith);
    await writeFile(gate, "");
    const run = await running;
    assert.equal(run.code, 0, run.log);
    assert.equal(run.jobs.length, 4);
    for (const j of run.jobs) {
      assert.equal(j.version, 2, `${j.tag} on ${j.host} imported ${j.file}`);
      assert.equal(j.release, `my_project:${startedWith}`);
    }
    assert.ok(
      run.jobs.some((j) => j.tag.startsWith("b")),
      "the second wave ran after the push",
    );
  });

  test("under watch, a save reaches every node and the next run imports it", async () => {
    const watch = startCli(["watch", "--json", "-i", inventory], project);
    const events: { type: string; node?: string; release?: string }[] = [];
    let buffered = "";
    watch.child.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
    });
    try {
      await new Promise((r) => setTimeout(r, 500));
      const before = events.filter((e) => e.type === "release").length;
      await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 4\n`);
      const deadline = Date.now() + 60_000;
      let release: string | undefined;
      for (;;) {
        const releases = events.filter((e) => e.type === "release");
        const want = releases.length > before ? releases.at(-1)?.release : undefined;
        const synced = new Set(
          events.filter((e) => e.type === "node-synced" && e.release === want).map((e) => e.node),
        );
        if (want && synced.size === 3) {
          release = want;
          break;
        }
        assert.ok(Date.now() < deadline, `not every node synced: ${JSON.stringify(events.slice(-8))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assertFromRelease(await toilRunOnGridEngine(cluster), release, 4);
    } finally {
      watch.child.kill("SIGINT");
      await watch.exited;
    }
  });
});
