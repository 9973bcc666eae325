import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFile, mkdir, readFile, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Inventory } from "../../src/core/inventory/inventory-types.js";
import { releaseIdOf } from "../../src/core/release/manifest.js";
import { loadInventory } from "../../src/inventory/load.js";
import { pushAll } from "../../src/push/push.js";
import type { Resolution } from "../../src/resolve/resolver.js";
import {
  makePackageProject,
  resolveWorkflowMain,
  SYSTEM_PYTHON,
  tempDir,
  writeTree,
} from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../harness/cluster.js";
import { FaultProxy } from "../harness/tcp-fault-proxy.js";
import { verifiedCurrent } from "../harness/verified-current.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };
const BIN = join(process.cwd(), "bin", "sync-cluster");
const NAME = "faulty";
// A stalled network is named as such, with how long the node was waited for (connectTimeout 2: keepalives every 2 s, three missed).
const STALLED = /^the node stopped answering \(no reply to SSH keepalives for 6s\)/;

const currentState = (cluster: Cluster, w: WorkerHandle) => verifiedCurrent(cluster, w, NAME);

async function leftovers(cluster: Cluster, w: WorkerHandle): Promise<string> {
  return (
    await cluster.runOnWorker(w, `ls -a ${w.deployDir}/${NAME} 2>/dev/null | grep '^\\.staging-' || true`)
  ).stdout.trim();
}

/** Whether some process holds the worker's push lock (flock), seen from the worker itself. */
async function lockHeld(cluster: Cluster, w: WorkerHandle): Promise<boolean> {
  const r = await cluster.runOnWorker(
    w,
    `${w.python()} -c '
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError: print("held")
' ${w.deployDir}/${NAME}/.lock`,
  );
  return r.stdout.trim() === "held";
}

/** Resolves when the child has exited, also when it already had. */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once("exit", () => r()));
}

describe("interrupted pushes leave every worker on a complete release", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let proxy: FaultProxy;
  let project: string;
  let inventory: Inventory;
  let inventoryPath: string;
  const resolve = (): Promise<Resolution> => resolveWorkflowMain(project, env, { include: ["data/*"] });

  before(async () => {
    cluster = await startCluster({ workers: 3 });
    const w1 = cluster.workers[0]!;
    proxy = await new FaultProxy(w1.port).start();
    project = await realpath(await tempDir("faults"));
    await makePackageProject(project);
    await mkdir(join(project, "data"));
    for (let i = 0; i < 4; i++) await writeFile(join(project, "data", `blob${i}.bin`), randomBytes(1 << 20));
    inventoryPath = cluster.writeInventory({
      project: {
        root: project,
        entry: "-m workflow.main",
        name: NAME,
        include: ["data/*"],
        python: SYSTEM_PYTHON,
      },
      extra: { defaults: { connectTimeout: 2 } },
    });
    // w1 is reached through the proxy: same host key, another port.
    const text = await readFile(inventoryPath, "utf8");
    await writeFile(inventoryPath, text.replace(`port: ${w1.port}`, `port: ${proxy.port}`));
    const [type, key] = (await readFile(join(w1.dir, "host_ed25519.pub"), "utf8")).trim().split(/\s+/);
    await appendFile(cluster.knownHosts, `[127.0.0.1]:${proxy.port} ${type} ${key}\n`);
    inventory = await loadInventory({ explicitPath: inventoryPath, env });
  });
  after(async () => {
    await proxy?.stop();
    await cluster?.stop();
  });

  test("a connection reset in the middle of the transfer: current is the previous release, the next push converges", async () => {
    const w1 = cluster.workers[0]!;
    const first = await pushAll(inventory, await resolve());
    assert.ok(
      first.every((o) => o.ok),
      JSON.stringify(first),
    );
    const before = await currentState(cluster, w1);
    await writeFile(join(project, "data", "blob0.bin"), randomBytes(1 << 20));
    await writeFile(join(project, "data", "blob1.bin"), randomBytes(1 << 20));
    proxy.resetAfterBytes(600_000);
    const cut = await pushAll(inventory, await resolve());
    proxy.heal();
    const byNode = new Map(cut.map((o) => [o.node, o]));
    assert.equal(byNode.get(w1.name)?.ok, false);
    assert.ok(byNode.get(w1.name)?.error, "the failure is explained");
    assert.ok(
      cluster.workers.slice(1).every((w) => byNode.get(w.name)?.ok),
      "the others completed",
    );
    assert.equal(await currentState(cluster, w1), before, "w1 still runs the previous complete release");
    const again = await pushAll(inventory, await resolve());
    assert.ok(
      again.every((o) => o.ok),
      JSON.stringify(again),
    );
    const states = await Promise.all(cluster.workers.map((w) => currentState(cluster, w)));
    assert.equal(new Set(states).size, 1, "every worker on the same release");
    assert.equal(await leftovers(cluster, w1), "", "the interrupted staging directory was removed");
  });

  test("a stalled connection times out and is reported; the others complete", async () => {
    const w1 = cluster.workers[0]!;
    await writeTree(project, { "util/stall.py": "STALL = 1\n" });
    await writeFile(join(project, "data", "blob2.bin"), randomBytes(1 << 20));
    proxy.stallAfterBytes(300_000);
    const finished: string[] = [];
    const started = Date.now();
    const outcomes = await pushAll(inventory, await resolve(), {
      onEvent: (e) => {
        if (e.type === "node-done" || e.type === "node-failed") finished.push(e.node);
      },
    });
    proxy.heal();
    const took = Date.now() - started;
    assert.equal(proxy.stalls, 1, "w1's connection stalled part way through the push");
    const stalled = outcomes.find((o) => o.node === w1.name)!;
    assert.equal(stalled.ok, false);
    assert.match(stalled.error ?? "", STALLED);
    assert.ok(took < 60_000, `gave up after ${took} ms`);
    assert.ok(
      outcomes.filter((o) => o.node !== w1.name).every((o) => o.ok),
      `the others completed: ${JSON.stringify(outcomes)}`,
    );
    assert.deepEqual(
      [...finished].sort(),
      outcomes.map((o) => o.node).sort(),
      "every node reported its end once",
    );
    assert.match(await currentState(cluster, w1), /^complete /);
  });

  test("the worker's sshd killed during a push: the others complete, and after a restart all converge", async () => {
    const [, w2, w3] = cluster.workers as [WorkerHandle, WorkerHandle, WorkerHandle];
    const before = await currentState(cluster, w2);
    await writeFile(join(project, "data", "blob3.bin"), randomBytes(1 << 20));
    // w2's push is held in progress: its lock is taken (by a process of this test, as by another
    // pusher), so the push's prepare waits on the worker while its sshd is killed.
    const holder = spawn(
      SYSTEM_PYTHON,
      [
        "-c",
        "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)",
        `${w2.deployDir}/${NAME}/.lock`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      await new Promise<void>((r) => holder.stdout!.once("data", () => r()));
      const phases: string[] = [];
      const pushing = pushAll(inventory, await resolve(), {
        onEvent: (e) => {
          if (e.type === "node-progress" && e.node === w2.name) phases.push(e.phase);
        },
      });
      await waitFor("w2's push to wait on its lock", () => phases.includes("preparing"), 30_000);
      await w2.stop();
      const outcomes = await pushing;
      const byNode = new Map(outcomes.map((o) => [o.node, o]));
      assert.equal(byNode.get(w2.name)?.ok, false, JSON.stringify(outcomes));
      assert.ok(byNode.get(w2.name)?.error, "the failure is explained");
      assert.ok(byNode.get(w3.name)?.ok, JSON.stringify(outcomes));
      assert.match(await currentState(cluster, w3), /^complete /);
    } finally {
      holder.kill("SIGKILL");
      await exited(holder);
    }
    await w2.start();
    assert.equal(await currentState(cluster, w2), before, "w2 kept the release it had");
    const again = await pushAll(inventory, await resolve());
    assert.ok(
      again.every((o) => o.ok),
      JSON.stringify(again),
    );
    assert.equal(await leftovers(cluster, w2), "");
  });

  test("the leader killed with SIGKILL mid-push: workers keep a complete current; the next push cleans up", async () => {
    const w1 = cluster.workers[0]!;
    const before = await currentState(cluster, w1);
    await writeFile(join(project, "data", "blob0.bin"), randomBytes(1 << 20));
    proxy.slow(200_000);
    const child = spawn(BIN, ["push", "-i", inventoryPath, "--no-check"], {
      cwd: project,
      env: { ...env, PYTHONPATH: "" },
      stdio: "ignore",
    });
    // Killed while its upload to w1 is in flight: a release is being staged there (a staging
    // directory exists only between prepare and publish, under the worker's lock).
    await waitFor(
      "the upload to w1 in flight",
      async () => {
        if (child.exitCode !== null) throw new Error(`the push ended first (exit ${child.exitCode})`);
        return (await leftovers(cluster, w1)) !== "";
      },
      60_000,
    );
    child.kill("SIGKILL");
    await exited(child);
    proxy.heal();
    assert.equal(await currentState(cluster, w1), before, "w1 kept the release it had");
    // The agent sees its connection close: it removes its staging and its lock goes with it.
    await waitFor("w1's lock released", async () => !(await lockHeld(cluster, w1)), 20_000);
    const again = await pushAll(inventory, await resolve());
    assert.ok(
      again.every((o) => o.ok),
      JSON.stringify(again),
    );
    for (const w of cluster.workers) assert.equal(await leftovers(cluster, w), "");
  });

  test("two pushes and a watch at once: every worker ends on one complete release, and no lock is left", async () => {
    await writeTree(project, { "util/concurrent.py": "C = 1\n" });
    const run = (args: string[]) =>
      spawn(BIN, args, { cwd: project, env: { ...env, PYTHONPATH: "" }, stdio: "ignore" });
    const watch = run(["watch", "-i", inventoryPath, "--json"]);
    const p1 = run(["push", "-i", inventoryPath]);
    const p2 = run(["push", "-i", inventoryPath]);
    await Promise.all([p1, p2].map(exited));
    await new Promise((r) => setTimeout(r, 3000));
    watch.kill("SIGTERM");
    await exited(watch);
    const expected = await resolve();
    for (const w of cluster.workers)
      assert.equal(await currentState(cluster, w), `complete ${releaseIdOf(expected.files)}`);
    // A pusher killed while it holds w1's lock: the next push does not wait for it.
    const w1 = cluster.workers[0]!;
    await writeFile(join(project, "data", "blob1.bin"), randomBytes(1 << 20));
    proxy.slow(100_000);
    const killed = run(["push", "-i", inventoryPath, "--no-check"]);
    await waitFor("the pusher to hold w1's lock", () => lockHeld(cluster, w1), 20_000);
    assert.equal(killed.exitCode, null, "the pusher still runs while it holds the lock");
    killed.kill("SIGKILL");
    await exited(killed);
    proxy.heal();
    const started = Date.now();
    const again = await pushAll(inventory, await resolve(), { lockTimeoutSeconds: 20 });
    assert.ok(
      again.every((o) => o.ok),
      JSON.stringify(again),
    );
    assert.ok(
      Date.now() - started < 20_000,
      "the lock of the killed pusher was released with its connection",
    );
    const latest = releaseIdOf((await resolve()).files);
    for (const w of cluster.workers) {
      assert.equal(await currentState(cluster, w), `complete ${latest}`);
      assert.equal(await leftovers(cluster, w), "");
      assert.equal(await lockHeld(cluster, w), false);
    }
  });
});
