import assert from "node:assert/strict";
import { readdir, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadInventory } from "../../src/inventory/load.js";
import { pushAll } from "../../src/push/push.js";
import { runCli } from "../fixtures/cli.js";
import { makePackageProject, makeVenv, resolveWorkflowMain, run, tempDir } from "../fixtures/projects.js";
import { type Cluster, sshdAvailable, startCluster } from "../harness/cluster.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };

/**
 * Many clusters mount home directories over NFS on every node, and users put the deploy
 * directory and the venv there: every node then sees the same directory. Here three sshd workers
 * on one machine share one, as NFS clients of one server would. Each node's push takes the
 * worker lock in turn; the first publishes, the others find the release there and switch to it.
 */
describe("nodes that share one deploy directory and venv (a home directory on NFS)", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let shared: string;
  let project: string;

  before(async () => {
    cluster = await startCluster({ workers: 3 });
    shared = join(cluster.dir, "nfs-home");
    await makeVenv(join(shared, "venv"));
    project = await realpath(await tempDir("shared"));
    await makePackageProject(project);
    cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "shared" },
      workers: cluster.workers.map((w) =>
        Object.assign(Object.create(w), { venv: join(shared, "venv"), deployDir: join(shared, "deploy") }),
      ),
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the release is written once and every node imports it; an edit converges; status agrees", async () => {
    const inventory = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const first = await pushAll(inventory, await resolveWorkflowMain(project, env));
    assert.ok(
      first.every((o) => o.ok),
      JSON.stringify(first),
    );
    const statuses = first.map((o) => o.result?.status).sort();
    assert.equal(statuses.filter((s) => s === "published").length, 1, JSON.stringify(statuses));
    assert.ok(
      statuses.every((s) => s === "published" || s === "switched" || s === "unchanged"),
      JSON.stringify(statuses),
    );
    const releases = await readdir(join(shared, "deploy", "shared", "releases"));
    assert.equal(releases.length, 1);
    assert.deepEqual(
      (await readdir(join(shared, "deploy", "shared"))).filter((n) => n.startsWith(".staging-")),
      [],
    );

    // Every node's login imports the workflow from the one release.
    for (const w of cluster.workers) {
      const r = await cluster.runOnWorker(
        w,
        `cd / && ${join(shared, "venv", "bin", "python")} -c 'import util.sort.quick as q; print(q.__file__)'`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`/releases/${releases[0]}/util/sort/quick.py`));
    }

    await writeFile(
      join(project, "util", "sort", "quick.py"),
      "def quick_sort(xs):\n    return sorted(xs)\n",
    );
    const push = await runCli(["push", "-i", cluster.inventoryPath, "--json"], project, env);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    const status = await runCli(["status", "-i", cluster.inventoryPath, "--json"], project, env);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    const report = JSON.parse(status.stdout) as {
      leaderRelease: string;
      nodes: { node: string; release?: { current: string | null; inSync: boolean | null } }[];
    };
    assert.equal(report.nodes.length, 3);
    for (const n of report.nodes) {
      assert.equal(n.release?.current, report.leaderRelease, status.stdout);
      assert.equal(n.release?.inSync, true, status.stdout);
    }
    const { stdout } = await run("readlink", [join(shared, "deploy", "shared", "current")]);
    assert.equal(stdout.trim(), `releases/${report.leaderRelease}`);
  });
});
