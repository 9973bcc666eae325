import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { readdir, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { type CliRun, runCli } from "../fixtures/cli.js";
import { run, SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";
import { type Cluster, daemonPidIn, processAlive, sshdAvailable, startCluster } from "../harness/cluster.js";

/**
 * The resolution the daemon keeps warm between pushes, with a real daemon, a real interpreter and
 * a real worker: after a first push through the daemon, each change Python would see when it
 * imports the workflow makes the next push through the daemon see it too. Every push through the
 * daemon is compared with a push's dry run that connects directly (and so resolves afresh); a
 * push after no change must be answered by the kept resolution. Each test's daemon is stopped by
 * its PID (afterEach).
 */

const SITE = join("lib", "python3.11", "site-packages");

interface Pushed {
  release: string;
  files: number;
  warnings: string[];
  /** What the push said about the daemon's resolution (--verbose). */
  said: string;
}

describe("the daemon's warm resolution", { skip: !sshdAvailable() && "sshd is not installed" }, () => {
  let cluster: Cluster;
  let base: string;
  let daemonDir: string;
  let serial = 0;

  before(async () => {
    cluster = await startCluster({ workers: 1 });
    base = await realpath(await tempDir("warm"));
    daemonDir = join(cluster.dir, "daemon");
  });
  afterEach(async () => {
    const pid = daemonPidIn(daemonDir);
    if (pid !== undefined && processAlive(pid)) {
      process.kill(pid, "SIGTERM");
      await waitFor("the daemon to stop", () => !processAlive(pid), 10_000);
    }
  });
  after(async () => {
    await cluster?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  /**
   * A project of its own (and a venv of its own, the leader's interpreter) for one test; the
   * worker forgets the earlier tests' projects, which provide the same top-level names.
   */
  const project = async (files: Record<string, string>, venvOptions: string[] = []) => {
    const deployDir = cluster.workers[0]!.deployDir;
    for (const old of await readdir(deployDir).catch(() => []))
      await rm(join(deployDir, old), { recursive: true, force: true });
    const name = `warm${++serial}`;
    const dir = join(base, name);
    const root = join(dir, "project");
    const venv = join(dir, "venv");
    await writeTree(root, { "workflow/__init__.py": "", "util/__init__.py": "", ...files });
    await run(SYSTEM_PYTHON, ["-m", "venv", "--without-pip", ...venvOptions, venv]);
    const inventory = join(dir, "inventory.yaml");
    cluster.writeInventory({
      project: { root, entry: "-m workflow.main", name, python: join(venv, "bin", "python") },
      extra: { daemon: 600 },
    });
    writeFileSync(inventory, readFileSync(cluster.inventoryPath));
    return { name, root, venv, site: join(venv, SITE), inventory };
  };

  const cli = (cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> =>
    runCli(args, cwd, { SYNC_CLUSTER_DAEMON: "on", SYNC_CLUSTER_DAEMON_DIR: daemonDir, ...env });

  const pushed = (r: CliRun): Pushed => {
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const outcome = JSON.parse(r.stdout) as { release: string; files: number; warnings: string[] };
    return { release: outcome.release, files: outcome.files, warnings: outcome.warnings, said: r.stderr };
  };

  /**
   * A push through the daemon, checked against what a command resolving afresh makes of the same
   * tree and environment (a dry run connecting directly).
   */
  const push = async (p: { root: string; inventory: string }, env: Record<string, string> = {}) => {
    const through = pushed(await cli(p.root, ["push", "-i", p.inventory, "--json", "-v", "--no-check"], env));
    const fresh = pushed(
      await cli(p.root, ["push", "-i", p.inventory, "--json", "--dry-run", "--no-daemon", "--no-check"], env),
    );
    assert.deepEqual(
      [through.release, through.files, through.warnings],
      [fresh.release, fresh.files, fresh.warnings],
      `the daemon's resolution differs from a fresh one (${through.said})`,
    );
    return through;
  };

  const kept = /daemon: the resolution the daemon keeps is current/;
  const resolvedAgain = /daemon: resolved by the daemon \(/;

  /** The first push, then one with nothing changed: answered from what the daemon keeps. */
  const warmUp = async (p: { root: string; inventory: string }, env: Record<string, string> = {}) => {
    const first = await push(p, env);
    assert.match(first.said, resolvedAgain);
    const second = await push(p, env);
    assert.match(second.said, kept, "a push with nothing changed is answered from the kept resolution");
    assert.equal(second.release, first.release);
    return first;
  };

  const onWorker = (p: { name: string }, path: string) =>
    readFile(join(cluster.workers[0]!.deployDir, p.name, "current", path), "utf8").catch(() => undefined);

  const unresolved = (p: Pushed, module: string) =>
    p.warnings.some((w) => w.includes(`\`import ${module}\` cannot be resolved`));

  test("an edited module", async () => {
    const p = await project({ "workflow/main.py": "import util.calc\n", "util/calc.py": "VALUE = 1\n" });
    const first = await warmUp(p);
    await writeFile(join(p.root, "util", "calc.py"), "VALUE = 2\n");
    const next = await push(p);
    assert.match(next.said, resolvedAgain);
    assert.notEqual(next.release, first.release);
    assert.equal(await onWorker(p, "util/calc.py"), "VALUE = 2\n");
  });

  test("a new module the entry imports", async () => {
    // A directory without __init__.py ships only when the workflow imports from it.
    const p = await project({ "workflow/main.py": "import util\n" });
    const first = await warmUp(p);
    await writeTree(p.root, {
      "plugins/fresh.py": "FRESH = True\n",
      "workflow/main.py": "import util\nimport plugins.fresh\n",
    });
    const next = await push(p);
    assert.equal(next.files, first.files + 1);
    assert.equal(await onWorker(p, "plugins/fresh.py"), "FRESH = True\n");
  });

  test("a compiled extension added to a package of the set", async () => {
    const p = await project({ "workflow/main.py": "import util.calc\n", "util/calc.py": "VALUE = 1\n" });
    const first = await warmUp(p);
    const extension = "util/_speed.cpython-311-x86_64-linux-gnu.so";
    await writeFile(join(p.root, extension), "\x7fELF not really");
    const next = await push(p);
    assert.equal(next.files, first.files + 1);
    assert.equal(await onWorker(p, extension), "\x7fELF not really");
  });

  test("a .pth file in the venv's site-packages puts an imported module on the path", async () => {
    const p = await project({ "workflow/main.py": "import helper\n" });
    assert.ok(unresolved(await warmUp(p), "helper"), "helper is nowhere yet");
    const extra = join(p.root, "..", "extra");
    await writeTree(extra, { "helper.py": "HELP = 1\n" });
    await writeFile(join(p.site, "extra.pth"), `${extra}\n`);
    const next = await push(p);
    assert.match(next.said, resolvedAgain);
    assert.ok(!unresolved(next, "helper"), "helper is found where the .pth file points");
  });

  test("a package installed into the venv (a new package directory and its dist-info)", async () => {
    const p = await project({ "workflow/main.py": "import helperpkg\n" });
    assert.ok(unresolved(await warmUp(p), "helperpkg"));
    await writeTree(p.site, {
      "helperpkg/__init__.py": "",
      "helperpkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: helperpkg\nVersion: 1.0\n",
      "helperpkg-1.0.dist-info/RECORD": "helperpkg/__init__.py,,\nhelperpkg-1.0.dist-info/METADATA,,\n",
      "helperpkg-1.0.dist-info/INSTALLER": "pip\n",
    });
    const next = await push(p);
    assert.match(next.said, resolvedAgain);
    assert.ok(!unresolved(next, "helperpkg"), "the installed package is found");
  });

  test("another PYTHONPATH in the client's environment", async () => {
    const p = await project({ "workflow/main.py": "import shared\n" });
    await writeTree(join(p.root, ".."), { "lib1/shared.py": "FROM = 1\n", "lib2/shared.py": "FROM = 2\n" });
    const lib = (n: number) => ({ PYTHONPATH: join(p.root, "..", `lib${n}`) });
    const first = await warmUp(p, lib(1));
    const next = await push(p, lib(2));
    assert.match(next.said, resolvedAgain, "another environment is another project to the daemon");
    assert.notEqual(next.release, first.release);
    // Back to the first environment: what the daemon kept for it still holds.
    assert.match((await push(p, lib(1))).said, kept);
  });

  test("the venv replaced by one that sees the system's site-packages", async () => {
    const p = await project({ "workflow/main.py": "import yaml\n" });
    assert.ok(unresolved(await warmUp(p), "yaml"), "the venv alone has no yaml");
    await rm(p.venv, { recursive: true });
    await run(SYSTEM_PYTHON, ["-m", "venv", "--without-pip", "--system-site-packages", p.venv]);
    const next = await push(p);
    assert.match(next.said, resolvedAgain);
    assert.ok(!unresolved(next, "yaml"), "yaml is found in the system's site-packages");
  });

  test("a link to a file, which no watch sees behind: resolved afresh for every push", async () => {
    const p = await project({ "workflow/main.py": "import util.calc\n" });
    await writeTree(join(p.root, ".."), { "outside/calc.py": "VALUE = 1\n" });
    await symlink(join(p.root, "..", "outside", "calc.py"), join(p.root, "util", "calc.py"));
    await push(p);
    await writeFile(join(p.root, "..", "outside", "calc.py"), "VALUE = 22\n");
    const next = await push(p);
    assert.match(next.said, /resolved by the daemon \(.*symbolic link to a file/);
    assert.equal(await onWorker(p, "util/calc.py"), "VALUE = 22\n");
  });
});
