import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { chmod, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { agentSourcePath } from "../../src/package-files.js";
import { sendRequest } from "../../src/transport/worker-client.js";
import { localAgent, publishContent } from "../fixtures/local-agent.js";
import { makeVenv, run, SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";

/**
 * A node that loses power in the middle of a push must come back with the old release or the new
 * one whole. There is no power to cut here, so these tests read the order of the agent's system
 * calls under strace: what a push wrote is made durable (fsync, or one syncfs for a large push)
 * before a rename makes it visible, and the switch of `current` is fsynced before the agent answers.
 */

interface Call {
  name: string;
  /** The paths the call names: quoted arguments, and descriptors shown as fd<path> (strace -y). */
  paths: string[];
  args: string;
  ok: boolean;
}

function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\w+)\((.*)\)\s+= (-?\d+)/.exec(line);
    if (!m) continue;
    const paths = [...m[2]!.matchAll(/"([^"]*)"|\d+<([^>]*)>/g)].map((p) => p[1] ?? p[2]!);
    calls.push({ name: m[1]!, paths, args: m[2]!, ok: !m[3]!.startsWith("-") });
  }
  return calls;
}

const isRename = (c: Call) => c.ok && /^rename(at2?)?$/.test(c.name);
const isSync = (c: Call, path: string) => c.ok && c.name === "fsync" && c.paths[0] === path;
const isCreate = (c: Call) => c.ok && c.name === "openat" && c.args.includes("O_CREAT");

describe("a push is durable before it is visible", () => {
  let base: string;
  let venv: string;
  let tracedPython: string;
  let traceFile: string;
  const children: ChildProcess[] = [];
  let counter = 0;

  before(async () => {
    base = await tempDir("durable");
    venv = join(base, "venv");
    const python = await makeVenv(venv);
    traceFile = join(base, "trace");
    // The venv's python under strace, as the bootstrap would start it: one process, so no -f.
    tracedPython = join(base, "traced-python");
    await writeFile(
      tracedPython,
      `#!/bin/sh\nexec strace -qq -y -e signal=none -e trace=openat,fsync,fdatasync,syncfs,sync,rename,renameat,renameat2,write -o '${traceFile}' '${python}' "$@"\n`,
    );
    await chmod(tracedPython, 0o755);
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  /** Publishes `content` in a new project under strace; returns the agent's calls and the layout. */
  async function tracedPublish(content: Record<string, string>) {
    const project = `proj${++counter}`;
    const deployDir = join(base, "deploy");
    const agent = localAgent(tracedPython);
    children.push(agent.child);
    await sendRequest(agent.session, { op: "hello", deployDir, project, venv, keep: 3 });
    const { id, published } = await publishContent(agent.session, content);
    assert.equal(published?.status, "published");
    agent.session.close();
    await new Promise((resolve) => agent.child.once("exit", resolve));
    const projectDir = join(deployDir, project);
    assert.equal(await readlink(join(projectDir, "current")), `releases/${id}`);
    return { calls: parseTrace(await readFile(traceFile, "utf8")), projectDir, id };
  }

  test("a small push fsyncs each file and directory it wrote before renaming them into place, and the switch before answering", async () => {
    const { calls, projectDir, id } = await tracedPublish({
      "top.py": "T = 1\n",
      "pkg/__init__.py": "",
      "pkg/a.py": "A = 1\n",
      "pkg/sub/__init__.py": "",
      "pkg/sub/b.py": "B = 1\n",
    });
    const staging = (p: string) => p.startsWith(join(projectDir, ".staging-"));
    const firstPublishingRename = calls.findIndex((c) => isRename(c) && staging(c.paths[0]!));
    assert.ok(firstPublishingRename > 0, "the staging directory's contents are renamed into place");
    const created = calls.filter((c) => isCreate(c) && staging(c.paths[0]!)).map((c) => c.paths[0]!);
    assert.equal(created.length, 6, "five files and the release's manifest");
    const stagingDir = created
      .find((p) => p.endsWith("/.sync-cluster-manifest.json"))!
      .replace(/\/[^/]+$/, "");
    for (const path of [...created, stagingDir, join(stagingDir, "pkg"), join(stagingDir, "pkg/sub")]) {
      const synced = calls.findIndex((c) => isSync(c, path));
      assert.ok(synced >= 0, `${path} is fsynced`);
      assert.ok(synced < firstPublishingRename, `${path} is fsynced before anything is renamed into place`);
    }
    assert.ok(!calls.some((c) => c.name === "syncfs" || c.name === "sync"), "no file system wide flush");

    const intoReleases = calls.findIndex(
      (c) => isRename(c) && c.paths[1] === join(projectDir, "releases", id),
    );
    const switched = calls.findIndex((c) => isRename(c) && c.paths[1] === join(projectDir, "current"));
    assert.ok(intoReleases > 0 && switched > intoReleases);
    for (const dir of [
      join(projectDir, "releases"),
      join(projectDir, "trees"),
      join(projectDir, "releases", id),
      projectDir,
    ]) {
      const synced = calls.findIndex((c, i) => i > intoReleases && isSync(c, dir));
      assert.ok(synced > 0 && synced < switched, `${dir} is fsynced between the publish and the switch`);
    }
    // The agent's reply is its next write to stdout (fd 1).
    const answered = calls.findIndex((c, i) => i > switched && c.name === "write" && c.args.startsWith("1<"));
    assert.ok(answered > switched, "the agent answers after the switch");
    assert.ok(
      calls.some((c, i) => i > switched && i < answered && isSync(c, projectDir)),
      "the project directory is fsynced after the switch and before the answer",
    );

    // The venv's .pth is written whole or not at all: fsynced under a temporary name, renamed, and its directory fsynced.
    const pthRename = calls.findIndex((c) => isRename(c) && /sync-cluster-proj\d+\.pth$/.test(c.paths[1]!));
    assert.ok(pthRename > 0, "the .pth is written by rename");
    const [tmp, pth] = calls[pthRename]!.paths as [string, string];
    assert.ok(
      calls.slice(0, pthRename).some((c) => isSync(c, tmp)),
      "the .pth is fsynced before its rename",
    );
    assert.ok(
      calls.slice(pthRename).some((c) => isSync(c, pth.replace(/\/[^/]+$/, ""))),
      "site-packages is fsynced after the rename",
    );
  });

  test("a large push syncs the file system once before renaming into place and once before the switch", async () => {
    const content: Record<string, string> = { "pkg/__init__.py": "" };
    for (let i = 0; i < 100; i++) content[`pkg/m${i}.py`] = `N = ${i}\n`;
    const { calls, projectDir, id } = await tracedPublish(content);
    const staging = (p: string) => p.startsWith(join(projectDir, ".staging-"));
    const firstPublishingRename = calls.findIndex((c) => isRename(c) && staging(c.paths[0]!));
    const lastCreate = calls.findLastIndex((c) => isCreate(c) && staging(c.paths[0]!));
    const intoReleases = calls.findIndex(
      (c) => isRename(c) && c.paths[1] === join(projectDir, "releases", id),
    );
    const switched = calls.findIndex((c) => isRename(c) && c.paths[1] === join(projectDir, "current"));
    const syncfs = calls.flatMap((c, i) => (c.name === "syncfs" && c.ok ? [i] : []));
    assert.ok(
      syncfs.some((i) => i > lastCreate && i < firstPublishingRename),
      "one syncfs after the last file is written and before the first rename",
    );
    assert.ok(
      syncfs.some((i) => i > intoReleases && i < switched),
      "one syncfs after the release's rename and before the switch",
    );
    assert.equal(
      calls.filter((c) => c.name === "fsync" && staging(c.paths[0]!)).length,
      0,
      "no fsync per file",
    );
    assert.ok(calls.some((c, i) => i > switched && isSync(c, projectDir)));
  });

  test("a small file replaced whole: a failed write leaves the old file and no temporary file", async () => {
    const dir = await tempDir("replace-file");
    // The agent's own replace_file, run in a python that loads the agent without starting it;
    // a lone surrogate cannot be encoded, so the write fails after the temporary file exists.
    const program = [
      "import os, sys",
      "ns = {'__name__': 'sync_cluster_agent'}",
      "exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), ns)",
      "target = os.path.join(sys.argv[2], 'file.pth')",
      "ns['replace_file'](target, 'old\\n')",
      "try:",
      "    ns['replace_file'](target, 'new \\udc80\\n')",
      "except UnicodeEncodeError:",
      "    print('refused')",
      "print(open(target).read().strip(), sorted(os.listdir(sys.argv[2])))",
    ].join("\n");
    const { stdout } = await run(SYSTEM_PYTHON, ["-c", program, agentSourcePath(), dir]);
    assert.equal(stdout, "refused\nold ['file.pth']\n");
  });
});
