import assert from "node:assert/strict";
import { readdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Inventory } from "../../src/core/inventory/inventory-types.js";
import { loadInventory } from "../../src/inventory/load.js";
import { type NodeOutcome, type PushEvent, pushAll } from "../../src/push/push.js";
import { type Resolution, resolveProject } from "../../src/resolve/resolver.js";
import {
  makePackageProject,
  makeSiblingProject,
  resolveWorkflowMain,
  run,
  SYSTEM_PYTHON,
  tempDir,
  writeTree,
} from "../fixtures/projects.js";
import { underPty } from "../fixtures/pty.js";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../harness/cluster.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };
const BIN = join(process.cwd(), "bin", "sync-cluster");

async function workerPython(cluster: Cluster, w: WorkerHandle, code: string) {
  return cluster.runOnWorker(w, `cd / && ${w.python()} -c '${code}'`);
}

function byNode(outcomes: NodeOutcome[]): Map<string, NodeOutcome> {
  return new Map(outcomes.map((o) => [o.node, o]));
}

describe("push to real sshd workers", { skip: !sshdAvailable() && "sshd is not installed" }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster({ workers: 3 });
  });
  after(async () => {
    await cluster?.stop();
  });

  /**
   * A project of the test's own (its directory, and its name on the workers), written to the
   * cluster's inventory, so that no test depends on what another pushed.
   */
  async function freshProject(name: string): Promise<{
    project: string;
    inventory: Inventory;
    resolve: () => Promise<Resolution>;
  }> {
    // Every test's project has the same top-level names (workflow, util): the previous test's
    // .pth would put its release first (check names that as another project's).
    await Promise.all(
      cluster.workers.map((w) =>
        cluster.runOnWorker(w, `rm -f ${w.venv}/lib/python3*/site-packages/sync-cluster-*.pth`),
      ),
    );
    const project = await realpath(await tempDir(name));
    await makePackageProject(project);
    cluster.writeInventory({ project: { root: project, entry: "-m workflow.main", name } });
    const inventory = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    return { project, inventory, resolve: () => resolveWorkflowMain(project, env) };
  }

  async function pushed(inventory: Inventory, resolution: Resolution): Promise<void> {
    const outcomes = await pushAll(inventory, resolution);
    assert.ok(
      outcomes.every((o) => o.ok),
      JSON.stringify(outcomes),
    );
  }

  test("the package hierarchy reaches every worker and imports there from any directory", async () => {
    const { inventory, resolve } = await freshProject("hierarchy");
    const events: PushEvent[] = [];
    const outcomes = await pushAll(inventory, await resolve(), { onEvent: (e) => events.push(e) });
    assert.ok(
      outcomes.every((o) => o.ok && o.result?.status === "published"),
      JSON.stringify(outcomes),
    );
    // Live progress: each worker goes through its phases in order, and the bytes reported
    // climb to the whole archive the worker received.
    for (const o of outcomes) {
      const mine = events.filter((e) => "node" in e && e.node === o.node);
      const phases = mine.map((e) => (e.type === "node-progress" ? e.phase : e.type));
      const order = ["node-start", "preparing", "sending", "publishing", "node-done"];
      assert.deepEqual(
        phases.filter((p, i) => p !== phases[i - 1]),
        order,
        `${o.node}: ${phases.join(" ")}`,
      );
      const sent = mine.flatMap((e) => (e.type === "node-progress" && e.phase === "sending" ? [e] : []));
      assert.ok(sent.every((e, i) => i === 0 || e.bytesSent >= sent[i - 1]!.bytesSent));
      assert.equal(sent.at(-1)?.bytesSent, o.result?.bytesSent);
      assert.equal(sent.at(-1)?.bytesTotal, o.result?.bytesSent);
      assert.equal(sent[0]?.files, o.result?.filesSent);
    }
    for (const w of cluster.workers) {
      const r = await workerPython(
        cluster,
        w,
        "import workflow.main, util.sort.quick as q; print(q.quick_sort([3,1,2]))",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), "[1, 2, 3]");
    }
  });

  test("pushing the same content again sends nothing and changes nothing", async () => {
    const { inventory, resolve } = await freshProject("same");
    await pushed(inventory, await resolve());
    const before = await Promise.all(
      cluster.workers.map((w) => cluster.runOnWorker(w, `readlink ${w.deployDir}/same/current`)),
    );
    const outcomes = await pushAll(inventory, await resolve());
    for (const o of outcomes) {
      assert.equal(o.result?.status, "unchanged");
      assert.equal(o.result?.bytesSent, 0);
    }
    const after = await Promise.all(
      cluster.workers.map((w) => cluster.runOnWorker(w, `readlink ${w.deployDir}/same/current`)),
    );
    assert.deepEqual(
      after.map((a) => a.stdout),
      before.map((b) => b.stdout),
    );
  });

  test("incremental: only the changed, added files travel; the tree equals the set; the old release is intact", async () => {
    const { project, inventory, resolve } = await freshProject("incremental");
    const r1 = await resolve();
    await pushed(inventory, r1);
    const w1 = cluster.workers[0]!;
    const oldId = (
      await cluster.runOnWorker(w1, `basename "$(readlink ${w1.deployDir}/incremental/current)"`)
    ).stdout.trim();
    await writeFile(
      join(project, "util/sort/quick.py"),
      `${await readFile(join(project, "util/sort/quick.py"), "utf8")}\nCHANGED = True\n`,
    );
    await writeTree(project, { "util/extra.py": "EXTRA = 1\n" });
    await rm(join(project, "util/sort/__init__.py"));
    await writeFile(join(project, "util/sort/__init__.py"), "");
    await rm(join(project, "workflow/__init__.py"));
    await writeTree(project, { "workflow/__init__.py": "# changed\n" });
    const r2 = await resolve();
    assert.notEqual(r1.files.length, 0);
    const outcomes = await pushAll(inventory, r2);
    for (const o of outcomes) {
      assert.equal(o.result?.status, "published", o.error);
      assert.equal(o.result?.filesSent, 3, "quick.py, extra.py and workflow/__init__.py");
    }
    for (const w of cluster.workers) {
      const listing = await cluster.runOnWorker(
        w,
        `cd ${w.deployDir}/incremental/current && find -L . -type f ! -name .sync-cluster-manifest.json ! -path '*/__pycache__/*' | sort`,
      );
      assert.deepEqual(listing.stdout.trim().split("\n"), r2.files.map((f) => `./${f.path}`).sort());
      const old = await cluster.runOnWorker(
        w,
        `test -f ${w.deployDir}/incremental/releases/${oldId}/util/sort/quick.py && grep -c CHANGED ${w.deployDir}/incremental/releases/${oldId}/util/sort/quick.py || true`,
      );
      assert.equal(old.stdout.trim(), "0", `the old release ${oldId} is untouched: ${old.stderr}`);
    }
  });

  test("incremental with the base's manifest not kept on the leader (or kept wrong): asked of the worker, only the change travels", async () => {
    const { project, inventory, resolve } = await freshProject("base-asked");
    const saved = process.env.XDG_CACHE_HOME;
    const caches = await tempDir("base-asked-cache");
    try {
      process.env.XDG_CACHE_HOME = join(caches, "first");
      await pushed(inventory, await resolve());
      const [dir] = await readdir(join(caches, "first", "sync-cluster"));
      const [kept] = await readdir(join(caches, "first", "sync-cluster", dir!));
      const oldId = kept!.replace(/\.json$/, "");
      // A second leader's cache: one holding a manifest under the base's id that is not the base's.
      process.env.XDG_CACHE_HOME = join(caches, "second");
      await writeTree(join(caches, "second", "sync-cluster", dir!), {
        [kept!]: JSON.stringify([
          { path: "workflow/__init__.py", size: 0, mode: 0o644, sha256: "0".repeat(64) },
        ]),
      });
      await writeFile(join(project, "util/extra.py"), "EXTRA = 2\n");
      const outcomes = await pushAll(inventory, await resolve());
      for (const o of outcomes) {
        assert.equal(o.result?.status, "published", o.error);
        assert.equal(o.result?.filesSent, 1, "util/extra.py alone");
        assert.equal(o.result?.previous, oldId);
      }
      const now = await readdir(join(caches, "second", "sync-cluster", dir!));
      assert.equal(now.length, 2, "the new release's manifest is kept for the next push");
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
  });

  test("--dry-run lists what each worker would receive and drop, and changes nothing; then the deleted file disappears", async () => {
    const { project, inventory, resolve } = await freshProject("dry");
    await writeTree(project, { "util/extra.py": "EXTRA = 1\n" });
    await pushed(inventory, await resolve());
    await rm(join(project, "util/extra.py"));
    await writeTree(project, { "util/dry run.py": "DRY = 1\n" });
    const currents = async () =>
      Promise.all(
        cluster.workers.map(
          async (w) =>
            (
              await cluster.runOnWorker(
                w,
                `readlink ${w.deployDir}/dry/current; ls ${w.deployDir}/dry/releases | wc -l`,
              )
            ).stdout,
        ),
      );
    const before = await currents();
    const dry = await run(BIN, ["push", "-i", cluster.inventoryPath, "--dry-run"], {
      cwd: project,
      env: { ...env, PYTHONPATH: "" },
    });
    for (const w of cluster.workers) {
      assert.match(
        dry.stdout,
        new RegExp(`^${w.name}\\s+would-publish\\s+would send 1 file\\(s\\), 8 B, would remove 1;`, "m"),
      );
    }
    assert.equal(
      dry.stdout.match(/^ {6}\+ util\/dry run\.py$/gm)?.length,
      cluster.workers.length,
      dry.stdout,
    );
    assert.equal(dry.stdout.match(/^ {6}- util\/extra\.py$/gm)?.length, cluster.workers.length, dry.stdout);
    assert.match(dry.stdout, /3 worker\(s\) looked at; nothing was changed/);
    assert.deepEqual(await currents(), before);
    await rm(join(project, "util/dry run.py"));
    const outcomes = await pushAll(inventory, await resolve());
    assert.ok(outcomes.every((o) => o.ok));
    for (const w of cluster.workers) {
      const r = await cluster.runOnWorker(w, `test -e ${w.deployDir}/dry/current/util/extra.py; echo $?`);
      assert.equal(r.stdout.trim(), "1");
    }
  });

  test("one worker down: the others converge, it is named as failed; after a restart all converge", async () => {
    const { project, inventory, resolve } = await freshProject("down");
    const down = cluster.workers[1]!;
    await down.stop();
    await writeTree(project, { "util/later.py": "LATER = 1\n" });
    const outcomes = byNode(await pushAll(inventory, await resolve()));
    assert.equal(outcomes.get(down.name)?.ok, false);
    assert.match(outcomes.get(down.name)?.error ?? "", /refused/);
    for (const w of cluster.workers.filter((x) => x !== down)) assert.equal(outcomes.get(w.name)?.ok, true);
    await down.start();
    const again = await pushAll(inventory, await resolve());
    assert.ok(
      again.every((o) => o.ok),
      JSON.stringify(again),
    );
    const r = await workerPython(cluster, down, "import util.later");
    assert.equal(r.code, 0, r.stderr);
  });

  test("the CLI: exit 1 and a summary that names the failed node; --json is one document", async () => {
    const { project } = await freshProject("cli");
    const down = cluster.workers[2]!;
    await down.stop();
    try {
      const result = await run(BIN, ["push", "-i", cluster.inventoryPath, "--json"], {
        cwd: project,
        env: { ...env, PYTHONPATH: "" },
      }).catch((e: { code: number; stdout: string; stderr: string }) => e);
      assert.equal((result as { code?: number }).code, 1);
      const doc = JSON.parse((result as { stdout: string }).stdout);
      const failed = doc.nodes.filter((n: { ok: boolean }) => !n.ok).map((n: { node: string }) => n.node);
      assert.deepEqual(failed, [down.name]);
      // --ndjson: the push as it happens, one event per line, and the same outcome last.
      await writeFile(join(project, "workflow", "ndjson_marker.py"), "MARK = 1\n");
      const streamed = await run(BIN, ["push", "-i", cluster.inventoryPath, "--ndjson"], {
        cwd: project,
        env: { ...env, PYTHONPATH: "" },
      }).catch((e: { code: number; stdout: string; stderr: string }) => e);
      assert.equal((streamed as { code?: number }).code, 1);
      const lines = (streamed as { stdout: string }).stdout
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.ok(lines.every((l) => typeof l.time === "string" && typeof l.type === "string"));
      const releases = lines.filter((l) => l.type === "release");
      assert.equal(releases.length, 1);
      const last = lines.at(-1);
      assert.equal(last.type, "summary");
      assert.equal(last.release, releases[0].release);
      assert.deepEqual(
        last.nodes.filter((n: { ok: boolean }) => !n.ok).map((n: { node: string }) => n.node),
        [down.name],
      );
      for (const w of cluster.workers.filter((w) => w !== down)) {
        const types = lines.filter((l) => l.node === w.name).map((l) => l.phase ?? l.type);
        assert.deepEqual(
          types.filter((t, i) => t !== types[i - 1]),
          ["node-start", "checking", "preparing", "sending", "publishing", "node-done"],
        );
      }
      assert.ok(lines.some((l) => l.type === "node-failed" && l.node === down.name));
      const both = await run(BIN, ["push", "-i", cluster.inventoryPath, "--json", "--ndjson"], {
        cwd: project,
        env,
      }).catch((e: { code: number; stderr: string }) => e);
      assert.equal((both as { code?: number }).code, 2);
      assert.match((both as { stderr: string }).stderr, /--json and --ndjson cannot be used together/);
    } finally {
      await down.start();
    }
  });

  test("on a terminal: a live line per worker while it runs, cleared before the summary table", async () => {
    const { project } = await freshProject("terminal");
    // A module large enough that the transfer is still under way when the block is drawn.
    const big = join(project, "workflow", "big_table.py");
    await writeFile(
      big,
      `TABLE = [\n${"    'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',\n".repeat(100_000)}]\n`,
    );
    try {
      const shown = await underPty([BIN, "push", "-i", cluster.inventoryPath], "", {
        cwd: project,
        env: { ...env, PYTHONPATH: "", TERM: "xterm" },
      });
      assert.equal(shown.code, 0, shown.stdout);
      for (const w of cluster.workers) {
        assert.match(
          shown.stdout,
          new RegExp(`${w.name}\\s+(queued|connecting|preparing|sending|publishing|done)`),
        );
      }
      assert.match(shown.stdout, /\x1b\[3A\x1b\[J/, "the block of 3 lines is cleared in place");
      const summary = shown.stdout.slice(shown.stdout.lastIndexOf("\x1b[J") + 3);
      assert.match(summary, /^release [0-9a-f]+/m);
      assert.match(summary, /3 worker\(s\) converged/);
      assert.doesNotMatch(summary, /queued|connecting|sending|publishing/);
    } finally {
      await rm(big);
    }
  });

  test("file names with spaces, quotes, newlines, leading dashes and non-ASCII arrive intact", async () => {
    const dir = await realpath(await tempDir("names"));
    await makeSiblingProject(dir);
    const odd = [
      "with space.txt",
      "quote'single.txt",
      'quote"double.txt',
      "new\nline.txt",
      "-leading.txt",
      "ünïcødé.txt",
      "$(touch pwned).txt",
      "back\\slash.txt",
    ];
    await writeTree(dir, Object.fromEntries(odd.map((n) => [`data/${n}`, `content of ${n}\n`])));
    cluster.writeInventory({
      project: { root: dir, entry: "userScript.py", name: "names", include: ["data/*"] },
    });
    const inv = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const r = await resolveProject({
      entry: { kind: "script", path: join(dir, "userScript.py") },
      startDir: dir,
      python: SYSTEM_PYTHON,
      env,
      include: ["data/*"],
    });
    assert.equal(r.files.filter((f) => f.path.startsWith("data/")).length, odd.length);
    const outcomes = await pushAll(inv, r);
    assert.ok(
      outcomes.every((o) => o.ok),
      JSON.stringify(outcomes),
    );
    for (const w of cluster.workers) {
      const check = await cluster.runOnWorker(
        w,
        `cd / && ${w.python()} -c 'import os, sys, json; d = sys.argv[1]; print(json.dumps(sorted(os.listdir(d))))' ${w.deployDir}/names/current/data`,
      );
      assert.deepEqual(JSON.parse(check.stdout), [...odd].sort());
      const imp = await workerPython(cluster, w, "import userScript; print(userScript.run())");
      assert.equal(imp.stdout.trim(), "42");
      const pwned = await cluster.runOnWorker(w, "ls / ~ | grep -c pwned || true");
      assert.equal(pwned.stdout.trim(), "0");
    }
  });

  test("end to end: a real Toil workflow runs on a worker from the pushed package", async () => {
    const { inventory, resolve } = await freshProject("toil_run");
    await pushed(inventory, await resolve());
    const w = cluster.workers[0]!;
    const r = await cluster.runOnWorker(
      w,
      `cd $(mktemp -d) && ${w.python()} -m workflow.main ./jobstore --batchSystem single_machine --workDir $PWD --clean always 2>&1 | tail -5`,
    );
    assert.match(r.stdout, /sorted: 1 2 3 4 5/, r.stdout + r.stderr);
  });
});
