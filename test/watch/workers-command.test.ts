import assert from "node:assert/strict";
import { chmod, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { loadInventory } from "../../src/inventory/load.js";
import { type WatchEvent, WatchSession } from "../../src/watch/watch.js";
import { makePackageProject, tempDir, workflowMainOptions, writeTree } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../harness/cluster.js";

/**
 * Workers listed by a script (`workers: {command: ./list-workers}`) under `watch`: the script
 * prints node names, ~/.ssh/config maps them to real sshd workers, and `defaults` gives every
 * node the same settings (each worker's HOME is its own directory, as on separate machines).
 * And `--on-synced`: a command run each time every node holds a new release.
 */

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };

describe("watch with workers listed by a script", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let project: string;
  let session: WatchSession;
  let sshConfig: string;
  const events: WatchEvent[] = [];
  const inventoryEnv = () => ({ ...env, SYNC_CLUSTER_SSH_CONFIG: sshConfig });

  const hostsFile = () => join(cluster.dir, "hosts");
  const runsFile = () => join(cluster.dir, "on-synced.runs");
  /** The script prints these workers' names, and ~/.ssh/config knows where each one is. */
  const listWorkers = async (workers: readonly WorkerHandle[]) => {
    await writeFile(
      sshConfig,
      cluster.workers.map((w) => `Host ${w.name}\n  HostName 127.0.0.1\n  Port ${w.port}\n`).join(""),
    );
    await writeFile(hostsFile(), `# listed by the test\n${workers.map((w) => `${w.name}\n`).join("")}`);
  };
  const currentOf = async (w: WorkerHandle) =>
    (await cluster.runOnWorker(w, `basename "$(readlink ${w.deployDir}/proj/current)"`)).stdout.trim();
  const newRelease = async (files: Record<string, string>) => {
    const seen = events.filter((e) => e.type === "release").length;
    await writeTree(project, files);
    const release = await waitFor("the next release", () => events.filter((e) => e.type === "release")[seen]);
    return release.type === "release" ? release.release : "";
  };
  const allSynced = (release: string) =>
    waitFor(`every node on ${release}`, () =>
      events.find((e) => e.type === "all-synced" && e.release === release),
    );
  const runs = async () =>
    (await readFile(runsFile(), "utf8").catch(() => "")).split("\n").filter((l) => l.length > 0);

  before(async () => {
    cluster = await startCluster({ workers: 1 });
    sshConfig = join(cluster.dir, "ssh_config");
    project = await realpath(await tempDir("watch-listed"));
    await makePackageProject(project);
    await listWorkers(cluster.workers);
    // The scheduler's stand-in: prints the hosts file, or fails while `unreachable` exists.
    const script = join(cluster.dir, "list-workers");
    await writeFile(
      script,
      '#!/bin/sh\nif [ -e unreachable ]; then echo "slurm_load_node error: Unable to contact slurm controller" >&2; exit 1; fi\ncat hosts\n',
    );
    await chmod(script, 0o755);
    await writeFile(
      cluster.inventoryPath,
      stringify({
        project: { root: project, entry: "-m workflow.main", name: "proj", batchSystem: "single_machine" },
        defaults: {
          user: "root",
          identityFile: cluster.identityFile,
          knownHosts: cluster.knownHosts,
          venv: "~/venv",
          deployDir: "~/deploy",
        },
        workers: { command: "./list-workers", refresh: 0.3 },
      }),
    );
    const inventory = await loadInventory({ explicitPath: cluster.inventoryPath, env: inventoryEnv() });
    assert.deepEqual(
      inventory.workers.map((w) => [w.name, w.host, w.port]),
      [["w1", "127.0.0.1", cluster.workers[0]!.port]],
    );
    // Records each run; fails while `on-synced.fail` exists; says where it runs and that it ran.
    const onSynced =
      'echo "$SYNC_CLUSTER_RELEASE $SYNC_CLUSTER_NODES" >> on-synced.runs; mkdir running.lock || echo OVERLAP >> on-synced.runs; ' +
      'echo "ran in $(pwd)"; sleep "$(cat on-synced.sleep 2>/dev/null || echo 0)"; rmdir running.lock; ' +
      'if [ -e on-synced.fail ]; then echo "toil: the job store is locked" >&2; exit 3; fi';
    session = new WatchSession({
      inventory,
      resolveOptions: workflowMainOptions(project, env),
      debounceMs: 30,
      acceptNew: false,
      check: true,
      inventoryEnv: inventoryEnv(),
      onSynced: onSynced,
      onSyncedCwd: cluster.dir,
      onEvent: (e) => events.push(e),
    });
    await session.start();
  });
  after(async () => {
    await session?.stop(1000);
    await cluster?.stop();
  });

  test("at start every listed worker gets the release, and --on-synced runs once with it", async () => {
    const release = session.latestRelease!;
    await allSynced(release);
    assert.equal(await currentOf(cluster.workers[0]!), release);
    await waitFor("the on-synced run", async () => (await runs()).length === 1);
    assert.deepEqual(await runs(), [`${release} w1`]);
    const output = await waitFor("its output", () => events.find((e) => e.type === "on-synced-output"));
    assert.deepEqual(output, {
      type: "on-synced-output",
      release,
      stream: "stdout",
      lines: [`ran in ${cluster.dir}`],
    });
  });

  test("a worker the script starts printing gets the current release; --on-synced does not run again for it", async () => {
    const release = session.latestRelease!;
    const added = await cluster.addWorker();
    await listWorkers(cluster.workers);
    await waitFor("the new worker added", () =>
      events.find((e) => e.type === "node-added" && e.node === added.name),
    );
    await waitFor(`${added.name} on ${release}`, async () => (await currentOf(added)) === release);
    assert.deepEqual(await runs(), [`${release} w1`]);
  });

  test("a new release on every node runs --on-synced with the release and the nodes", async () => {
    const release = await newRelease({ "util/added.py": "ADDED = 1\n" });
    await allSynced(release);
    await waitFor("the second run", async () => (await runs()).length === 2);
    assert.equal((await runs())[1], `${release} w1,w2`);
    for (const w of cluster.workers) assert.equal(await currentOf(w), release);
  });

  test("a failing script keeps the last list, says so once, and says when it works again", async () => {
    const before = events.length;
    await writeFile(join(cluster.dir, "unreachable"), "");
    const failure = await waitFor("the workers error", () =>
      events.slice(before).find((e) => e.type === "workers-error"),
    );
    assert.equal(failure.type, "workers-error");
    if (failure.type === "workers-error") {
      assert.equal(failure.keeping, 2);
      assert.equal(failure.source, "workers.command");
      assert.match(
        failure.message,
        /key workers\.command\): the workers could not be listed: `\.\/list-workers` exited with status 1; its stderr:\n {2}slurm_load_node error: Unable to contact slurm controller/,
      );
    }
    // Several more runs fail (every 0.3 s): said once, and no worker is dropped.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(events.slice(before).filter((e) => e.type === "workers-error").length, 1);
    assert.ok(!events.slice(before).some((e) => e.type === "node-left" || e.type === "node-removed"));
    assert.deepEqual(
      session
        .nodes()
        .map((n) => n.node)
        .sort(),
      ["w1", "w2"],
    );
    // A release made meanwhile still reaches both.
    const release = await newRelease({ "util/during_outage.py": "X = 1\n" });
    await allSynced(release);
    await rm(join(cluster.dir, "unreachable"));
    const recovered = await waitFor("the recovery", () =>
      events.slice(before).find((e) => e.type === "workers-recovered"),
    );
    assert.deepEqual(recovered, { type: "workers-recovered", source: "workers.command", workers: 2 });
  });

  test("a worker the script no longer prints is dropped", async () => {
    const [gone, stays] = cluster.workers as [WorkerHandle, WorkerHandle];
    await listWorkers([stays]);
    const left = await waitFor("the node-left event", () =>
      events.find((e) => e.type === "node-left" && e.node === gone.name),
    );
    assert.deepEqual(left, { type: "node-left", node: gone.name, source: "workers.command" });
    assert.deepEqual(
      session.nodes().map((n) => n.node),
      [stays.name],
    );
    // What it runs stays as it was: releases made afterwards do not reach it.
    const held = await currentOf(gone);
    const release = await newRelease({ "util/after_leaving.py": "X = 1\n" });
    await allSynced(release);
    assert.equal(await currentOf(stays), release);
    assert.equal(await currentOf(gone), held);
    // Nothing more is said about it: its syncer's own stop would otherwise show it again as "stopped".
    const after = events.slice(events.indexOf(left) + 1);
    assert.deepEqual(
      after.filter((e) => "node" in e && e.node === gone.name),
      [],
    );
    await waitFor("the run for it", async () => (await runs()).at(-1) === `${release} ${stays.name}`);
  });

  test("a failing --on-synced command is reported and watch goes on", async () => {
    await writeFile(join(cluster.dir, "on-synced.fail"), "");
    const failed = await newRelease({ "util/fails.py": "X = 1\n" });
    const done = await waitFor("the failed run", () =>
      events.find((e) => e.type === "on-synced-done" && e.release === failed),
    );
    assert.equal(done.type === "on-synced-done" && done.ok, false);
    if (done.type === "on-synced-done") {
      assert.equal(done.code, 3);
      assert.deepEqual(done.stderrTail, ["toil: the job store is locked"]);
    }
    await rm(join(cluster.dir, "on-synced.fail"));
    const next = await newRelease({ "util/fixed.py": "X = 1\n" });
    const ok = await waitFor("the next run", () =>
      events.find((e) => e.type === "on-synced-done" && e.release === next),
    );
    assert.equal(ok.type === "on-synced-done" && ok.ok, true);
  });

  test("never two runs at once: releases synced meanwhile run once after, the newest only", async () => {
    await writeFile(join(cluster.dir, "on-synced.sleep"), "3");
    const first = await newRelease({ "util/slow1.py": "X = 1\n" });
    await waitFor("the slow run to start", () =>
      events.find((e) => e.type === "on-synced-start" && e.release === first),
    );
    const skipped = await newRelease({ "util/slow2.py": "X = 1\n" });
    await allSynced(skipped);
    await writeFile(join(cluster.dir, "on-synced.sleep"), "0");
    const newest = await newRelease({ "util/slow3.py": "X = 1\n" });
    await allSynced(newest);
    assert.ok(
      !events.some((e) => e.type === "on-synced-done" && e.release === first),
      "the first run ended early",
    );
    await waitFor(
      "the run for the newest release",
      () => events.find((e) => e.type === "on-synced-done" && e.release === newest),
      20_000,
    );
    const started = events.filter((e) => e.type === "on-synced-start").map((e) => e.release);
    assert.deepEqual(started.slice(-2), [first, newest]);
    assert.ok(!started.includes(skipped));
    assert.ok(!(await runs()).includes("OVERLAP"));
    assert.ok(
      events.some((e) => e.type === "on-synced-queued" && e.release === newest && e.running === first),
    );
  });
});
