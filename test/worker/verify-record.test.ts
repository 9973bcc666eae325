import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { entryVerdict } from "../../src/core/readiness/node-checks.js";
import type { AgentSession } from "../../src/transport/agent-session.js";
import { sendRequest, type VerifyReply, verify } from "../../src/transport/worker-client.js";
import { localAgent, publishContent } from "../fixtures/local-agent.js";
import { makeVenv, run, sitePackagesOf, tempDir, writeTree } from "../fixtures/projects.js";

/**
 * The verification after every push (verify) against a real --system-site-packages venv: answered
 * from the node's record of its last full verification while nothing a new interpreter reads at
 * its start changed, and asked of a fresh interpreter again after each change that could move
 * where a top-level name loads from, which then fails the node if the release is shadowed.
 */

const TOP_LEVEL = ["wf", "nsp"];
// wf is a regular package; nsp a namespace package (no __init__.py), which any regular package of
// the same name anywhere on sys.path takes precedence over.
const RELEASE = { "wf/__init__.py": "", "wf/main.py": "V = 1\n", "nsp/mod.py": "M = 1\n" };

describe("verification after a push, from the node's record while nothing changed", () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  /** A venv, a project pushed to it and verified once in full: the node as a push leaves it. */
  async function pushedNode(env: Record<string, string> = {}) {
    const base = await tempDir("verify-record");
    const venv = join(base, "venv");
    const python = await makeVenv(venv);
    const sitePackages = await sitePackagesOf(python);
    const agent = localAgent(python, env);
    children.push(agent.child);
    const session: AgentSession = agent.session;
    await sendRequest(session, {
      op: "hello",
      deployDir: join(base, "deploy"),
      project: "proj",
      venv,
      keep: 3,
    });
    await publishContent(session, RELEASE);
    const node = { base, venv, sitePackages, session, verified: () => verify(session, TOP_LEVEL) };
    assert.equal(verdictOf(await node.verified()), "pass");
    return node;
  }

  function verdictOf(reply: VerifyReply): string {
    const verdict = entryVerdict(reply, TOP_LEVEL, reply.projectDir, reply.current);
    return verdict.status === "fail" ? `fail: ${verdict.detail}` : verdict.status;
  }

  /** An older copy of wf outside the release, and a line that puts it first on sys.path. */
  async function olderCopy(base: string): Promise<string> {
    const old = join(base, "old-install");
    await writeTree(old, { "wf/__init__.py": "", "wf/main.py": "V = 0\n" });
    return `import sys; sys.path.insert(0, ${JSON.stringify(old)})\n`;
  }

  test("nothing changed: the record answers, no interpreter is started", async () => {
    const node = await pushedNode();
    const again = await node.verified();
    assert.equal(again.fromRecord, true);
    assert.equal(verdictOf(again), "pass");
  });

  test("a .pth added to site-packages that puts an older copy first: verified in full, and it fails", async () => {
    const node = await pushedNode();
    await writeFile(join(node.sitePackages, "zz-old-install.pth"), await olderCopy(node.base));
    const reply = await node.verified();
    assert.equal(reply.fromRecord, false);
    assert.match(
      verdictOf(reply),
      /^fail: `import wf` loads .*old-install\/wf\/__init__\.py, not the release/,
    );
    // A failed verification is recorded too: the unchanged node keeps failing the same way.
    const again = await node.verified();
    assert.equal(again.fromRecord, true);
    assert.equal(verdictOf(again), verdictOf(reply));
  });

  test("a package of a release's name added to site-packages: verified in full; it shadows only a namespace package", async () => {
    const node = await pushedNode();
    // The release's roots come before site-packages: a regular package there cannot shadow wf.
    await writeTree(node.sitePackages, { "wf/__init__.py": "" });
    const regular = await node.verified();
    assert.equal(regular.fromRecord, false);
    assert.equal(verdictOf(regular), "pass");
    assert.equal((await node.verified()).fromRecord, true);
    // A regular package anywhere on sys.path is taken before a namespace package's portions.
    await writeTree(node.sitePackages, { "nsp/__init__.py": "" });
    const namespace = await node.verified();
    assert.equal(namespace.fromRecord, false);
    assert.match(verdictOf(namespace), /^fail: `import nsp` loads .*site-packages\/nsp\/__init__\.py/);
  });

  test("an __init__.py added inside a namespace directory of site-packages: verified in full, and it fails", async () => {
    const node = await pushedNode();
    // Another portion of the namespace package nsp, installed in site-packages.
    await writeTree(node.sitePackages, { "nsp/other.py": "" });
    assert.equal((await node.verified()).fromRecord, false);
    assert.equal((await node.verified()).fromRecord, true);
    const before = await stat(node.sitePackages, { bigint: true });
    // A regular package now: it wins over the release's namespace portion.
    await writeTree(node.sitePackages, { "nsp/__init__.py": "" });
    const after = await stat(node.sitePackages, { bigint: true });
    assert.equal(after.mtimeNs, before.mtimeNs, "site-packages itself is as it was");
    const reply = await node.verified();
    assert.equal(reply.fromRecord, false);
    assert.match(verdictOf(reply), /^fail: `import nsp` loads .*site-packages\/nsp\/__init__\.py/);
  });

  test("a .pth edited in place, its size and times kept: verified in full, and it fails", async () => {
    const base = await tempDir("verify-record-pth");
    const line = await olderCopy(base);
    // Present at the verified push, as harmless as the edit is not: a comment of the same length.
    const pthBefore = `#${" ".repeat(line.length - 2)}\n`;
    const node = await pushedNode();
    const pth = join(node.sitePackages, "aa-site-tweaks.pth");
    await writeFile(pth, pthBefore);
    assert.equal((await node.verified()).fromRecord, false);
    assert.equal((await node.verified()).fromRecord, true);
    const times = async () =>
      [await stat(pth, { bigint: true }), await stat(node.sitePackages, { bigint: true })].map((s) => [
        s.size,
        s.mtimeNs,
      ]);
    const before = await times();
    // Rewritten in place, its mtime put back to the nanosecond (which Node's utimes cannot).
    await run(join(node.venv, "bin", "python"), [
      "-c",
      "import os, sys; st = os.stat(sys.argv[1]); open(sys.argv[1], 'w').write(sys.argv[2]); os.utime(sys.argv[1], ns=(st.st_atime_ns, st.st_mtime_ns))",
      pth,
      line,
    ]);
    assert.deepEqual(await times(), before);
    const reply = await node.verified();
    assert.equal(reply.fromRecord, false);
    assert.match(verdictOf(reply), /^fail: `import wf` loads .*old-install/);
  });

  test("pyvenv.cfg's include-system-site-packages flipped: verified in full, either way", async () => {
    // Where the user site (under HOME) puts an older copy first; a venv sees the user site only
    // with the system's site-packages.
    const home = await tempDir("verify-record-home");
    const node = await pushedNode({ HOME: home });
    const { stdout } = await run(
      join(node.venv, "bin", "python"),
      ["-c", "import site; print(site.getusersitepackages())"],
      {
        env: { HOME: home },
      },
    );
    await writeTree(stdout.trim(), { "zz-old-install.pth": await olderCopy(node.base) });
    const shadowed = await node.verified();
    assert.equal(shadowed.fromRecord, false);
    assert.match(verdictOf(shadowed), /^fail: `import wf` loads .*old-install/);
    const cfg = join(node.venv, "pyvenv.cfg");
    const withSystem = await readFile(cfg, "utf8");
    assert.match(withSystem, /include-system-site-packages = true/);
    await writeFile(cfg, withSystem.replace("= true", "= false"));
    const alone = await node.verified();
    assert.equal(alone.fromRecord, false);
    assert.equal(verdictOf(alone), "pass");
    await writeFile(cfg, withSystem);
    const again = await node.verified();
    assert.equal(again.fromRecord, false);
    assert.match(verdictOf(again), /^fail: `import wf` loads .*old-install/);
  });

  test("a new release laid out as the last: answered from the record, from the new release", async () => {
    const node = await pushedNode();
    const next = await publishContent(node.session, {
      ...RELEASE,
      "wf/main.py": "V = 2\n",
      "wf/more.py": "",
    });
    const reply = await node.verified();
    assert.equal(reply.fromRecord, true);
    assert.equal(reply.current, next.id);
    assert.equal(verdictOf(reply), "pass");
    assert.match(JSON.stringify(reply.origins?.["wf"]), new RegExp(`/releases/${next.id}/wf/__init__.py`));
  });

  test("a new release laid out otherwise (a package that became a module): verified in full", async () => {
    const node = await pushedNode();
    const { "wf/__init__.py": _init, "wf/main.py": _main, ...rest } = RELEASE;
    const next = await publishContent(node.session, { ...rest, "wf.py": "V = 2\n" });
    const reply = await node.verified();
    assert.equal(reply.fromRecord, false);
    assert.equal(verdictOf(reply), "pass");
    assert.match(JSON.stringify(reply.origins?.["wf"]), new RegExp(`/releases/${next.id}/wf.py`));
    assert.equal((await node.verified()).fromRecord, true);
  });

  test("a directory created where sys.path has a missing entry (the user site): verified in full", async () => {
    const home = await tempDir("verify-record-user");
    const node = await pushedNode({ HOME: home });
    assert.equal((await node.verified()).fromRecord, true);
    await mkdir(join(home, ".local", "lib"), { recursive: true });
    assert.equal((await node.verified()).fromRecord, true, "a parent of the missing entry changes nothing");
    const { stdout } = await run(
      join(node.venv, "bin", "python"),
      ["-c", "import site; print(site.getusersitepackages())"],
      {
        env: { HOME: home },
      },
    );
    await writeTree(stdout.trim(), { "nsp/__init__.py": "" });
    const reply = await node.verified();
    assert.equal(reply.fromRecord, false);
    assert.match(verdictOf(reply), /^fail: `import nsp` loads/);
  });
});
