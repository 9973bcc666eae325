import assert from "node:assert/strict";
import { realpath } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { releaseIdOf } from "../../src/core/release/manifest.js";
import { loadInventory } from "../../src/inventory/load.js";
import { pushAll } from "../../src/push/push.js";
import { leaderExpectations } from "../../src/readiness/leader-expectations.js";
import { type Resolution, resolveProject } from "../../src/resolve/resolver.js";
import { makeVenv, run, SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { type Cluster, sshdAvailable, startCluster } from "../harness/cluster.js";

/**
 * The shapes real Toil projects take that a simpler resolver gets wrong, each resolved, pushed to a real
 * worker and run there the way its code runs: imported from any directory, its data files read
 * through `__file__` and `importlib.resources`.
 */

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };

/** A package that reads its data files the two ways workflows do. */
const READS_DATA = `import json, os
from importlib import resources

HERE = os.path.dirname(__file__)


def run():
    with open(os.path.join(HERE, "defaults.yaml")) as f:
        defaults = f.read().strip()
    schema = json.loads(resources.files(__package__).joinpath("schema.json").read_text())
    template = resources.files(__package__).joinpath("templates/report.txt").read_text().strip()
    return f"{defaults} {schema['title']} {template}"
`;

describe("real project shapes on a real worker", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster({ workers: 1 });
  });
  after(async () => {
    await cluster?.stop();
  });

  /** Pushes a resolution as project `name` (checking the node first, as push does) and runs `code` on the worker. */
  async function pushAndRun(r: Resolution, name: string, code: string): Promise<string> {
    cluster.writeInventory({ project: { name } });
    const inventory = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const outcomes = await pushAll(inventory, r, { leader: leaderExpectations });
    assert.ok(
      outcomes.every((o) => o.ok),
      JSON.stringify(outcomes),
    );
    const w = cluster.workers[0]!;
    const result = await cluster.runOnWorker(w, `cd / && ${w.python()} -c '${code}'`);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }

  test("shape 1: a src/ root with its own __init__.py resolves with a warning and imports on the worker", async () => {
    const repo = await realpath(await tempDir("shape1"));
    await writeTree(repo, {
      "src/__init__.py": "",
      "src/wf1/__init__.py": "",
      "src/wf1/main.py": "def run():\n    return 'shape1 ok'\n",
    });
    const r = await resolveProject({
      entry: { kind: "module", name: "wf1.main" },
      startDir: repo,
      python: SYSTEM_PYTHON,
      env: { ...env, PYTHONPATH: "src" },
    });
    assert.equal(r.root, join(repo, "src"));
    assert.ok(r.warnings.some((w) => w.includes("__init__.py is ignored")));
    assert.equal(await pushAndRun(r, "shape1", "import wf1.main; print(wf1.main.run())"), "shape1 ok");
  });

  test("shape 2: package data ships (not .gitignored files, not setup.py) and is read on the worker", async () => {
    const repo = await realpath(await tempDir("shape2"));
    await writeTree(repo, {
      ".gitignore": "*.tmp\noutput/\n",
      "setup.py": "raise SystemExit('setup.py must never run on a worker')\n",
      "conftest.py": "raise SystemExit('conftest.py must never ship')\n",
      "src/wf2/__init__.py": "",
      "src/wf2/pipeline/__init__.py": READS_DATA,
      "src/wf2/pipeline/main.py": "from wf2.pipeline import run\n",
      "src/wf2/pipeline/defaults.yaml": "threads: 4\n",
      "src/wf2/pipeline/schema.json": '{"title": "schema"}\n',
      "src/wf2/pipeline/templates/report.txt": "report\n",
      "src/wf2/pipeline/scratch.tmp": "not shipped\n",
      "src/wf2/pipeline/output/result.txt": "not shipped\n",
    });
    await run("git", ["init", "-q", repo]);
    const r = await resolveProject({
      entry: { kind: "module", name: "wf2.pipeline.main" },
      startDir: join(repo, "src"),
      python: SYSTEM_PYTHON,
      env,
    });
    assert.deepEqual(
      r.files.map((f) => f.path),
      [
        "wf2/__init__.py",
        "wf2/pipeline/__init__.py",
        "wf2/pipeline/defaults.yaml",
        "wf2/pipeline/main.py",
        "wf2/pipeline/schema.json",
        "wf2/pipeline/templates/report.txt",
      ],
    );
    const both = await pushAndRun(r, "shape2", "import wf2.pipeline.main as m; print(m.run())");
    assert.equal(both, "threads: 4 schema report");
    // From the repository's root, setup.py and conftest.py are at the root: they never ship.
    const fromTop = await resolveProject({
      entry: { kind: "module", name: "wf2.pipeline.main" },
      startDir: repo,
      python: SYSTEM_PYTHON,
      env: { ...env, PYTHONPATH: "src" },
    });
    assert.ok(!fromTop.files.some((f) => f.path === "setup.py" || f.path === "conftest.py"));
  });

  test("shape 3: project code on a second PYTHONPATH entry ships as a root of its own, in the leader's order", async () => {
    const repo = await realpath(await tempDir("shape3"));
    await writeTree(repo, {
      "version.py": "VERSION = '1.0'\n",
      "submodules/helperlib/src/helperlib/__init__.py":
        "import os\n\ndef f():\n    return open(os.path.join(os.path.dirname(__file__), 'table.tsv')).read().strip()\n",
      "submodules/helperlib/src/helperlib/table.tsv": "a\tb\n",
      "src/wf3/__init__.py": "",
      "src/wf3/main.py": "from helperlib import f\n\ndef run():\n    return 'shape3 ' + f()\n",
      "src/wf3/about.py": "import version\n",
    });
    const r = await resolveProject({
      entry: { kind: "module", name: "wf3.main" },
      startDir: repo,
      python: SYSTEM_PYTHON,
      env: { ...env, PYTHONPATH: "submodules/helperlib/src:src" },
    });
    assert.deepEqual(r.roots, [join(repo, "submodules/helperlib/src"), join(repo, "src")]);
    assert.equal(r.root, join(repo, "src"));
    assert.deepEqual(
      r.files.map((f) => [f.root, f.path]),
      [
        [0, "helperlib/__init__.py"],
        [0, "helperlib/table.tsv"],
        [1, "wf3/__init__.py"],
        [1, "wf3/about.py"],
        [1, "wf3/main.py"],
      ],
    );
    assert.ok(r.release.every((f) => f.path.startsWith(".roots/")));
    assert.ok(!r.thirdParty.some((t) => t.module === "helperlib"));
    // version.py sits in the start directory: found on the leader, not shipped.
    assert.deepEqual(
      r.notShipped.map((n) => n.module),
      ["version"],
    );
    assert.deepEqual(r.unresolved, []);
    assert.ok(r.warnings.some((w) => w.includes("is found on the leader, not shipped")));
    assert.equal(await pushAndRun(r, "shape3", "import wf3.main; print(wf3.main.run())"), "shape3 a\tb");
    // On the worker's path, the release's roots come in the leader's order, before site-packages.
    const w = cluster.workers[0]!;
    const id = releaseIdOf(r.release);
    const path = await cluster.runOnWorker(
      w,
      `cd / && ${w.python()} -c 'import sys; print("\\n".join(p for p in sys.path if "shape3" in p or p.endswith("-packages")))'`,
    );
    assert.deepEqual(path.stdout.trim().split("\n").slice(0, 3), [
      `${w.deployDir}/shape3/releases/${id}/.roots/0`,
      `${w.deployDir}/shape3/releases/${id}/.roots/1`,
      `${w.venv}/lib/python3.11/site-packages`,
    ]);
  });

  test("shape 4: optional imports are listed, never a failure, and never make push refuse the node", async () => {
    const repo = await realpath(await tempDir("shape4"));
    await writeTree(repo, {
      "wf4/__init__.py": "",
      "wf4/main.py": [
        "try:",
        "    import azure_sdk_xyz as azure",
        "except ImportError:",
        "    azure = None",
        "try:",
        "    import leaderonly",
        "except ImportError:",
        "    leaderonly = None",
        "",
        "def run():",
        "    return 'shape4 ok' if azure is None and leaderonly is None else 'unexpected'",
        "",
      ].join("\n"),
    });
    // A package the leader's venv has and no worker has (installed with pip on the leader only).
    const python = await makeVenv(join(repo, "leader-venv"));
    const { stdout: site } = await run(python, [
      "-c",
      "import sysconfig; print(sysconfig.get_paths()['purelib'])",
    ]);
    await writeTree(site.trim(), {
      "leaderonly/__init__.py": "",
      "leaderonly-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: leaderonly\nVersion: 1.0\n",
      "leaderonly-1.0.dist-info/RECORD": "leaderonly/__init__.py,,\n",
    });
    const r = await resolveProject({
      entry: { kind: "module", name: "wf4.main" },
      startDir: repo,
      python,
      env,
    });
    assert.deepEqual(r.unresolved, []);
    assert.deepEqual(
      r.optional.map((o) => [o.module, o.found]),
      [
        ["azure_sdk_xyz", false],
        ["leaderonly", true],
      ],
    );
    assert.ok(!r.warnings.some((w) => w.includes("will fail")));
    assert.equal(r.thirdParty.find((t) => t.module === "leaderonly")?.optional, true);
    assert.equal(await pushAndRun(r, "shape4", "import wf4.main; print(wf4.main.run())"), "shape4 ok");
  });

  test("a push refuses to replace another project of the same name on a worker unless --replace", async () => {
    const make = async (tag: string) => {
      const dir = await realpath(await tempDir(`clash-${tag}`));
      await writeTree(dir, { [`clash_${tag}/__init__.py`]: "", [`clash_${tag}/main.py`]: "X = 1\n" });
      return resolveProject({
        entry: { kind: "module", name: `clash_${tag}.main` },
        startDir: dir,
        python: SYSTEM_PYTHON,
        env,
      });
    };
    cluster.writeInventory({ project: { name: "clash" } });
    const inventory = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const first = await pushAll(inventory, await make("a"));
    assert.ok(
      first.every((o) => o.ok),
      JSON.stringify(first),
    );
    const other = await make("b");
    const refused = await pushAll(inventory, other);
    assert.equal(refused[0]?.ok, false);
    assert.match(
      refused[0]?.error ?? "",
      /holds another project named `clash`, pushed from .*clash-a.*--replace/,
    );
    const w = cluster.workers[0]!;
    const still = await cluster.runOnWorker(w, `cd / && ${w.python()} -c "import clash_a.main"`);
    assert.equal(still.code, 0, "the first project is untouched");
    const replaced = await pushAll(inventory, other, { replace: true });
    assert.ok(
      replaced.every((o) => o.ok),
      JSON.stringify(replaced),
    );
    const now = await cluster.runOnWorker(w, `cd / && ${w.python()} -c "import clash_b.main"`);
    assert.equal(now.code, 0, now.stderr);
    // The new origin is recorded: pushing the second project again needs no --replace.
    assert.ok((await pushAll(inventory, other)).every((o) => o.ok));
  });

  test("push refuses modules that do not compile with the leader's Python, unless --force", async () => {
    const dir = await realpath(await tempDir("broken"));
    await writeTree(dir, { "brk/__init__.py": "", "brk/main.py": "def broken(:\n    pass\n" });
    const r = await resolveProject({
      entry: { kind: "module", name: "brk.main" },
      startDir: dir,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.deepEqual(
      r.syntaxErrors.map((e) => [e.file, e.line]),
      [["brk/main.py", 1]],
    );
    cluster.writeInventory({ project: { name: "broken" } });
    const inventory = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    await assert.rejects(
      pushAll(inventory, r),
      /Not pushed: 1 module\(s\) do not compile[\s\S]*brk\/main\.py:1:[\s\S]*--force/,
    );
    const w = cluster.workers[0]!;
    const none = await cluster.runOnWorker(w, `test -e ${w.deployDir}/broken/current; echo $?`);
    assert.equal(none.stdout.trim(), "1", "nothing was pushed");
    assert.ok((await pushAll(inventory, r, { force: true })).every((o) => o.ok));
  });

  test("without project.name, a src root is named by its project's metadata or its parent directory", async () => {
    const repo = await realpath(await tempDir("named"));
    await writeTree(repo, { "pyproject.toml": '[project]\nname = "neo-pipeline"\n', "src/x.py": "" });
    cluster.writeInventory({ project: { root: join(repo, "src") } });
    assert.equal(
      (await loadInventory({ explicitPath: cluster.inventoryPath, env })).project.name,
      "neo-pipeline",
    );
    const bare = await realpath(await tempDir("bare"));
    await writeTree(bare, { "src/x.py": "" });
    cluster.writeInventory({ project: { root: join(bare, "src") } });
    const name = (await loadInventory({ explicitPath: cluster.inventoryPath, env })).project.name;
    assert.equal(name, bare.slice(bare.lastIndexOf("/") + 1));
  });
});
