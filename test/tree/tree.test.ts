import assert from "node:assert/strict";
import { mkdir, realpath, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli, startCli } from "../fixtures/cli.js";
import { makePackageProject, QUICK_SORT, SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../harness/cluster.js";
import {
  multiplexers,
  stopMultiplexers,
  type TreeLayout,
  treeLayout,
  whyClusterShellUnavailable,
  writeTreeInventory,
} from "../harness/tree-cluster.js";

/**
 * The tree end to end: two gateways (sshd workers running ClusterShell's gateway) and six workers
 * behind them, reached only as ClusterShell reaches them; the leader never connects to a worker.
 */

const unavailable = !sshdAvailable() ? "sshd is not installed" : whyClusterShellUnavailable();

/** What a job's interpreter on `w` imports util.sort.quick from, and its marker. */
async function imported(cluster: Cluster, w: WorkerHandle): Promise<string> {
  const r = await cluster.runOnWorker(
    w,
    `cd / && ${w.python()} -c 'import util.sort.quick as q; print(getattr(q, "MARK", "none"), q.__file__)'`,
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

function lineOf(stdout: string, node: string): string {
  return stdout.split("\n").find((l) => l.startsWith(`${node} `)) ?? `(no line for ${node} in:\n${stdout})`;
}

describe("through ClusterShell's gateway tree", { skip: unavailable }, () => {
  let cluster: Cluster;
  let layout: TreeLayout;
  let project: string;
  let inventory: string;

  before(async () => {
    cluster = await startCluster({ workers: 8 });
    layout = treeLayout(cluster, 2);
    project = await realpath(await tempDir("tree"));
    await makePackageProject(project);
    inventory = writeTreeInventory(cluster, layout, {
      project: { root: project, entry: "-m workflow.main", name: "tree", python: SYSTEM_PYTHON },
    });
  });
  after(async () => {
    await cluster?.stop();
    if (project) await rm(project, { recursive: true, force: true });
  });

  async function mark(value: string): Promise<void> {
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nMARK = "${value}"\n`);
  }

  test("push, an edit, status, check and exec reach every worker through two gateways", async () => {
    await mark("one");
    const first = await runCli(["push", "-i", inventory], project);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    for (const w of layout.workers) {
      assert.match(lineOf(first.stdout, w.name), /published/);
      assert.match(await imported(cluster, w), /^one .*\/releases\//);
    }
    // The gateways hold nothing of the project: they only relay.
    for (const g of layout.gateways) {
      const r = await cluster.runOnWorker(g, `ls ${g.deployDir}/tree 2>&1 || true`);
      assert.match(r.stdout, /No such file/);
    }

    await mark("two");
    const second = await runCli(["push", "-i", inventory, "--json"], project);
    assert.equal(second.code, 0, second.stdout + second.stderr);
    const outcome = JSON.parse(second.stdout) as {
      nodes: {
        node: string;
        ok: boolean;
        result: { status: string; filesSent: number; filesLinked: number };
      }[];
    };
    assert.equal(outcome.nodes.length, layout.workers.length);
    for (const n of outcome.nodes) {
      assert.ok(n.ok, JSON.stringify(n));
      assert.equal(n.result.status, "published");
      assert.equal(n.result.filesSent, 1, "only the edited file travels");
      assert.ok(n.result.filesLinked > 0, "the rest is linked from the node's previous release");
    }
    for (const w of layout.workers) assert.match(await imported(cluster, w), /^two /);

    const again = await runCli(["push", "-i", inventory], project);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    for (const w of layout.workers) assert.match(lineOf(again.stdout, w.name), /unchanged/);

    const status = await runCli(["status", "-i", inventory], project);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    for (const w of layout.workers) assert.match(lineOf(status.stdout, w.name), /\bup\b.*\byes\b/);

    const check = await runCli(["check", "-i", inventory], project);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /6 node\(s\) ready/);

    const exec = await runCli(
      ["exec", "-i", inventory, "--", "python", "-c", "import util.sort.quick as q; print(q.MARK)"],
      project,
    );
    assert.equal(exec.code, 0, exec.stdout + exec.stderr);
    for (const w of layout.workers) assert.match(exec.stdout, new RegExp(`^${w.name}\\s+\\| two$`, "m"));
  });

  test("with connections kept (the inventory's daemon: on), every hop keeps its ssh connection for the next command", async () => {
    const controlDir = join(cluster.dir, "mux");
    await mkdir(controlDir, { recursive: true });
    const project_ = { root: project, entry: "-m workflow.main", name: "tree", python: SYSTEM_PYTHON };
    writeTreeInventory(cluster, layout, {
      project: project_,
      extra: { daemon: 600, tree: { ...layout.tree, controlDir } },
    });
    // A push through the daemon also asks it for the resolution: a daemon of the test's own, stopped after.
    const kept = { SYNC_CLUSTER_DAEMON: "auto", SYNC_CLUSTER_DAEMON_DIR: join(cluster.dir, "daemon") };
    try {
      await mark("kept-1");
      const first = await runCli(["push", "-i", inventory], project, kept);
      assert.equal(first.code, 0, first.stdout + first.stderr);
      // One master on the leader for each gateway, one on each gateway for each of its workers.
      const masters = multiplexers(controlDir);
      assert.equal(masters.length, layout.gateways.length + layout.workers.length, String(masters));
      await mark("kept-2");
      const second = await runCli(["push", "-i", inventory], project, kept);
      assert.equal(second.code, 0, second.stdout + second.stderr);
      assert.deepEqual(
        multiplexers(controlDir).sort(),
        masters.sort(),
        "the same connections served the second push",
      );
      for (const w of layout.workers) assert.match(await imported(cluster, w), /^kept-2 /);
    } finally {
      await runCli(["daemon", "stop"], project, kept);
      stopMultiplexers(controlDir);
      writeTreeInventory(cluster, layout, { project: project_ });
    }
  });

  test("watch through the tree: each save reaches every worker, one batch a worker once their state is known", async () => {
    await mark("watched-1");
    const watch = startCli(["watch", "-i", inventory, "--json"], project);
    const events = () =>
      watch
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { type: string; release?: string; node?: string });
    const allSynced = (after: number) =>
      waitFor(
        `every worker synced (output: ${watch.output().slice(-600)})`,
        () => events().filter((e) => e.type === "all-synced")[after],
        60_000,
      );
    try {
      await allSynced(0);
      for (const w of layout.workers) assert.match(await imported(cluster, w), /^watched-1 /);
      await mark("watched-2");
      const second = await allSynced(1);
      for (const w of layout.workers) assert.match(await imported(cluster, w), /^watched-2 /);
      const synced = events().filter((e) => e.type === "node-synced" && e.release === second.release);
      assert.deepEqual(synced.map((e) => e.node).sort(), layout.workers.map((w) => w.name).sort());
      // The second save needed no survey: no worker went through "checking" again.
      const checking = events().filter(
        (e) => e.type === "node-phase" && (e as { phase?: string }).phase === "checking",
      );
      assert.equal(checking.length, layout.workers.length, "each worker is checked once, on its first push");
    } finally {
      watch.child.kill("SIGINT");
      await watch.exited;
    }
  });

  test("node sets name the workers and the gateways' nodes, as ClusterShell users write them", async () => {
    const [first, last] = [layout.workers[0]!.name.slice(1), layout.workers.at(-1)!.name.slice(1)];
    const folded = (names: string[]) => `w[${names.map((n) => n.slice(1)).join(",")}]`;
    const project_ = { root: project, entry: "-m workflow.main", name: "tree", python: SYSTEM_PYTHON };
    // Bare names: through the tree a worker is reached as `ssh NAME` from its gateway.
    writeTreeInventory(cluster, layout, {
      project: project_,
      extra: {
        workers: [`w[${first}-${last}]`],
        tree: {
          ...layout.tree,
          gateways: Object.fromEntries(Object.entries(layout.routes).map(([g, names]) => [g, folded(names)])),
        },
      },
    });
    try {
      await mark("sets");
      const push = await runCli(["push", "-i", inventory], project);
      assert.equal(push.code, 0, push.stdout + push.stderr);
      for (const w of layout.workers) assert.match(await imported(cluster, w), /^sets /);
      const some = layout.workers.slice(0, 3).map((w) => w.name);
      const exec = await runCli(["exec", "-i", inventory, "--nodes", folded(some), "--", "true"], project);
      assert.equal(exec.code, 0, exec.stdout + exec.stderr);
      const status = await runCli(["status", "-i", inventory, "--json"], project);
      const nodes = (JSON.parse(status.stdout) as { nodes: { node: string; reachable: boolean }[] }).nodes;
      assert.deepEqual(
        nodes.map((n) => [n.node, n.reachable]),
        layout.workers.map((w) => [w.name, true]),
      );
    } finally {
      writeTreeInventory(cluster, layout, { project: project_ });
    }
  });

  test("a gateway killed in the middle of a push: its workers fail with the reason, the rest converge, the next push completes", async () => {
    await mark("three");
    const gateway = layout.gateways[0]!;
    const behind = layout.workers.filter((w) => layout.routes[gateway.name]!.includes(w.name));
    const others = layout.workers.filter((w) => !behind.includes(w));
    // The workers behind the gateway take a while to log in, so the gateway dies while serving them.
    for (const w of behind) await writeFile(join(w.home!, ".bashrc"), "sleep 6\n");
    try {
      const push = startCli(["push", "-i", inventory], project);
      await new Promise((r) => setTimeout(r, 2500));
      await gateway.stop();
      const code = await push.exited;
      const output = push.output();
      assert.equal(code, 1, output);
      for (const w of behind)
        assert.match(lineOf(output, w.name), new RegExp(`FAILED .*gateway ${gateway.name}`));
      for (const w of others) assert.match(lineOf(output, w.name), /published/);
    } finally {
      for (const w of behind) await rm(join(w.home!, ".bashrc"), { force: true });
      await gateway.start();
    }
    const retry = await runCli(["push", "-i", inventory], project);
    assert.equal(retry.code, 0, retry.stdout + retry.stderr);
    for (const w of layout.workers) assert.match(await imported(cluster, w), /^three /);
  });

  test("a gateway that is down: its workers are reported at once, the others converge", async () => {
    await mark("four");
    const gateway = layout.gateways[1]!;
    const behind = layout.workers.filter((w) => layout.routes[gateway.name]!.includes(w.name));
    await gateway.stop();
    try {
      const started = Date.now();
      const push = await runCli(["push", "-i", inventory], project);
      assert.equal(push.code, 1, push.stdout + push.stderr);
      assert.ok(Date.now() - started < 60_000, "never waited on for the run's timeout");
      for (const w of behind)
        assert.match(
          lineOf(push.stdout, w.name),
          new RegExp(`FAILED .*gateway ${gateway.name} could not be reached`),
        );
      for (const w of layout.workers.filter((x) => !behind.includes(x)))
        assert.match(await imported(cluster, w), /^four /);
    } finally {
      await gateway.start();
    }
    const retry = await runCli(["push", "-i", inventory], project);
    assert.equal(retry.code, 0, retry.stdout + retry.stderr);
    for (const w of behind) assert.match(await imported(cluster, w), /^four /);
  });
});
