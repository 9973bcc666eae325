import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { chmod, copyFile, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import type { CheckReply } from "../../src/core/protocol/worker-protocol-types.js";
import { sendRequest } from "../../src/transport/worker-client.js";
import { localAgent, publishContent } from "../fixtures/local-agent.js";
import { makeVenv, run, sitePackagesOf, tempDir, writeTree } from "../fixtures/projects.js";

/**
 * check's quick probe on an agent held across pushes (by the daemon or watch), the agent under
 * `strace -f -e trace=execve` to count the interpreters it starts. The agent answers in-process
 * while a fresh interpreter would read what it read at its start, its own .pth (written by its
 * first publish) aside; after any other change that decides imports, a fresh interpreter answers,
 * and sees that change.
 */

interface ModuleFact {
  found: boolean;
  origin: string | null;
}

describe("check's quick probe on a held agent", () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  /** The venv's python under `strace -f -e trace=execve` as a held agent, speaking for `venv`. */
  async function tracedAgent(
    base: string,
    venv: string,
    python: string,
    name: string,
    { keep = 3, env = {} }: { keep?: number; env?: Record<string, string> } = {},
  ) {
    const trace = join(base, `${name}.trace`);
    const traced = join(base, `${name}-python`);
    await writeFile(
      traced,
      `#!/bin/sh\nexec strace -f -qq -e trace=execve -e signal=none -o '${trace}' '${python}' "$@"\n`,
    );
    await chmod(traced, 0o755);
    const agent = localAgent(traced, env);
    children.push(agent.child);
    const session = agent.session;
    await sendRequest(session, { op: "hello", deployDir: join(base, "deploy"), project: "proj", venv, keep });

    /** The interpreters started so far: the venv's python run by strace's own exec, then each probe's. */
    async function pythonStarts(): Promise<number> {
      const text = await readFile(trace, "utf8");
      return text.split("\n").filter((l) => l.includes(`execve("${python}"`) && / = 0$/.test(l)).length;
    }

    /** check's quick probe of `modules`, and how many interpreters it started. */
    async function quickCheck(...modules: string[]) {
      const before = await pythonStarts();
      const reply: CheckReply = await sendRequest(session, {
        op: "check",
        modules: modules.map((module) => ({ module, dist: null })),
        deep: false,
      });
      const imports = reply.imports as { modules: Record<string, ModuleFact>; python?: string };
      assert.ok(imports.python, JSON.stringify(reply.imports));
      return { modules: imports.modules, started: (await pythonStarts()) - before };
    }

    assert.equal(await pythonStarts(), 1, "the agent itself");
    return { session, quickCheck };
  }

  /** A venv and an agent under strace that started before its project's .pth existed, then published. */
  async function heldAgent(env: Record<string, string> = {}) {
    const base = await tempDir("quick-check");
    const venv = join(base, "venv");
    const python = await makeVenv(venv);
    const sitePackages = await sitePackagesOf(python);
    const { session, quickCheck } = await tracedAgent(base, venv, python, "first", { env });
    const pth = join(sitePackages, "sync-cluster-proj.pth");
    await assert.rejects(readFile(pth), "no .pth before the first publish");
    await publishContent(session, { "wf/__init__.py": "", "wf/main.py": "V = 1\n" });
    await readFile(pth);
    const projectDir = join(base, "deploy", "proj");
    /** Another held agent, started now that the project's .pth is there (a daemon started again). */
    const laterAgent = (keep: number) => tracedAgent(base, venv, python, "later", { keep, env });
    return { base, venv, sitePackages, projectDir, quickCheck, laterAgent };
  }

  test("nothing but its own .pth changed since it started: answered in-process, as a fresh interpreter would", async () => {
    const node = await heldAgent();
    for (let i = 0; i < 3; i++) {
      const { modules, started } = await node.quickCheck("json", "wf", "no_such_module_xyz");
      assert.equal(started, 0, "no python started");
      assert.equal(modules.json?.found, true);
      assert.equal(modules.no_such_module_xyz?.found, false);
      // The .pth puts the release on a new interpreter's sys.path, and so on the in-process probe's.
      assert.ok(modules.wf?.origin?.startsWith(`${node.projectDir}/`), JSON.stringify(modules.wf));
    }
  });

  test("an agent started when its project's .pth was there: in-process, on the release current names, after the one of its start is gone", async () => {
    const node = await heldAgent();
    const later = await node.laterAgent(1);
    for (let i = 2; i <= 4; i++) {
      const { published } = await publishContent(later.session, {
        "wf/__init__.py": "",
        "wf/main.py": `V = ${i}\n`,
      });
      assert.equal(published?.status, "published");
      await new Promise((resolve) => setTimeout(resolve, 300)); // the collected releases' remover
      const { modules, started } = await later.quickCheck("json", "wf");
      assert.equal(started, 0, `no python started after release ${i}`);
      // The release's own wf (its directory may be a tree it shares with other releases).
      const origin = modules.wf?.origin ?? "";
      assert.ok(origin.startsWith(`${node.projectDir}/`), JSON.stringify(modules.wf));
      assert.equal(await readFile(join(dirname(origin), "main.py"), "utf8"), `V = ${i}\n`);
    }
    // And a change it did not make is still seen by a fresh interpreter.
    await writeFile(join(node.sitePackages, "zz-elsewhere.pth"), `${node.base}\n`);
    assert.equal((await later.quickCheck("json")).started, 1);
  });

  test("a .pth someone else added: a fresh interpreter answers, and sees what it adds", async () => {
    const node = await heldAgent();
    const elsewhere = join(node.base, "elsewhere");
    await writeTree(elsewhere, { "extmod.py": "" });
    assert.equal((await node.quickCheck("extmod")).modules.extmod?.found, false);
    await writeFile(join(node.sitePackages, "zz-elsewhere.pth"), `${elsewhere}\n`);
    const { modules, started } = await node.quickCheck("extmod");
    assert.equal(modules.extmod?.origin, join(elsewhere, "extmod.py"));
    assert.equal(started, 1);
  });

  test("a package installed in site-packages: a fresh interpreter answers", async () => {
    const node = await heldAgent();
    assert.equal((await node.quickCheck("sitepkg")).started, 0);
    await writeTree(node.sitePackages, { "sitepkg/__init__.py": "" });
    const { modules, started } = await node.quickCheck("sitepkg");
    assert.equal(modules.sitepkg?.origin, join(node.sitePackages, "sitepkg", "__init__.py"));
    assert.equal(started, 1);
  });

  test("a package installed in a user site made since the agent started: a fresh interpreter answers, and finds it", async () => {
    const home = await tempDir("quick-check-home");
    const node = await heldAgent({ HOME: home });
    assert.equal((await node.quickCheck("userpkg")).started, 0);
    // `pip install --user` where there was no user site: on sys.path from the next start only.
    const { stdout } = await run(
      join(node.venv, "bin", "python"),
      ["-c", "import site; print(site.getusersitepackages())"],
      { env: { HOME: home } },
    );
    const userSite = stdout.trim();
    await writeTree(userSite, { "userpkg/__init__.py": "" });
    const { modules, started } = await node.quickCheck("userpkg");
    assert.equal(modules.userpkg?.origin, join(userSite, "userpkg", "__init__.py"));
    assert.equal(started, 1);
  });

  test("pyvenv.cfg's include-system-site-packages flipped: a fresh interpreter answers; flipped back, in-process again", async () => {
    const node = await heldAgent();
    const system = await node.quickCheck("numpy");
    assert.equal(system.started, 0);
    assert.equal(system.modules.numpy?.found, true, "Debian's numpy, seen through the system site-packages");
    const cfg = join(node.venv, "pyvenv.cfg");
    const withSystem = await readFile(cfg, "utf8");
    await writeFile(
      cfg,
      withSystem.replace("include-system-site-packages = true", "include-system-site-packages = false"),
    );
    const alone = await node.quickCheck("numpy");
    assert.equal(alone.modules.numpy?.found, false);
    assert.equal(alone.started, 1);
    await writeFile(cfg, withSystem);
    const back = await node.quickCheck("numpy");
    assert.equal(back.started, 0);
    assert.equal(back.modules.numpy?.found, true);
  });

  test("the venv's interpreter replaced: a fresh interpreter answers", async () => {
    const node = await heldAgent();
    assert.equal((await node.quickCheck("json")).started, 0);
    const { stdout } = await run(join(node.venv, "bin", "python"), [
      "-c",
      "import os, sys; print(os.path.realpath(sys.executable))",
    ]);
    const copy = join(node.base, "python-copy");
    await copyFile(stdout.trim(), copy);
    await chmod(copy, 0o755);
    const python3 = join(node.venv, "bin", "python3");
    await rm(python3);
    await symlink(copy, python3);
    const replaced = await node.quickCheck("json");
    assert.equal(replaced.started, 1);
    assert.equal(replaced.modules.json?.found, true);
  });
});
