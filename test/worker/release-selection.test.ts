import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdir, readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { entryVerdict, type OriginsProbe } from "../../src/core/node-checks.js";
import type { AgentSession } from "../../src/transport/agent-session.js";
import { localAgent, publishContent } from "../fixtures/local-agent.js";
import { makeVenv, run, tempDir, writeTree } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";

/**
 * What a worker's venv imports after a push: the release its .pth selects (agent.py, SELECTOR),
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
    const { stdout } = await run(python, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]);
    sitePackages = stdout.trim();
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  async function fresh(): Promise<{ session: AgentSession; project: string; projectDir: string }> {
    const project = `sel${++counter}`;
    const agent = localAgent(python);
    children.push(agent.child);
    await agent.session.request({ op: "hello", deployDir, project, venv, keep: 3 });
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
    assert.equal(out, `1 ${r1} ${projectDir}/releases/${r1}/wf/main.py`);
    const r2 = await publish(session, version(2));
    // A job of a run that started on r1 (the scheduler exported the pin) still imports r1 ...
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
    // A pin of another project, or of a release this node does not have, falls back to `current`.
    assert.equal(
      await venvPython("import os, wf.main; print(wf.main.V, os.environ['SYNC_CLUSTER_RELEASE'])", {
        SYNC_CLUSTER_RELEASE: "0123456789abcdef01234567",
      }),
      `2 0123456789abcdef01234567,${r2}`,
    );
    // Garbage in the variable never stops an interpreter.
    assert.equal(await venvPython("print('alive')", { SYNC_CLUSTER_RELEASE: "../../etc,\n,zz" }), "alive");
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
      const verify = await session.request({ op: "verify", topLevel: ["shadowed_wf"] });
      const verdict = entryVerdict(verify as OriginsProbe, ["shadowed_wf"], String(verify.projectDir), null);
      assert.equal(verdict.status, "pass", verdict.detail);
    } finally {
      await run("rm", ["-rf", old]);
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
      await agent.session.request({ op: "hello", deployDir, project, venv, keep: 3 });
      const verify = await agent.session.request({ op: "verify", topLevel: ["hooked_wf"] });
      const verdict = entryVerdict(
        verify as OriginsProbe,
        ["hooked_wf"],
        String(verify.projectDir),
        String(verify.current),
      );
      assert.equal(verdict.status, "fail");
      assert.match(verdict.detail, new RegExp(`loads ${oldRoot}/hooked_wf/__init__.py, not the release`));
      // check asks a fresh interpreter, and sees the same.
      const facts = await agent.session.request({ op: "check", modules: [], topLevel: ["hooked_wf"] });
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

  test("the venv gets Toil's worker entry point, run by the venv's python", async () => {
    const { session } = await fresh();
    await publish(session, version(1, "entry_wf"));
    const entry = join(venv, "bin", "_toil_worker");
    const text = await readFile(entry, "utf8");
    assert.equal(text.split("\n")[0], `#!${venv}/bin/python`);
    assert.ok(((await stat(entry)).mode & 0o111) !== 0);
    const { stdout } = await run(entry, ["--help"], { env: { PATH: "/usr/bin:/bin" } });
    assert.match(stdout, /usage: _toil_worker/);
    const hello = await session.request({ op: "hello", deployDir, project: `sel${counter}`, venv });
    assert.equal(hello.pthOk, true);
  });
});
