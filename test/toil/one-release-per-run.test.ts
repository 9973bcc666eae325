import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BIN, type CliRun, runCli } from "../fixtures/cli.js";
import { makePackageProject, QUICK_SORT, SYSTEM_PYTHON, writeTree } from "../fixtures/projects.js";
import { REPORTING_WORKFLOW, type ToilRun, toilRunOnSlurm } from "../fixtures/reporting-workflow.js";
import { waitFor } from "../fixtures/wait.js";
import { type SlurmCluster, startSlurmCluster, whySlurmUnavailable } from "../harness/slurm-cluster.js";

/**
 * One release per workflow run, whatever the cluster does during the run, on a real Slurm cluster
 * with Toil's --batchSystem slurm: more saves than `keep` under watch, a node that was drained and
 * unreachable when the run's release was published and comes back mid-run, and a path hack added
 * on a node after the daemon (or watch) started its agent.
 */

const skip = whySlurmUnavailable();

type WatchEvent = { type: string; node?: string; release?: string; error?: string; phase?: string };

describe("one release per run on a real Slurm cluster", { skip, timeout: 900_000 }, () => {
  let cluster: SlurmCluster;
  let project: string;
  let inventory: string;
  let daemonInventory: string;
  let daemonDir: string;
  const watches: ChildProcess[] = [];

  before(async () => {
    cluster = await startSlurmCluster({ nodes: 3, cpus: 1, memoryMb: 1000 });
    project = join(cluster.leader.privateDir, "my_project");
    await makePackageProject(project);
    await writeTree(project, {
      "workflow/main.py": REPORTING_WORKFLOW,
      "util/sort/quick.py": `${QUICK_SORT}\nVERSION = 1\n`,
    });
    inventory = cluster.writeInventory({
      project: {
        root: project,
        entry: "-m workflow.main",
        name: "my_project",
        python: SYSTEM_PYTHON,
        keep: 1,
      },
    });
    // The same inventory through a daemon of the test's own.
    daemonDir = join(cluster.dir, "daemon");
    await mkdir(daemonDir, { mode: 0o700 });
    daemonInventory = join(cluster.dir, "daemon-inventory.yaml");
    await writeFile(
      daemonInventory,
      (await readFile(inventory, "utf8")).replace("daemon: off", "daemon: 600"),
    );
    assert.equal((await sc("check", "--fix")).code, 0);
    const push = await sc("push");
    assert.equal(push.code, 0, push.stdout + push.stderr);
  });
  after(async () => {
    for (const w of watches) if (w.exitCode === null && w.signalCode === null) w.kill("SIGKILL");
    await stopDaemon();
    await cluster?.stop();
  });

  const sc = (...args: string[]): Promise<CliRun> => runCli([...args, "-i", inventory], project);
  const viaDaemon = (...args: string[]): Promise<CliRun> =>
    runCli([...args, "-i", daemonInventory], project, {
      SYNC_CLUSTER_DAEMON: "on",
      SYNC_CLUSTER_DAEMON_DIR: daemonDir,
    });

  async function stopDaemon(): Promise<void> {
    const pidFile = join(daemonDir ?? "/nonexistent", "daemon.pid");
    if (!existsSync(pidFile)) return;
    const pid = Number.parseInt(readFileSync(pidFile, "utf8"), 10);
    await viaDaemon("daemon", "stop").catch(() => undefined);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone already, as it should be.
    }
  }

  let version = 1;
  async function save(): Promise<number> {
    version += 1;
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = ${version}\n`);
    return version;
  }

  async function currentRelease(): Promise<string> {
    const status = await sc("status", "--json");
    return (JSON.parse(status.stdout) as { leaderRelease: string }).leaderRelease;
  }

  function startWatch(file: string, env: Record<string, string> = {}) {
    const watch = spawn(BIN, ["watch", "--json", "-i", file], {
      cwd: project,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/root",
        PYTHONPATH: "",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    watches.push(watch);
    const events: WatchEvent[] = [];
    let buffered = "";
    watch.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as WatchEvent);
    });
    let stderr = "";
    watch.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    // The release watch started with, then each new one (its first publish is announced twice).
    const releases = () => [
      ...new Set(
        events
          .filter((e) => (e.type === "watching" || e.type === "release") && e.release)
          .map((e) => e.release!),
      ),
    ];
    /** Waits until every one of `nodes` has synced to a release newer than the `count`th. */
    const syncedAfter = async (count: number, nodes: string[]): Promise<string> => {
      let release = "";
      await waitFor(
        `release ${count + 1} on ${nodes.join(", ")}`,
        async () => {
          release = releases()[count] ?? "";
          const synced = new Set(
            events
              .filter(
                (e) =>
                  (e.type === "node-synced" || (e.type === "node-phase" && e.phase === "in-sync")) &&
                  e.release === release,
              )
              .map((e) => e.node),
          );
          return release !== "" && nodes.every((n) => synced.has(n));
        },
        90_000,
        100,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\n${JSON.stringify(events.slice(-10))}\n${stderr}`);
      });
      return release;
    };
    const stop = async () => {
      watch.kill("SIGINT");
      if (watch.exitCode === null) await new Promise((r) => watch.once("exit", r));
    };
    return { events, releases, syncedAfter, stop, stderr: () => stderr };
  }

  /** Starts a run whose first wave (one job) waits at a gate; resolves once that job is running. */
  async function gatedRun(
    name: string,
    secondWave: number,
  ): Promise<{ gate: string; running: Promise<ToilRun> }> {
    const gate = join(cluster.shared, name);
    const running = toilRunOnSlurm(cluster, `--gate ${gate} --first-jobs 1 --jobs ${secondWave} --waves 2`);
    await waitFor("the first wave to start", async () => existsSync(`${gate}.a0`), 180_000, 200);
    return { gate, running };
  }

  test("a run over more watch saves than `keep` imports one release on every job", async () => {
    const watch = startWatch(inventory);
    try {
      const all = ["leader", "n1", "n2", "n3"];
      await watch.syncedAfter(0, all);
      const startedOn = await save();
      const runRelease = await watch.syncedAfter(1, all);
      // One job holds one node; the other two have never run (nor pinned) the run's release.
      const { gate, running } = await gatedRun("gate-saves", 3);
      for (let i = 0; i < 3; i++) {
        await save();
        await watch.syncedAfter(2 + i, all);
      }
      await writeFile(gate, "");
      const run = await running;
      assert.equal(run.code, 0, run.log);
      assert.equal(run.jobs.length, 4);
      for (const j of run.jobs) {
        assert.equal(j.version, startedOn, `${j.tag} on ${j.host} imported ${j.file}`);
        assert.equal(j.release, `my_project:${runRelease}`);
      }
      assert.equal(new Set(run.jobs.map((j) => j.host)).size, 3, "the second wave ran on every node");
    } finally {
      await watch.stop();
    }
  });

  test("a node drained and unreachable at the run's publish, back mid-run, runs the run's release", async () => {
    const n3 = cluster.nodes[2]!;
    const scontrol = (args: string) => cluster.leader.exec(`scontrol update nodename=n3 ${args}`);
    assert.equal((await scontrol("state=drain reason=maintenance")).code, 0);
    await n3.stop();
    let resumed = false;
    try {
      const startedOn = await save();
      const push = await sc("push");
      assert.equal(push.code, 1, "n3 is down");
      const runRelease = await currentRelease();
      const { gate, running } = await gatedRun("gate-return", 3);
      const status = JSON.parse((await sc("status", "--json")).stdout) as {
        runs: { release: string; lacking: string[]; unknown: string[] }[];
      };
      assert.deepEqual(
        status.runs.map((r) => [r.release, r.lacking, r.unknown]),
        [[runRelease, [], ["n3"]]],
      );
      await save();
      assert.equal((await sc("push")).code, 1);
      // The node comes back in the middle of the run: the next push brings it the newest release
      // and the run's.
      await n3.start();
      assert.equal((await scontrol("state=resume")).code, 0);
      resumed = true;
      const back = await sc("push", "--json");
      assert.equal(back.code, 0, back.stdout + back.stderr);
      const n3Result = (
        JSON.parse(back.stdout) as { nodes: { node: string; result?: { runReleases?: string[] } }[] }
      ).nodes.find((n) => n.node === "n3");
      assert.deepEqual(n3Result?.result?.runReleases, [runRelease], back.stdout);
      await writeFile(gate, "");
      const run = await running;
      assert.equal(run.code, 0, run.log);
      for (const j of run.jobs)
        assert.equal(j.version, startedOn, `${j.tag} on ${j.host} imported ${j.file}`);
      assert.ok(
        run.jobs.some((j) => j.host === "n3"),
        `a job of the run ran on n3: ${run.jobs.map((j) => j.host)}`,
      );
    } finally {
      if (!resumed) {
        await n3.start().catch(() => undefined);
        await scontrol("state=resume");
      }
    }
  });

  test("a path hack added after the daemon started its agent fails the next push through it, naming the file", async () => {
    const n1 = cluster.nodes[0]!;
    const first = await viaDaemon("push");
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const hack = await addPathHack(n1);
    try {
      await save();
      const push = await viaDaemon("push");
      assert.equal(push.code, 1, push.stdout + push.stderr);
      assert.match(push.stdout, /n1\s+FAILED\s+pushed, but `import util` loads \/srv\/sc\/old-copy\/util/);
      assert.ok(existsSync(join(daemonDir, "daemon.pid")), "the pushes went through the daemon");
    } finally {
      await rm(hack);
    }
    const again = await viaDaemon("push");
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  test("the same through watch: a path hack added on a node mid-watch fails that node at the next save", async () => {
    const n2 = cluster.nodes[1]!;
    const watch = startWatch(daemonInventory, {
      SYNC_CLUSTER_DAEMON: "on",
      SYNC_CLUSTER_DAEMON_DIR: daemonDir,
    });
    try {
      await watch.syncedAfter(0, ["leader", "n1", "n2", "n3"]);
      const hack = await addPathHack(n2);
      try {
        await save();
        await waitFor(
          "n2 to fail, naming the old copy",
          async () =>
            watch.events.some(
              (e) =>
                e.type === "node-failed" &&
                e.node === "n2" &&
                /loads \/srv\/sc\/old-copy\/util/.test(e.error ?? ""),
            ),
          90_000,
          100,
        ).catch((error: Error) => {
          throw new Error(`${error.message}\n${JSON.stringify(watch.events.slice(-10))}\n${watch.stderr()}`);
        });
      } finally {
        await rm(hack);
      }
    } finally {
      await watch.stop();
    }
  });

  /** What `setup.py develop` leaves in easy-install.pth: an old copy of the workflow put first. */
  async function addPathHack(node: { privateDir: string }): Promise<string> {
    const old = join(node.privateDir, "old-copy");
    await writeTree(old, {
      "util/__init__.py": "",
      "util/sort/__init__.py": "",
      "util/sort/quick.py": "VERSION = 0\n",
    });
    const hack = join(node.privateDir, "venv/lib/python3.11/site-packages/zz-old-egg.pth");
    await writeFile(hack, "import sys; sys.path.insert(0, '/srv/sc/old-copy')\n");
    return hack;
  }
});
