import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { entryVerdict, type OriginsProbe } from "../../src/core/readiness/node-checks.js";
import { buildArchive } from "../../src/push/archive.js";
import type { AgentSession } from "../../src/transport/agent-session.js";
import { sendRequest } from "../../src/transport/worker-client.js";
import { localAgent, publishContent } from "../fixtures/local-agent.js";
import { makeVenv, run, sitePackagesOf, tempDir, writeTree } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";

/**
 * What a worker's venv imports after a push: the release its .pth selects (selector.py),
 * one release per workflow run, carried to child processes through SYNC_CLUSTER_RELEASE, ahead of
 * any older installed copy; pinned releases survive garbage collection; Toil's worker entry point.
 */

describe("release selection on a worker", () => {
  let base: string;
  let venv: string;
  let python: string;
  let deployDir: string;
  let sitePackages: string;
  const children: ChildProcess[] = [];
  let counter = 0;

  before(async () => {
    base = await tempDir("select");
    venv = join(base, "venv");
    python = await makeVenv(venv);
    deployDir = join(base, "deploy");
    sitePackages = await sitePackagesOf(python);
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  async function fresh(): Promise<{ session: AgentSession; project: string; projectDir: string }> {
    const project = `sel${++counter}`;
    const agent = localAgent(python);
    children.push(agent.child);
    await sendRequest(agent.session, { op: "hello", deployDir, project, venv, keep: 3 });
    return { session: agent.session, project, projectDir: join(deployDir, project) };
  }

  async function publish(session: AgentSession, content: Record<string, string>, protect: string[] = []) {
    return (await publishContent(session, content, { protect })).id;
  }

  // Every project of this venv has a .pth of its own: each test's package has a name of its own.
  /** Garbage collection runs after the reply: waits until the directory holds exactly `names`. */
  async function settled(dir: string, names: string[]): Promise<void> {
    const want = JSON.stringify([...names].sort());
    await waitFor(
      `${dir} to hold ${want}`,
      async () => JSON.stringify((await readdir(dir)).sort()) === want,
      10_000,
      20,
    ).catch(() => undefined);
    assert.deepEqual((await readdir(dir)).sort(), [...names].sort());
  }

  const version = (v: number, pkg = "wf") => ({
    [`${pkg}/__init__.py`]: "",
    [`${pkg}/main.py`]: `V = ${v}\n`,
  });

  /** Runs the venv's python from "/" with `env` added to a clean environment. */
  async function venvPython(code: string, env: Record<string, string> = {}): Promise<string> {
    const { stdout } = await run(python, ["-c", code], {
      cwd: "/",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    });
    return stdout.trim();
  }

  test("a new interpreter takes `current`, exports its id, and keeps it for its children", async () => {
    const { session, projectDir } = await fresh();
    const r1 = await publish(session, version(1));
    const out = await venvPython(
      "import os, sys, wf.main; print(wf.main.V, os.environ['SYNC_CLUSTER_RELEASE'], wf.main.__file__)",
    );
    const project = projectDir.split("/").at(-1)!;
    assert.equal(out, `1 ${project}:${r1} ${projectDir}/releases/${r1}/wf/main.py`);
    const r2 = await publish(session, version(2));
    // A job of a run that started on r1 (the scheduler exported the pin) still imports r1 ...
    assert.equal(
      await venvPython("import wf.main; print(wf.main.V)", { SYNC_CLUSTER_RELEASE: `${project}:${r1}` }),
      "1",
    );
    // ... as does one given the bare id, meant for every project.
    assert.equal(await venvPython("import wf.main; print(wf.main.V)", { SYNC_CLUSTER_RELEASE: r1 }), "1");
    // ... and so do the processes it starts; a new run gets the newest release.
    assert.equal(
      await venvPython(
        "import subprocess, sys; print(subprocess.run([sys.executable, '-c', 'import wf.main; print(wf.main.V)'], capture_output=True, text=True).stdout.strip())",
        { SYNC_CLUSTER_RELEASE: r1 },
      ),
      "1",
    );
    assert.equal(await venvPython("import wf.main; print(wf.main.V)"), "2");
    // Another project's entry says nothing of this one: a new run of this project takes `current`.
    assert.equal(
      await venvPython("import os, wf.main; print(wf.main.V, os.environ['SYNC_CLUSTER_RELEASE'])", {
        SYNC_CLUSTER_RELEASE: "other:0123456789abcdef01234567",
      }),
      `2 other:0123456789abcdef01234567,${project}:${r2}`,
    );
    // Garbage in the variable never stops an interpreter.
    assert.equal(await venvPython("print('alive')", { SYNC_CLUSTER_RELEASE: "../../etc,\n,zz" }), "alive");
  });

  test("a job whose run's release is not on the node imports nothing of the project, and says why", async () => {
    const { session, projectDir } = await fresh();
    const project = projectDir.split("/").at(-1)!;
    await publish(session, version(1, "gone_wf"));
    const missing = "0123456789abcdef01234567";
    for (const value of [`${project}:${missing}`, missing]) {
      const job = await run(python, ["-c", "import json; import gone_wf.main"], {
        cwd: "/",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", SYNC_CLUSTER_RELEASE: value },
      }).then(
        () => assert.fail("the job imported the project from another release"),
        (error: { stderr?: string }) => error.stderr ?? "",
      );
      assert.match(
        job,
        new RegExp(`uses release ${missing} of project ${project}, and node \\S+ does not have it`),
      );
      assert.match(job, new RegExp(`${projectDir}/releases/${missing} is missing`));
      assert.match(job, /Run `sync-cluster push` on the leader/);
      assert.match(job, /ImportError/);
    }
    // What is not the project's still imports: other programs of the venv keep working.
    assert.equal(
      await venvPython("import json; print('ok')", { SYNC_CLUSTER_RELEASE: `${project}:${missing}` }),
      "ok",
    );
  });

  test("the first interpreter of a run records it: live while it runs, collected once it has exited", async () => {
    const { session, projectDir } = await fresh();
    const r1 = await publish(session, version(1, "run_wf"));
    const leader = spawn(
      python,
      ["-c", "import run_wf.main, sys; sys.stdout.write('up\\n'); sys.stdout.flush(); sys.stdin.read()"],
      {
        cwd: "/",
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    children.push(leader);
    await new Promise((resolve) => leader.stdout!.once("data", resolve));
    // A job of the run (the variable set) is no new run.
    await venvPython("import run_wf.main", { SYNC_CLUSTER_RELEASE: r1 });
    const runs = await sendRequest(session, { op: "runs" });
    assert.deepEqual(
      (runs.runs as { release: string; pid: number }[]).map((r) => [r.release, r.pid]),
      [[r1, leader.pid]],
    );
    assert.deepEqual(runs.pinned, [r1]);
    leader.stdin!.end();
    await new Promise((resolve) => leader.once("exit", resolve));
    assert.deepEqual((await sendRequest(session, { op: "runs" })).runs, []);
    await publish(session, version(2, "run_wf"));
    await waitFor(
      "the exited run's record collected",
      async () => (await readdir(join(projectDir, "runs"))).length === 0,
      10_000,
      20,
    );
  });

  test("a live run's release is installed beside `current` on a node that lacks it, read from another node", async () => {
    const leader = await fresh();
    const r1 = await publish(leader.session, version(1, "beside_wf"));
    const worker = await fresh();
    const r2 = await publish(worker.session, version(2, "beside_wf"));
    const manifest = await sendRequest(worker.session, { op: "export", release: r2 });
    assert.ok("files" in manifest && Array.isArray(manifest.files));
    const exported = await sendRequest(leader.session, { op: "export", release: r1 });
    assert.ok("files" in exported);
    const files = exported.files;
    const contents = await sendRequest(leader.session, {
      op: "export",
      release: r1,
      paths: files.map((f) => f[0]),
    });
    const src = await tempDir("exported");
    assert.ok("contents" in contents);
    for (const [path, content] of contents.contents)
      await writeTree(src, { [path]: Buffer.from(content, "base64").toString("utf8") });
    const prepared = await sendRequest(worker.session, {
      op: "prepare",
      release: r1,
      base: null,
      upsert: files,
      remove: [],
      reuse: [],
      activate: false,
    });
    assert.equal(prepared.status, "ready");
    const archive = await buildArchive(
      src,
      files.map(([path, size, mode, sha256]) => ({ path, size, mode, sha256 })),
    );
    assert.equal((await sendRequest(worker.session, { op: "upload" }, archive)).status, "published");
    const hello = await sendRequest(worker.session, {
      op: "hello",
      deployDir,
      project: worker.projectDir.split("/").at(-1)!,
      venv,
    });
    assert.equal(hello.current, r2, "current is left as it was");
    assert.deepEqual(
      (hello.releases as { id: string }[]).map((r) => r.id),
      [r2, r1],
      "the installed release is the oldest: never the next rollback",
    );
    const project = worker.projectDir.split("/").at(-1)!;
    assert.equal(
      await venvPython("import beside_wf.main as m; print(m.V)", {
        SYNC_CLUSTER_RELEASE: `${project}:${r1}`,
      }),
      "1",
    );
    // Installing it again changes nothing.
    const again = await sendRequest(worker.session, {
      op: "prepare",
      release: r1,
      base: null,
      upsert: files,
      activate: false,
    });
    assert.equal(again.status, "present");
  });

  test("the release comes before site-packages: an older installed copy does not shadow it", async () => {
    const { session } = await fresh();
    await publish(session, { "shadowed_wf/__init__.py": "", "shadowed_wf/main.py": "V = 'release'\n" });
    const old = join(sitePackages, "shadowed_wf");
    await mkdir(old, { recursive: true });
    await writeFile(join(old, "__init__.py"), "");
    await writeFile(join(old, "main.py"), "V = 'installed'\n");
    try {
      assert.equal(await venvPython("import shadowed_wf.main as m; print(m.V)"), "release");
      const verify = await sendRequest(session, { op: "verify", topLevel: ["shadowed_wf"] });
      const verdict = entryVerdict(verify as OriginsProbe, ["shadowed_wf"], String(verify.projectDir), null);
      assert.equal(verdict.status, "pass", verdict.detail);
    } finally {
      await run("rm", ["-rf", old]);
    }
  });

  test("a path hack added after the agent started is caught by that same agent's verify and check", async () => {
    const { session, projectDir } = await fresh();
    await publish(session, { "late_wf/__init__.py": "", "late_wf/main.py": "V = 'release'\n" });
    const oldRoot = await tempDir("late-copy");
    await writeTree(oldRoot, {
      "late_wf/__init__.py": "",
      "late_wf/main.py": "V = 'old'\n",
      "latepkg.py": "",
    });
    const before = await sendRequest(session, { op: "check", modules: [{ module: "latepkg", dist: null }] });
    assert.equal(
      (before.imports as { modules: Record<string, { found: boolean }> }).modules.latepkg?.found,
      false,
    );
    const hack = join(sitePackages, "zz-late-hack.pth");
    await writeFile(hack, `import sys; sys.path.insert(0, ${JSON.stringify(oldRoot)})\n`);
    try {
      const verify = await sendRequest(session, { op: "verify", topLevel: ["late_wf"] });
      const verdict = entryVerdict(verify as OriginsProbe, ["late_wf"], projectDir, String(verify.current));
      assert.equal(verdict.status, "fail", verdict.detail);
      assert.match(verdict.detail, new RegExp(`loads ${oldRoot}/late_wf/__init__.py, not the release`));
      // check's quick probe sees the venv as a new interpreter would, not as the agent found it.
      const after = await sendRequest(session, { op: "check", modules: [{ module: "latepkg", dist: null }] });
      assert.equal(
        (after.imports as { modules: Record<string, { found: boolean }> }).modules.latepkg?.found,
        true,
      );
    } finally {
      await run("rm", ["-f", hack]);
    }
  });

  test("an import hook that puts an old copy first is caught by verify, naming the file", async () => {
    const { session } = await fresh();
    await publish(session, { "hooked_wf/__init__.py": "", "hooked_wf/main.py": "V = 'release'\n" });
    const oldRoot = await tempDir("old-copy");
    await writeTree(oldRoot, { "hooked_wf/__init__.py": "", "hooked_wf/main.py": "V = 'old'\n" });
    // What `setup.py develop` leaves in easy-install.pth: a path hack that runs at start.
    const hack = join(sitePackages, "zz-old-hack.pth");
    await writeFile(hack, `import sys; sys.path.insert(0, ${JSON.stringify(oldRoot)})\n`);
    const agent = localAgent(python); // a new agent: .pth files are read when python starts
    children.push(agent.child);
    try {
      assert.equal(await venvPython("import hooked_wf.main as m; print(m.V)"), "old");
      const project = `sel${counter}`;
      await sendRequest(agent.session, { op: "hello", deployDir, project, venv, keep: 3 });
      const verify = await sendRequest(agent.session, { op: "verify", topLevel: ["hooked_wf"] });
      const verdict = entryVerdict(
        verify as OriginsProbe,
        ["hooked_wf"],
        String(verify.projectDir),
        String(verify.current),
      );
      assert.equal(verdict.status, "fail");
      assert.match(verdict.detail, new RegExp(`loads ${oldRoot}/hooked_wf/__init__.py, not the release`));
      // check asks a fresh interpreter, and sees the same.
      const facts = await sendRequest(agent.session, { op: "check", modules: [], topLevel: ["hooked_wf"] });
      const probe = facts.entry as OriginsProbe;
      assert.equal(entryVerdict(probe, ["hooked_wf"], String(facts.projectDir), "x").status, "fail");
    } finally {
      await run("rm", ["-f", hack]);
    }
  });

  test("garbage collection keeps releases a run uses: pinned here, or on the leader (protect)", async () => {
    const { session, projectDir } = await fresh();
    const r1 = await publish(session, version(1, "gc_wf"));
    assert.equal(await venvPython("import gc_wf.main; print(gc_wf.main.V)"), "1"); // a job of a run on r1
    const r2 = await publish(session, version(2, "gc_wf"));
    const ids = [r1, r2];
    for (let v = 3; v <= 6; v++) ids.push(await publish(session, version(v, "gc_wf"), [r2]));
    // keep 3 (r4, r5, r6), plus r1 (pinned by the run's job here) and r2 (pinned on the leader).
    await settled(join(projectDir, "releases"), [r1, r2, ids[3]!, ids[4]!, ids[5]!]);
    // A pin older than a week no longer holds its release.
    const week = Date.now() / 1000 - 8 * 24 * 3600;
    await utimes(join(projectDir, "pins", r1), week, week);
    const r7 = await publish(session, version(7, "gc_wf"));
    // The leader no longer pins r2 either.
    await settled(join(projectDir, "releases"), [ids[4]!, ids[5]!, r7]);
    // The agent collects pins after it has moved the releases away: wait for that step too.
    await waitFor(
      "the stale pin removed",
      async () => !(await readdir(join(projectDir, "pins"))).includes(r1),
      10_000,
      20,
    );
  });

  test("a rollback collects nothing: it does not know what the leader's runs use", async () => {
    const { session, projectDir } = await fresh();
    const project = projectDir.split("/").at(-1)!;
    const r1 = await publish(session, version(1, "back_wf"));
    const r2 = await publish(session, version(2, "back_wf"));
    await sendRequest(session, { op: "hello", deployDir, project, venv, keep: 1 });
    await sendRequest(session, { op: "activate", release: r1, lockTimeout: 5, collect: false });
    await sendRequest(session, { op: "hello", deployDir, project, venv, keep: 1 });
    await settled(join(projectDir, "releases"), [r1, r2]);
    // Without the word, the switch collects as a publish does: keep 1 leaves `current` alone.
    await sendRequest(session, { op: "activate", release: r2, lockTimeout: 5 });
    await sendRequest(session, { op: "hello", deployDir, project, venv, keep: 1 });
    await settled(join(projectDir, "releases"), [r2]);
  });

  test("the venv gets Toil's worker entry point, run by the venv's python", async () => {
    const { session } = await fresh();
    await publish(session, version(1, "entry_wf"));
    const entry = join(venv, "bin", "_toil_worker");
    const text = await readFile(entry, "utf8");
    assert.equal(text.split("\n")[0], `#!${venv}/bin/python`);
    assert.ok(((await stat(entry)).mode & 0o111) !== 0);
    const { stdout } = await run(entry, ["--help"], { env: { PATH: "/usr/bin:/bin" } });
    assert.match(stdout, /usage: _toil_worker/);
    const hello = await sendRequest(session, { op: "hello", deployDir, project: `sel${counter}`, venv });
    assert.equal(hello.pthOk, true);
  });
});
