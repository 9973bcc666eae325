import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BIN, type CliRun, runCli } from "../fixtures/cli.js";
import { makePackageProject, QUICK_SORT, SYSTEM_PYTHON, writeTree } from "../fixtures/projects.js";
import {
  type JobReport,
  REPORTING_WORKFLOW,
  type ToilRun,
  toilRunOnSlurm,
} from "../fixtures/reporting-workflow.js";
import { type SlurmCluster, startSlurmCluster, whySlurmUnavailable } from "../harness/slurm-cluster.js";

/**
 * Toil on a real Slurm cluster (Toil's `--batchSystem slurm`; the nodes are namespaces with their
 * own hostname and a private /srv/sc): the jobs Slurm starts on other nodes import the pushed
 * release, through the PATH Slurm copies from the leader, one release per run.
 */

const skip = whySlurmUnavailable();

describe("Toil with --batchSystem slurm on a real Slurm cluster", { skip, timeout: 900_000 }, () => {
  let cluster: SlurmCluster;
  let project: string;
  let inventory: string;

  before(async () => {
    cluster = await startSlurmCluster({ nodes: 3, cpus: 1, memoryMb: 1000 });
    project = join(cluster.leader.privateDir, "my_project");
    await makePackageProject(project);
    await writeTree(project, {
      "workflow/main.py": REPORTING_WORKFLOW,
      "util/sort/quick.py": `${QUICK_SORT}\nVERSION = 1\n`,
    });
    inventory = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "my_project", python: SYSTEM_PYTHON },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  const sc = (...args: string[]): Promise<CliRun> => runCli([...args, "-i", inventory], project);

  const toilRun = (extra = ""): Promise<ToilRun> => toilRunOnSlurm(cluster, extra);

  async function currentRelease(): Promise<string> {
    const status = await sc("status", "--json");
    return (JSON.parse(status.stdout) as { leaderRelease: string }).leaderRelease;
  }

  /** Every job ran on a compute node, at least two of them, with the venv's python, from `release`. */
  function assertFromRelease(jobs: JobReport[], release: string, version: number): void {
    assert.equal(jobs.length, 4);
    for (const j of jobs) {
      assert.ok(["n1", "n2", "n3"].includes(j.host), `${j.tag} ran on ${j.host}`);
      assert.equal(j.file, `/srv/sc/deploy/my_project/releases/${release}/util/sort/quick.py`, j.tag);
      assert.equal(j.python, "/srv/sc/venv/bin/python", j.tag);
      assert.equal(j.release, `my_project:${release}`, j.tag);
      assert.equal(j.version, version, j.tag);
      assert.deepEqual(j.sorted, [1, 2, 3]);
    }
    assert.ok(new Set(jobs.map((j) => j.host)).size >= 2, `every job ran on ${jobs[0]?.host}`);
  }

  test("before a push the jobs fail on the nodes: the module is missing there", async () => {
    const run = await toilRun();
    assert.notEqual(run.code, 0);
    assert.match(run.log, /No module named '(workflow|util)'/);
  });

  test("check names the system python behind _toil_worker; --fix and push make every job import the release", async () => {
    const before = await sc("check", "--json");
    assert.equal(before.code, 1, before.stderr);
    const doc = JSON.parse(before.stdout) as {
      nodes: { node: string; results: { id: string; status: string; detail: string }[]; fixed: string[] }[];
    };
    for (const n of doc.nodes) {
      const worker = n.results.find((r) => r.id === "toilWorker")!;
      assert.equal(worker.status, "fail", `${n.node}: ${worker.detail}`);
      assert.match(
        worker.detail,
        /jobs run \/usr\/bin\/_toil_worker, whose interpreter \/usr\/bin\/python3 never reads/,
      );
    }
    const fixed = await sc("check", "--fix");
    assert.match(fixed.stdout, /fixed: wrote \/srv\/sc\/venv\/bin\/_toil_worker/);
    const push = await sc("push");
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assert.match(push.stdout, /4 node\(s\) converged/);
    const after = await sc("check");
    assert.equal(after.code, 0, after.stdout + after.stderr);

    const run = await toilRun();
    assert.equal(run.code, 0, run.log);
    assertFromRelease(run.jobs, await currentRelease(), 1);
  });

  test("after an edit and a push, the next run imports the new code", async () => {
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 2\n`);
    const push = await sc("push");
    assert.equal(push.code, 0, push.stdout + push.stderr);
    const run = await toilRun();
    assert.equal(run.code, 0, run.log);
    assertFromRelease(run.jobs, await currentRelease(), 2);
  });

  test("a push in the middle of a run: the run's later jobs still import the release it started with", async () => {
    const startedWith = await currentRelease();
    const gate = join(cluster.shared, "gate");
    const running = toilRun(`--gate ${gate} --jobs 2 --waves 2`);
    // Both first-wave jobs are running (each holds a node's only CPU) before the push.
    const deadline = Date.now() + 180_000;
    while (!(existsSync(`${gate}.a0`) && existsSync(`${gate}.a1`))) {
      assert.ok(Date.now() < deadline, "the first wave never started");
      await new Promise((r) => setTimeout(r, 200));
    }
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 3\n`);
    const push = await sc("push");
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
    // The next run gets the newest release.
    const next = await toilRun();
    assert.equal(next.code, 0, next.log);
    assertFromRelease(next.jobs, pushed, 3);
  });

  test("under watch, a save reaches every node and the next run imports it", async () => {
    const watch: ChildProcess = spawn(BIN, ["watch", "--json", "-i", inventory], {
      cwd: project,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", PYTHONPATH: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const events: { type: string; node?: string; release?: string }[] = [];
    let buffered = "";
    watch.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
    });
    const syncedEverywhere = async (release: () => string | undefined) => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const want = release();
        const nodes = new Set(
          events.filter((e) => e.type === "node-synced" && e.release === want).map((e) => e.node),
        );
        if (want && nodes.size === 4) return want;
        assert.ok(Date.now() < deadline, `not every node synced: ${JSON.stringify(events.slice(-8))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      const lastRelease = () => events.filter((e) => e.type === "release").at(-1)?.release;
      const first = lastRelease;
      await new Promise((r) => setTimeout(r, 500));
      const before = events.filter((e) => e.type === "release").length;
      await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 4\n`);
      const release = await syncedEverywhere(() =>
        events.filter((e) => e.type === "release").length > before ? first() : undefined,
      );
      const run = await toilRun();
      assert.equal(run.code, 0, run.log);
      assertFromRelease(run.jobs, release, 4);
    } finally {
      watch.kill("SIGINT");
      await new Promise((r) => watch.once("exit", r));
    }
  });

  test("an older copy of the workflow that an import hook puts first: check and push fail that node, naming it", async () => {
    const n1 = cluster.nodes[0]!;
    const site = join(n1.privateDir, "venv/lib/python3.11/site-packages");
    const old = join(n1.privateDir, "old-copy");
    await mkdir(join(old, "util/sort"), { recursive: true });
    await writeTree(old, {
      "util/__init__.py": "",
      "util/sort/__init__.py": "",
      "util/sort/quick.py": "VERSION = 0\n",
    });
    // What `setup.py develop` leaves in easy-install.pth: a path hack run at every start.
    await writeFile(join(site, "zz-old-egg.pth"), "import sys; sys.path.insert(0, '/srv/sc/old-copy')\n");
    try {
      const check = await sc("check", "--json");
      assert.equal(check.code, 1);
      const n1Results = (
        JSON.parse(check.stdout) as {
          nodes: { node: string; results: { id: string; status: string; detail: string }[] }[];
        }
      ).nodes.find((n) => n.node === "n1")!.results;
      const entry = n1Results.find((r) => r.id === "entry")!;
      assert.equal(entry.status, "fail");
      assert.match(
        entry.detail,
        /`import util` loads \/srv\/sc\/old-copy\/util\/__init__\.py, not the release/,
      );
      await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 5\n`);
      const push = await sc("push");
      assert.equal(push.code, 1);
      assert.match(push.stdout, /n1\s+FAILED\s+pushed, but `import util` loads \/srv\/sc\/old-copy/);
    } finally {
      await rm(join(site, "zz-old-egg.pth"));
    }
    assert.equal((await sc("check")).code, 0);
  });
});
