import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { makePackageProject, SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { type Cluster, sshdAvailable, startCluster } from "../harness/cluster.js";

const BIN = join(process.cwd(), "bin", "sync-cluster");
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", PYTHONPATH: "" };

function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN, args, { cwd, env }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface CheckDoc {
  nodes: {
    node: string;
    ok: boolean;
    reachable: boolean;
    results: { id: string; status: string; detail: string }[];
    fixed: string[];
  }[];
}

describe("check on real sshd workers and venvs", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let project: string;
  let inv: string;
  let leaderLibs: string;

  before(async () => {
    cluster = await startCluster({ workers: 4 });
    project = await realpath(await tempDir("check"));
    await makePackageProject(project);
    // The workflow also imports a pure-Python package that only the leader's python can see.
    await writeTree(project, { "workflow/extra.py": "import leaderonly\n" });
    leaderLibs = await tempDir("leader-libs");
    // Installed there (`pip install --target`): its .dist-info makes it a library, not project code.
    await writeTree(leaderLibs, {
      "leaderonly/__init__.py": "",
      "leaderonly-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: leaderonly\nVersion: 1.0\n",
    });
    inv = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  const check = async (...extra: string[]) => {
    const r = await cli(["check", "-i", inv, "--json", ...extra], project);
    return { code: r.code, doc: JSON.parse(r.stdout) as CheckDoc, stderr: r.stderr };
  };
  const result = (doc: CheckDoc, node: string, id: string) =>
    doc.nodes.find((n) => n.node === node)?.results.find((r) => r.id === id);

  test("healthy venvs pass; each broken one names what is wrong, in one table", async () => {
    const [w1, w2, w3, w4] = cluster.workers as [
      Cluster["workers"][0],
      Cluster["workers"][0],
      Cluster["workers"][0],
      Cluster["workers"][0],
    ];
    // w2: a venv without system site-packages, the classic failure.
    const cfg = join(w2.venv, "pyvenv.cfg");
    await writeFile(
      cfg,
      (await readFile(cfg, "utf8")).replace(
        "include-system-site-packages = true",
        "include-system-site-packages = false",
      ),
    );
    // w3: no venv at all.
    await cluster.runOnWorker(w3, `rm -rf ${w3.venv}`);
    // w4: Toil reinstalled inside the venv.
    const site = (
      await cluster.runOnWorker(
        w4,
        `${w4.python()} -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'`,
      )
    ).stdout.trim();
    await mkdir(join(site, "toil"), { recursive: true });
    await writeFile(join(site, "toil", "__init__.py"), "");
    // ... at another version than the leader's 5.9.0.
    await mkdir(join(site, "toil-5.12.0.dist-info"), { recursive: true });
    await writeFile(
      join(site, "toil-5.12.0.dist-info", "METADATA"),
      "Metadata-Version: 2.1\nName: toil\nVersion: 5.12.0\n",
    );

    const { code, doc } = await check();
    assert.equal(code, 1);
    assert.equal(result(doc, w1.name, "venv")?.status, "pass");
    assert.equal(result(doc, w1.name, "systemSite")?.status, "pass");
    assert.equal(result(doc, w1.name, "toil")?.status, "pass");
    assert.match(
      result(doc, w2.name, "systemSite")?.detail ?? "",
      new RegExp(`${cfg}:\\d+ says include-system-site-packages = false`),
    );
    assert.equal(result(doc, w2.name, "systemSite")?.status, "fail");
    assert.equal(result(doc, w3.name, "venv")?.status, "fail");
    assert.match(result(doc, w3.name, "venv")?.detail ?? "", /python3 -m venv --system-site-packages/);
    assert.equal(result(doc, w4.name, "toil")?.status, "fail");
    assert.match(
      result(doc, w4.name, "toil")?.detail ?? "",
      /Toil 5\.12\.0 was reinstalled inside the venv .*, unlike the leader's 5\.9\.0/,
    );

    const table = await cli(["check", "-i", inv], project);
    assert.equal(table.code, 1);
    assert.match(
      table.stdout,
      /^node\s+venv\s+system-site\s+python\s+toil\s+toil worker\s+imports\s+entry\s+deploy dir\s+release$/m,
    );
    assert.match(table.stdout, new RegExp(`^${w2.name}: system-site: `, "m"));
  });

  test("a module only the leader has is named, with where to get it", async () => {
    const withLib = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
      workers: [cluster.workers[0]!],
    });
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(
        BIN,
        ["check", "-i", withLib, "--json"],
        { cwd: project, env: { ...env, PYTHONPATH: leaderLibs } },
        (e, stdout) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout }),
      );
    });
    const doc = JSON.parse(r.stdout) as CheckDoc;
    assert.equal(r.code, 1);
    assert.match(result(doc, "w1", "imports")?.detail ?? "", /leaderonly is missing/);
    inv = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
    });
  });

  test("--fix turns on system site-packages and creates a missing venv, and says so", async () => {
    const { doc } = await check("--fix");
    const w2 = doc.nodes.find((n) => n.node === "w2")!;
    const w3 = doc.nodes.find((n) => n.node === "w3")!;
    assert.ok(
      w2.fixed.some((f) => /include-system-site-packages/.test(f)),
      JSON.stringify(w2.fixed),
    );
    assert.ok(
      w3.fixed.some((f) => /created/.test(f)),
      JSON.stringify(w3.fixed),
    );
    assert.equal(w2.results.find((r) => r.id === "systemSite")?.status, "pass");
    assert.equal(w3.results.find((r) => r.id === "venv")?.status, "pass");
    assert.equal(
      w3.results.find((r) => r.id === "toil")?.status,
      "pass",
      "the new venv sees the system's Toil",
    );
  });

  test("push does not push to a node whose check fails, unless --no-check", async () => {
    const w2 = cluster.workers[1]!;
    const cfg = join(w2.venv, "pyvenv.cfg");
    await writeFile(
      cfg,
      (await readFile(cfg, "utf8")).replace(
        "include-system-site-packages = true",
        "include-system-site-packages = false",
      ),
    );
    const pushed = await cli(["push", "-i", inv, "--json"], project);
    const doc = JSON.parse(pushed.stdout) as { nodes: { node: string; ok: boolean; error?: string }[] };
    assert.equal(pushed.code, 1);
    assert.match(
      doc.nodes.find((n) => n.node === w2.name)?.error ?? "",
      /not pushed, the node's check failed: system-site/,
    );
    assert.ok(
      doc.nodes.filter((n) => n.node !== w2.name && n.node !== "w4").every((n) => n.ok),
      pushed.stdout,
    );
    const forced = await cli(["push", "-i", inv, "--no-check", "--json"], project);
    const forcedDoc = JSON.parse(forced.stdout) as { nodes: { node: string; ok: boolean }[] };
    assert.equal(forcedDoc.nodes.find((n) => n.node === w2.name)?.ok, true);
  });

  test("another Python minor version and a read-only deploy directory are named on their node only", async () => {
    const w1 = cluster.workers[0]!;
    const w4 = cluster.workers[3]!;
    // w1: a stand-in interpreter that reports Python 3.9 (what a venv made from another python shows).
    const fake = join(w1.dir, "fake_python.py");
    await writeFile(
      fake,
      "import sys\nsys.version_info = (3, 9, 18, 'final', 0)\ncode = sys.argv[2]\nsys.argv = ['-c'] + sys.argv[3:]\nexec(compile(code, '<string>', 'exec'), {'__name__': '__main__'})\n",
    );
    const python = join(w1.venv, "bin", "python");
    await cluster.runOnWorker(
      w1,
      `mv ${python} ${python}.real && printf '#!/bin/sh\\nexec ${python}.real ${fake} "$@"\\n' > ${python} && chmod 755 ${python}`,
    );
    // w4: its deploy directory on a read-only file system.
    const ro = join(w4.dir, "ro");
    let mounted = false;
    try {
      await mkdir(ro, { recursive: true });
      const m = await cluster.runOnWorker(w4, `mount -t tmpfs -o ro,size=1m tmpfs ${ro}`);
      mounted = m.code === 0;
      const readOnly = cluster.writeInventory({
        project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
        workers: [w1, w4],
      });
      const text = await readFile(readOnly, "utf8");
      if (mounted)
        await writeFile(
          readOnly,
          text.replace(`deployDir: ${w4.deployDir}`, `deployDir: ${join(ro, "deploy")}`),
        );
      const r = await cli(["check", "-i", readOnly, "--json"], project);
      const doc = JSON.parse(r.stdout) as CheckDoc;
      assert.equal(r.code, 1);
      assert.equal(result(doc, w1.name, "python")?.status, "fail");
      assert.match(
        result(doc, w1.name, "python")?.detail ?? "",
        /Python 3\.9\.18 on the node, 3\.11\.\d+ on the leader/,
      );
      assert.equal(result(doc, w1.name, "deployDir")?.status, "pass");
      if (mounted) {
        assert.equal(result(doc, w4.name, "deployDir")?.status, "fail");
        assert.match(result(doc, w4.name, "deployDir")?.detail ?? "", /is not writable/);
        assert.equal(result(doc, w4.name, "python")?.status, "pass");
      }
    } finally {
      await cluster.runOnWorker(w1, `mv ${python}.real ${python}`);
      if (mounted) await cluster.runOnWorker(w4, `umount ${ro}`);
    }
  });

  test("--fix changes nothing on a good node", async () => {
    const w1 = cluster.workers[0]!;
    const good = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
      workers: [w1],
    });
    const cfg = join(w1.venv, "pyvenv.cfg");
    const before = await readFile(cfg, "utf8");
    const r = await cli(["check", "-i", good, "--fix", "--json"], project);
    const doc = JSON.parse(r.stdout) as CheckDoc;
    assert.deepEqual(doc.nodes[0]?.fixed, []);
    assert.equal(await readFile(cfg, "utf8"), before);
  });
});
