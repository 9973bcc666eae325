import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { cp, lstat, mkdir, readdir, readFile, readlink, realpath, rm, stat, symlink } from "node:fs/promises";
import { basename, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pack } from "tar-stream";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import type { WireFile } from "../../src/core/protocol/worker-protocol-types.js";
import { type ManifestFile, releaseIdOf } from "../../src/core/release/manifest.js";
import { planPublish } from "../../src/core/release/publish-plan.js";
import { type KeptRelease, rollbackTarget } from "../../src/core/release/rollback-target.js";
import { ArchiveCache, buildArchive } from "../../src/push/archive.js";
import { pushToNode, type Release } from "../../src/push/node-push.js";
import { AgentError, type AgentSession } from "../../src/transport/agent-session.js";
import { hello, sendRequest } from "../../src/transport/worker-client.js";
import { localAgent, manifestOf, publishContent } from "../fixtures/local-agent.js";
import { makeVenv, run, tempDir, writeTree } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";

/** Manifest entries as the protocol carries them: [path, size, mode, sha256]. */
const wireFiles = (files: readonly ManifestFile[]): WireFile[] =>
  files.map((f) => [f.path, f.size, f.mode, f.sha256]);

/** A tar with whatever entries a hostile leader might send. */
async function craftedTar(
  entries: {
    name: string;
    type?: "file" | "symlink" | "link" | "directory";
    content?: string;
    linkname?: string;
  }[],
): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on("end", () => r()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => {
      const type = e.type ?? "file";
      const header = {
        name: e.name,
        type,
        linkname: e.linkname,
        size: type === "file" ? Buffer.byteLength(e.content ?? "") : 0,
        mode: 0o644,
      };
      const body = type === "file" ? (e.content ?? "") : "";
      p.entry(header, body, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe("worker agent", () => {
  let base: string;
  let python: string;
  let deployDir: string;
  const children: ChildProcess[] = [];
  let counter = 0;

  before(async () => {
    base = await tempDir("agent");
    python = await makeVenv(join(base, "venv"));
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  async function fresh(): Promise<{ session: AgentSession; child: ChildProcess; project: string }> {
    const project = `proj${++counter}`;
    deployDir = join(base, "deploy");
    const agent = localAgent(python);
    children.push(agent.child);
    await sendRequest(agent.session, { op: "hello", deployDir, project, venv: join(base, "venv"), keep: 3 });
    return { ...agent, project };
  }

  test("publishes a release atomically, writes the .pth, and the venv imports from it", async () => {
    const { session, project } = await fresh();
    const content = {
      "workflow/__init__.py": "",
      "workflow/main.py": "from util.sort.quick import X\n",
      "util/__init__.py": "",
      "util/sort/__init__.py": "",
      "util/sort/quick.py": "X = 42\n",
      "data/with space 'quote' \"dq\".txt": "odd\n",
      "data/-leading-dash.txt": "dash\n",
      "data/newline\nname.txt": "nl\n",
      "data/ünïcødé.txt": "u\n",
    };
    const { id, published } = await publishContent(session, content);
    assert.equal(published?.status, "published");
    const projectDir = join(deployDir, project);
    assert.equal(await readlink(join(projectDir, "current")), `releases/${id}`);
    for (const [path, text] of Object.entries(content)) {
      assert.equal(await readFile(join(projectDir, "current", path), "utf8"), text);
    }
    const { stdout } = await run(
      python,
      ["-c", "import workflow.main, util.sort.quick as q; print(q.X, q.__file__)"],
      { cwd: "/" },
    );
    // The interpreter resolved `current` when it started: a later switch does not move it.
    assert.match(stdout, new RegExp(`^42 ${projectDir}/releases/${id}/util/sort/quick.py`));
    const hello = await sendRequest(session, { op: "hello", deployDir, project, venv: join(base, "venv") });
    assert.equal(hello.current, id);
    assert.equal(hello.pthOk, true);
  });

  test("incremental: unchanged files are linked from the base, the old release stays intact", async () => {
    const { session, project } = await fresh();
    const src = await tempDir("inc");
    const v1 = {
      "a.py": "A = 1\n",
      "b.py": "B = 1\n",
      "c.py": "C = 1\n",
      "pkg/__init__.py": "",
      "pkg/m.py": "M = 1\n",
    };
    const r1 = await publishContent(session, v1);
    const v2 = {
      "a.py": "A = 1\n",
      "b.py": "B = 2\n",
      "d.py": "D = 1\n",
      "pkg/__init__.py": "",
      "pkg2/m.py": "M = 1\n",
    };
    await writeTree(src, v2);
    const files2 = manifestOf(v2);
    const id2 = releaseIdOf(files2);
    const prepared = await sendRequest(session, {
      op: "prepare",
      release: id2,
      base: r1.id,
      upsert: wireFiles(files2.filter((f) => ["b.py", "d.py", "pkg2/m.py"].includes(f.path))),
      remove: ["c.py", "pkg/m.py"],
      reuse: [["pkg2/m.py", "pkg/m.py"]],
    });
    assert.equal(prepared.status, "ready");
    assert.equal(prepared.expect, 2);
    const archive = await buildArchive(
      src,
      files2.filter((f) => ["b.py", "d.py"].includes(f.path)),
    );
    const published = await sendRequest(session, { op: "upload" }, archive);
    assert.equal(published.received, 2);
    const releases = join(deployDir, project, "releases");
    assert.equal(
      (await stat(join(releases, id2, "a.py"))).ino,
      (await stat(join(releases, r1.id, "a.py"))).ino,
    );
    assert.equal(await readFile(join(releases, id2, "pkg2/m.py"), "utf8"), "M = 1\n");
    assert.deepEqual((await readdir(join(releases, id2))).sort(), [
      ".sync-cluster-manifest.json",
      "a.py",
      "b.py",
      "d.py",
      "pkg",
      "pkg2",
    ]);
    assert.equal(await readFile(join(releases, r1.id, "b.py"), "utf8"), "B = 1\n");
    assert.equal(await readFile(join(releases, r1.id, "c.py"), "utf8"), "C = 1\n");
  });

  test("a release the worker has is switched to without any transfer", async () => {
    const { session } = await fresh();
    await publishContent(session, { "a.py": "1\n" });
    const again = await publishContent(session, { "a.py": "1\n" });
    assert.equal(again.prepared.status, "switched");
  });

  for (const [label, entries] of [
    ["an absolute path", [{ name: "/tmp/sc-evil-abs.txt", content: "x" }]],
    ["a path with ..", [{ name: "a/../../sc-evil-dotdot.txt", content: "x" }]],
    ["a symbolic link", [{ name: "a.py", type: "symlink", linkname: "/etc/passwd" }]],
    ["a hard link", [{ name: "a.py", type: "link", linkname: "/etc/passwd" }]],
    ["a directory entry", [{ name: "a.py", type: "directory" }]],
    [
      "an unexpected file",
      [
        { name: "a.py", content: "1\n" },
        { name: "extra.py", content: "x" },
      ],
    ],
    ["a wrong checksum", [{ name: "a.py", content: "2\n" }]],
  ] as const) {
    test(`a crafted archive with ${label} is refused and nothing is published`, async () => {
      const { session, project } = await fresh();
      const files = manifestOf({ "a.py": "1\n" });
      const id = releaseIdOf(files);
      await sendRequest(session, {
        op: "prepare",
        release: id,
        base: null,
        upsert: wireFiles(files),
        remove: [],
        reuse: [],
      });
      const tar = await craftedTar(entries.map((e) => ({ ...e })));
      await assert.rejects(
        sendRequest(session, { op: "upload" }, tar),
        (e: unknown) => e instanceof AgentError,
      );
      const projectDir = join(deployDir, project);
      await assert.rejects(lstat(join(projectDir, "current")));
      assert.deepEqual(await readdir(join(projectDir, "releases")), []);
      assert.deepEqual(
        (await readdir(projectDir)).filter((n) => n.startsWith(".staging")),
        [],
      );
      await assert.rejects(lstat("/tmp/sc-evil-abs.txt"));
      await assert.rejects(lstat(join(projectDir, "..", "sc-evil-dotdot.txt")));
      // The session stays usable after a refusal.
      const hello = await sendRequest(session, { op: "hello", deployDir, project, venv: join(base, "venv") });
      assert.equal(hello.current, null);
    });
  }

  test("a manifest that does not match its release id, or with unsafe paths, is refused", async () => {
    const { session } = await fresh();
    const files = manifestOf({ "a.py": "1\n" });
    await assert.rejects(
      sendRequest(session, {
        op: "prepare",
        release: "0".repeat(24),
        base: null,
        upsert: wireFiles(files),
        remove: [],
        reuse: [],
      }),
      (e: unknown) => e instanceof AgentError && e.code === "bad-manifest",
    );
    for (const path of ["../evil.py", "/abs.py", "a//b.py", "./a.py", ".sync-cluster-manifest.json"]) {
      const evil = [{ ...files[0]!, path }];
      await assert.rejects(
        sendRequest(session, {
          op: "prepare",
          release: releaseIdOf(evil),
          base: null,
          upsert: wireFiles(evil),
          remove: [],
          reuse: [],
        }),
        (e: unknown) => e instanceof AgentError && e.code === "bad-path",
        path,
      );
    }
  });

  test("the worker lock serializes pushers, and a killed pusher leaves no lock nor staging behind", async () => {
    const first = await fresh();
    const files = manifestOf({ "a.py": "1\n" });
    const id = releaseIdOf(files);
    await sendRequest(first.session, {
      op: "prepare",
      release: id,
      base: null,
      upsert: wireFiles(files),
      remove: [],
      reuse: [],
    });
    const projectDir = join(deployDir, first.project);
    assert.equal((await readdir(projectDir)).filter((n) => n.startsWith(".staging")).length, 1);
    const second = localAgent(python);
    children.push(second.child);
    await sendRequest(second.session, {
      op: "hello",
      deployDir,
      project: first.project,
      venv: join(base, "venv"),
    });
    await assert.rejects(
      sendRequest(second.session, {
        op: "prepare",
        release: id,
        base: null,
        upsert: wireFiles(files),
        remove: [],
        reuse: [],
        lockTimeout: 0.3,
      }),
      (e: unknown) => e instanceof AgentError && e.code === "locked",
    );
    first.child.kill("SIGKILL");
    await new Promise((r) => first.child.once("close", r));
    const ready = await sendRequest(second.session, {
      op: "prepare",
      release: id,
      base: null,
      upsert: wireFiles(files),
      remove: [],
      reuse: [],
      lockTimeout: 5,
    });
    assert.equal(ready.status, "ready");
    assert.equal(
      (await readdir(projectDir)).filter((n) => n.startsWith(".staging")).length,
      1,
      "the dead pusher's staging was removed",
    );
  });

  test("garbage collection keeps the newest releases and never the current one away; rollback by activate", async () => {
    const { session, project } = await fresh();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await publishContent(session, { "a.py": `V = ${i}\n` })).id);
    }
    const releases = (await readdir(join(deployDir, project, "releases"))).sort();
    assert.deepEqual(releases, ids.slice(2).sort());
    // The releases renamed away are deleted in the background, soon, and the lock stays free.
    await waitFor(
      "the old releases deleted",
      async () => !(await readdir(join(deployDir, project))).some((n) => n.startsWith(".trash-")),
      10_000,
      20,
    );
    const other = localAgent(python);
    children.push(other.child);
    await sendRequest(other.session, { op: "hello", deployDir, project, venv: join(base, "venv"), keep: 3 });
    assert.equal(
      (await sendRequest(other.session, { op: "activate", release: ids[4]!, lockTimeout: 0 })).status,
      "switched",
    );
    other.child.stdin?.end();
    const back = await sendRequest(session, { op: "activate", release: ids[3]! });
    assert.equal(back.status, "switched");
    assert.equal(await readlink(join(deployDir, project, "current")), `releases/${ids[3]}`);
    await assert.rejects(
      sendRequest(session, { op: "activate", release: ids[0]! }),
      (e: unknown) => e instanceof AgentError && e.code === "no-release",
    );
    assert.equal(await readlink(join(deployDir, project, "current")), `releases/${ids[3]}`);
  });

  test("rolling back twice walks back through the history instead of returning to the release left", async () => {
    const { session, project } = await fresh();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await publishContent(session, { "a.py": `W = ${i}\n` })).id);
    }
    const [r1, r2, r3] = ids as [string, string, string];
    const rollBack = async (): Promise<string> => {
      const hello = await sendRequest(session, { op: "hello", deployDir, project, venv: join(base, "venv") });
      const target = rollbackTarget(hello.current as string, hello.releases as KeptRelease[]);
      assert.equal(target.kind, "switch", JSON.stringify(target));
      const release = (target as { release: string }).release;
      await sendRequest(session, { op: "activate", release });
      return release;
    };
    assert.equal(await rollBack(), r2);
    assert.equal(await rollBack(), r1, "the second rollback goes further back, not to the release just left");
    assert.equal(await readlink(join(deployDir, project, "current")), `releases/${r1}`);
    assert.deepEqual(
      (await readdir(join(deployDir, project, "releases"))).sort(),
      [r1, r2, r3].sort(),
      "a rollback removes no release",
    );
    // The next push moves forward; collection keeps it and the release a rollback from it needs.
    const r4 = (await publishContent(session, { "a.py": "W = 3\n" })).id;
    await sendRequest(session, { op: "hello", deployDir, project, venv: join(base, "venv") });
    assert.deepEqual((await readdir(join(deployDir, project, "releases"))).sort(), [r2, r3, r4].sort());
    assert.equal(await rollBack(), r3);
  });

  /** Publishes `files` the way the leader does: planned against the base, only the delta sent. */
  async function publishPlanned(
    session: AgentSession,
    files: Record<string, string>,
    base: { id: string; manifest: ManifestFile[] } | null,
  ) {
    const src = await tempDir("planned");
    await writeTree(src, files);
    const manifest = manifestOf(files);
    const id = releaseIdOf(manifest);
    const plan = planPublish(manifest, base?.manifest);
    const prepared = await sendRequest(session, {
      op: "prepare",
      release: id,
      base: base?.id ?? null,
      upsert: plan.upsert,
      remove: plan.remove,
      reuse: plan.reuse,
    });
    assert.equal(prepared.status, "ready");
    const published = await sendRequest(session, { op: "upload" }, await buildArchive(src, plan.delta.send));
    return { id, manifest, published };
  }

  async function contentOf(dir: string, files: Record<string, string>): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const path of Object.keys(files)) out[path] = await readFile(join(dir, path), "utf8");
    return out;
  }

  /** The trees a release uses, found by following its links, as Python's imports do. */
  async function treesUsedBy(dir: string, found = new Set<string>()): Promise<Set<string>> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isSymbolicLink()) {
        const real = await realpath(join(dir, entry.name));
        if (!found.has(basename(real))) {
          found.add(basename(real));
          await treesUsedBy(real, found);
        }
      } else if (entry.isDirectory() && entry.name !== "__pycache__") {
        await treesUsedBy(join(dir, entry.name), found);
      }
    }
    return found;
  }

  test("unchanged directories are shared through trees/: a change builds only the directories on its path", async () => {
    const { session, project } = await fresh();
    const release = (id: string) => join(deployDir, project, "releases", id);
    const v1 = {
      "main.py": "M = 1\n",
      "a/__init__.py": "",
      "a/x.py": "X = 1\n",
      "b/__init__.py": "",
      "b/z.py": "Z = 1\n",
      "b/c/__init__.py": "",
      "b/c/y.py": "Y = 1\n",
    };
    const r1 = await publishPlanned(session, v1, null);
    const v2 = { ...v1, "b/c/y.py": "Y = 2\n" };
    const r2 = await publishPlanned(session, v2, r1);
    assert.equal(r2.published.received, 1);
    assert.equal(r2.published.linked, 4, "main.py, b/__init__.py, b/z.py and b/c/__init__.py; not a/");
    assert.equal(await realpath(join(release(r2.id), "a")), await realpath(join(release(r1.id), "a")));
    assert.notEqual(await realpath(join(release(r2.id), "b")), await realpath(join(release(r1.id), "b")));
    assert.equal(
      (await stat(join(release(r2.id), "b/z.py"))).ino,
      (await stat(join(release(r1.id), "b/z.py"))).ino,
    );
    assert.deepEqual(await contentOf(release(r1.id), v1), v1, "the old release is intact");
    assert.deepEqual(await contentOf(release(r2.id), v2), v2);

    // Reverting b/c/y.py: the worker still has v1's `b`, so the file sent is checked and dropped.
    const v3 = { ...v1, "main.py": "M = 3\n" };
    const r3 = await publishPlanned(session, v3, r2);
    assert.equal(r3.published.received, 2, "main.py, and b/c/y.py, which r2 does not have");
    assert.equal(r3.published.linked, 0);
    assert.equal(await realpath(join(release(r3.id), "b")), await realpath(join(release(r1.id), "b")));
    assert.deepEqual(await contentOf(release(r3.id), v3), v3);
    const imported = await run(
      python,
      [
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]); import b.c.y, a.x; print(b.c.y.Y, a.x.X)",
        release(r3.id),
      ],
      { cwd: "/" },
    );
    assert.equal(imported.stdout.trim(), "1 1");
  });

  test("garbage collection keeps exactly the trees the kept releases use", async () => {
    const { session, project } = await fresh();
    const projectDir = join(deployDir, project);
    let previous: { id: string; manifest: ManifestFile[] } | null = null;
    const versions: Record<string, string>[] = [];
    for (let i = 0; i < 6; i++) {
      const files = {
        "main.py": `M = ${i}\n`,
        "p/__init__.py": "",
        [`p/q${i % 3}/__init__.py`]: "",
        [`p/q${i % 3}/m.py`]: `V = ${i}\n`,
        "stable/__init__.py": "",
        "stable/s.py": "S = 1\n",
      };
      versions.push(files);
      previous = await publishPlanned(session, files, previous);
    }
    await sendRequest(session, { op: "hello", deployDir, project, venv: join(base, "venv") });
    const kept = await readdir(join(projectDir, "releases"));
    assert.equal(kept.length, 3);
    const used = new Set<string>();
    for (const id of kept) await treesUsedBy(join(projectDir, "releases", id), used);
    assert.deepEqual((await readdir(join(projectDir, "trees"))).sort(), [...used].sort());
    for (const files of versions.slice(3)) {
      const id = releaseIdOf(manifestOf(files));
      assert.deepEqual(await contentOf(join(projectDir, "releases", id), files), files);
    }
  });

  test("a release due for collection becomes the next one's directory: its links to shared trees stay, nothing else of it does", async () => {
    const { session, project } = await fresh();
    const releasesDir = join(deployDir, project, "releases");
    const version = (i: number): Record<string, string> => ({
      "main.py": `M = ${i}\n`,
      "p/__init__.py": "",
      "p/m.py": `V = ${i}\n`,
      ...Object.fromEntries(
        [0, 1, 2].flatMap((k) => [
          [`stable${k}/__init__.py`, ""],
          [`stable${k}/s.py`, `S = ${k}\n`],
        ]),
      ),
      // Only in the first release: a file and a package the later ones drop.
      ...(i === 0 ? { "gone.py": "G = 1\n", "gone_pkg/__init__.py": "" } : {}),
    });
    const published: { id: string; manifest: ManifestFile[] }[] = [];
    for (let i = 0; i < 3; i++) {
      published.push(await publishPlanned(session, version(i), published.at(-1) ?? null));
    }
    // With three kept, the first release is the one the next push would collect.
    const victim = join(releasesDir, published[0]!.id);
    const victimIno = (await stat(victim)).ino;
    const stableLinkIno = (await lstat(join(victim, "stable0"))).ino;
    // What a user may have left in it on the worker: a stray file, a link replaced by a directory.
    await writeTree(victim, { "stray.txt": "x\n" });
    await rm(join(victim, "stable1"));
    await writeTree(victim, { "stable1/__init__.py": "", "stable1/s.py": "S = 'tampered'\n" });

    const r3 = await publishPlanned(session, version(3), published.at(-1)!);
    const dir = join(releasesDir, r3.id);
    assert.equal((await stat(dir)).ino, victimIno, "the collected release's directory was reused");
    assert.equal((await lstat(join(dir, "stable0"))).ino, stableLinkIno, "a link both share was kept");
    assert.deepEqual((await readdir(dir)).sort(), [
      ".sync-cluster-manifest.json",
      "main.py",
      "p",
      "stable0",
      "stable1",
      "stable2",
    ]);
    assert.ok((await lstat(join(dir, "stable1"))).isSymbolicLink(), "the tampered directory is a link again");
    assert.deepEqual(await contentOf(dir, version(3)), version(3));
    assert.deepEqual((await readdir(releasesDir)).sort(), [published[1]!.id, published[2]!.id, r3.id].sort());
    for (const [i, r] of [
      [1, published[1]!],
      [2, published[2]!],
    ] as const)
      assert.deepEqual(await contentOf(join(releasesDir, r.id), version(i)), version(i));

    // A release a workflow run uses (pinned) is never taken: the next one goes past it.
    await mkdir(join(deployDir, project, "pins"), { recursive: true });
    await writeTree(join(deployDir, project, "pins"), { [published[1]!.id]: "" });
    const pinnedIno = (await stat(join(releasesDir, published[1]!.id))).ino;
    const r4 = await publishPlanned(session, version(4), r3);
    assert.notEqual((await stat(join(releasesDir, r4.id))).ino, pinnedIno);
    assert.deepEqual(await contentOf(join(releasesDir, published[1]!.id), version(1)), version(1));
    assert.deepEqual(await contentOf(join(releasesDir, r4.id), version(4)), version(4));
  });

  test("a link put in releases/ in place of the release due for collection is removed, never followed and emptied", async () => {
    const { session, project } = await fresh();
    const releasesDir = join(deployDir, project, "releases");
    const version = (i: number) => ({ "main.py": `M = ${i}\n`, "p/__init__.py": "", "p/m.py": "V = 1\n" });
    const published: { id: string; manifest: ManifestFile[] }[] = [];
    for (let i = 0; i < 3; i++) {
      published.push(await publishPlanned(session, version(i), published.at(-1) ?? null));
    }
    // The oldest release becomes a link to a directory of the user's that looks like a release.
    const outside = await tempDir("not-a-release");
    const victim = join(releasesDir, published[0]!.id);
    await cp(join(victim, ".sync-cluster-manifest.json"), join(outside, ".sync-cluster-manifest.json"));
    await writeTree(outside, { "precious.txt": "keep me\n" });
    await rm(victim, { recursive: true });
    await symlink(outside, victim);

    const r3 = await publishPlanned(session, version(3), published[2]!);
    assert.deepEqual((await readdir(outside)).sort(), [".sync-cluster-manifest.json", "precious.txt"]);
    assert.deepEqual(await contentOf(join(releasesDir, r3.id), version(3)), version(3));
    await assert.rejects(lstat(victim), /ENOENT/);
  });

  test("keeping one release, neither the current release nor the base is ever taken for the next", async () => {
    const { session, project } = await fresh();
    await sendRequest(session, { op: "hello", deployDir, project, venv: join(base, "venv"), keep: 1 });
    let previous: { id: string; manifest: ManifestFile[] } | null = null;
    for (let i = 0; i < 4; i++) {
      const files = { "main.py": `M = ${i}\n`, "p/__init__.py": "", "p/m.py": "V = 1\n" };
      previous = await publishPlanned(session, files, previous);
      assert.deepEqual(await contentOf(join(deployDir, project, "current"), files), files);
    }
  });

  test("an unknown operation is refused, not fatal", async () => {
    const { session } = await fresh();
    await assert.rejects(
      session.request({ op: "format-disk" }),
      (e: unknown) => e instanceof AgentError && e.code === "bad-request",
    );
    await mkdir(join(base, "still-alive"), { recursive: true });
    const hello = await sendRequest(session, {
      op: "hello",
      deployDir,
      project: "proj-alive",
      venv: join(base, "venv"),
    });
    assert.equal(hello.projectDir, join(deployDir, "proj-alive"));
  });
  test("a small archive rides right behind its prepare; when the prepare is not ready, the upload is refused in step and the session goes on", async () => {
    const { session, project } = await fresh();
    const venv = join(base, "venv");
    const node = { name: "local", deployDir, venv } as NodeSpec;
    const settings = { keep: 3, lockTimeoutSeconds: 5, dryRun: false };
    const src = await tempDir("pipelined");
    const release = async (content: Record<string, string>): Promise<Release> => {
      await writeTree(src, content);
      const files = manifestOf(content);
      return { id: releaseIdOf(files), files, project };
    };
    const v1 = await release({ "a.py": "A = 1\n", "pkg/__init__.py": "", "pkg/m.py": "M = 1\n" });
    const stale = await hello(session, node, project, 3);
    const first = await pushToNode(session, node, stale, v1, new ArchiveCache(src), settings);
    assert.equal(first.status, "published");

    // Another pusher brought v2 meanwhile; this session still believes the worker runs only v1.
    const v2 = await release({ "a.py": "A = 2\n", "pkg/__init__.py": "", "pkg/m.py": "M = 1\n" });
    const other = localAgent(python);
    children.push(other.child);
    const otherState = await hello(other.session, node, project, 3);
    assert.equal(
      (await pushToNode(other.session, node, otherState, v2, new ArchiveCache(src), settings)).status,
      "published",
    );
    stale.current = v1.id;
    stale.releases = [{ id: v1.id, time: 0 }];
    stale.manifestFiles = v1.files;
    stale.pthOk = true;
    const switched = await pushToNode(session, node, stale, v2, new ArchiveCache(src), settings);
    assert.equal(switched.status, "switched");

    // The base this session remembers is gone: everything is sent once, from no base.
    const v3 = await release({ "a.py": "A = 3\n", "pkg/__init__.py": "", "pkg/m.py": "M = 1\n" });
    stale.current = "0123456789abcdef01234567";
    stale.releases = [{ id: stale.current, time: 0 }];
    stale.manifestFiles = v2.files;
    const rebuilt = await pushToNode(session, node, stale, v3, new ArchiveCache(src), settings);
    assert.equal(rebuilt.status, "published");
    assert.equal(rebuilt.filesSent, 3);

    // A prepare the worker refuses: the error is the prepare's, and the session still answers.
    const v4 = await release({ "a.py": "A = 4\n", "pkg/__init__.py": "", "pkg/m.py": "M = 1\n" });
    const mislabelled = { ...v4, id: "fedcba9876543210fedcba98" };
    stale.current = v3.id;
    stale.releases = [{ id: v3.id, time: 0 }];
    stale.manifestFiles = v3.files;
    await assert.rejects(
      pushToNode(session, node, stale, mislabelled, new ArchiveCache(src), settings),
      /does not match release/,
    );
    const after = await hello(session, node, project, 3);
    assert.equal(after.current, v3.id);
    assert.deepEqual(
      (await readdir(join(deployDir, project))).filter((n) => n.startsWith(".staging")),
      [],
    );
  });
});
