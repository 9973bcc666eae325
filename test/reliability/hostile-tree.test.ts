import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readdirSync, writeFileSync } from "node:fs";
import { chmod, mkdir, readFile, realpath, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ResolutionError } from "../../src/core/errors.js";
import { releaseIdOf } from "../../src/core/release/manifest.js";
import { buildArchive } from "../../src/push/archive.js";
import { type Resolution, type ResolveOptions, resolveProject } from "../../src/resolve/resolver.js";
import { sendRequest } from "../../src/transport/worker-client.js";
import { localAgent } from "../fixtures/local-agent.js";
import { makePackageProject, SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { cliAsNobody, isRoot, openForNobody } from "../fixtures/unprivileged.js";

/**
 * The resolver on a real tree full of hostile entries: every file is either shipped exactly (name
 * and bytes) or refused with a clear message; nothing hangs, loops, or leaves the root silently.
 */

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };

/** Fails the test instead of hanging the run: a FIFO or /dev/zero opened by mistake would never end. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function resolvePackage(root: string, extra: Partial<ResolveOptions> = {}): Promise<Resolution> {
  return within(
    20_000,
    "resolveProject",
    resolveProject({
      entry: { kind: "module", name: "workflow.main" },
      startDir: root,
      python: SYSTEM_PYTHON,
      env,
      ...extra,
    }),
  );
}

async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<ResolutionError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ResolutionError, `expected a ResolutionError, got ${String(caught)}`);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

function sha(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/** A project root (realpath'd, as the resolver reports it) with the seed's packages, plus a sibling "outside" directory. */
async function project(label: string): Promise<{ root: string; outside: string }> {
  const base = await realpath(await tempDir(`hostile-${label}`));
  const root = join(base, "proj");
  const outside = join(base, "outside");
  await makePackageProject(root);
  await writeTree(outside, { "secret.py": "SECRET = 'outside the root'\n", "pkg/__init__.py": "" });
  return { root, outside };
}

function tryMknod(path: string, major: number, minor: number): boolean {
  const r = spawnSync("mknod", [path, "c", String(major), String(minor)]);
  return r.status === 0;
}

function mkfifo(path: string): void {
  const r = spawnSync("mkfifo", [path]);
  assert.equal(r.status, 0, `mkfifo ${path}: ${r.stderr}`);
}

/** The worker agent as a local process (as in test/worker/agent.test.ts): proves names survive the whole trip. */
describe("hostile project trees", () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  const oddNames = [
    "new\nline.py",
    "single'quote.py",
    'double"quote.py',
    "back\\slash.py",
    "$(touch pwned).py",
    "`id`.py",
    "-leading-dash.py",
    "--help.py",
    "semi;colon&amp.py",
    "sp ace.py",
    "tab\there.py",
    "ünïcødé.py",
    "*glob?[x].py",
  ];

  test("odd but valid file names in a shipped package are shipped byte for byte, through the agent too", async () => {
    const { root } = await project("names");
    const expected = new Map<string, string>();
    for (const name of oddNames) {
      const path = `workflow/${name}`;
      const content = `# ${JSON.stringify(name)}\nX = 1\n`;
      await writeFile(join(root, path), content);
      expected.set(path, content);
      // The same names as data files, picked by an include glob.
      await mkdir(join(root, "workflow/data"), { recursive: true });
      const data = `workflow/data/${name.replace(/\.py$/, ".txt")}`;
      await writeFile(join(root, data), `data ${name}\n`);
      expected.set(data, `data ${name}\n`);
    }
    const marker = join(root, "pwned");
    const r = await resolvePackage(root, { include: ["workflow/data/*"] });
    const byPath = new Map(r.files.map((f) => [f.path, f]));
    for (const [path, content] of expected) {
      const f = byPath.get(path);
      assert.ok(f, `${JSON.stringify(path)} was not shipped; got ${JSON.stringify([...byPath.keys()])}`);
      assert.equal(f.sha256, sha(content), path);
      assert.equal(f.size, Buffer.byteLength(content), path);
    }

    // Through the archive and the agent, into a real release directory.
    const deployDir = join(await tempDir("hostile-deploy"), "deploy");
    const agent = localAgent();
    children.push(agent.child);
    await sendRequest(agent.session, { op: "hello", deployDir, project: "p", venv: "/nonexistent-venv" });
    const id = releaseIdOf(r.files);
    const prepared = await sendRequest(agent.session, {
      op: "prepare",
      release: id,
      base: null,
      upsert: r.files.map((f) => [f.path, f.size, f.mode, f.sha256]),
      remove: [],
      reuse: [],
    });
    assert.equal(prepared.status, "ready");
    const published = await sendRequest(agent.session, { op: "upload" }, await buildArchive(r.root, r.files));
    assert.equal(published.status, "published");
    const release = join(deployDir, "p", "releases", id);
    for (const [path, content] of expected) {
      assert.equal(await readFile(join(release, path), "utf8"), content, path);
    }
    assert.deepEqual(
      readdirSync(join(release, "workflow")).sort(),
      readdirSync(join(root, "workflow")).sort(),
      "the release's package directory has exactly the source's names",
    );
    // No name was ever handed to a shell.
    await assert.rejects(readFile(marker));
    await assert.rejects(readFile(join(deployDir, "p", "releases", id, "pwned")));
    agent.session.close();
  });

  test("a name that is not valid UTF-8 is skipped with a warning that says so, not mistaken for a broken link", async () => {
    const { root } = await project("utf8");
    const dir = join(root, "workflow");
    // workflow/bad\xff.py and workflow/data/bad\xfe.txt (picked by an include glob)
    writeFileSync(
      Buffer.concat([Buffer.from(`${dir}/bad`), Buffer.from([0xff]), Buffer.from(".py")]),
      "X = 1\n",
    );
    await mkdir(join(dir, "data"));
    writeFileSync(
      Buffer.concat([Buffer.from(`${dir}/data/bad`), Buffer.from([0xfe]), Buffer.from(".txt")]),
      "data\n",
    );
    const r = await resolvePackage(root, { include: ["workflow/data/*"] });
    assert.ok(
      r.files.every((f) => !f.path.includes("\uFFFD")),
      `a mangled name was put in the manifest: ${JSON.stringify(r.files.map((f) => f.path))}`,
    );
    assert.ok(r.files.some((f) => f.path === "workflow/main.py"));
    const warned = r.warnings.filter((w) => /not valid UTF-8/.test(w));
    assert.equal(warned.length, 2, `warnings: ${JSON.stringify(r.warnings)}`);
    assert.ok(warned.some((w) => w.startsWith("workflow/bad")));
    assert.ok(warned.some((w) => w.startsWith("workflow/data/bad")));
    assert.ok(r.warnings.every((w) => !/broken symbolic link/.test(w)));
  });

  test("symbolic links: loops and directory links are not followed, links out of the root are never silent", async () => {
    const { root, outside } = await project("links");
    const w = join(root, "workflow");
    await symlink(join(outside, "secret.py"), join(w, "leak.py")); // file link out of the root
    await symlink(outside, join(w, "escape")); // directory link out of the root (holds a package)
    await symlink("..", join(w, "parent")); // directory link to an ancestor: a loop if followed
    await symlink("loop.py", join(w, "loop.py")); // a link to itself
    await symlink("pong.py", join(w, "ping.py"));
    await symlink("ping.py", join(w, "pong.py")); // a two-link loop
    await symlink("/dev/zero", join(w, "zero.py")); // endless content if opened
    await symlink(join(outside, "nonexistent.py"), join(w, "dangling.py"));
    await symlink("/etc/passwd", join(w, "passwd.txt")); // reached by the include glob
    const r = await resolvePackage(root, { include: ["workflow/**"] });
    const paths = r.files.map((f) => f.path);
    for (const p of paths) {
      assert.ok(!p.startsWith("workflow/escape/"), `followed a directory link out of the root: ${p}`);
      assert.ok(!p.startsWith("workflow/parent/"), `followed a looping directory link: ${p}`);
    }
    for (const p of ["workflow/loop.py", "workflow/ping.py", "workflow/pong.py", "workflow/zero.py"]) {
      assert.ok(!paths.includes(p), `${p} was shipped`);
    }
    assert.ok(!paths.includes("workflow/dangling.py"));
    const warn = (re: RegExp) =>
      assert.ok(
        r.warnings.some((x) => re.test(x)),
        `no warning matching ${re}: ${JSON.stringify(r.warnings, null, 1)}`,
      );
    warn(/^workflow\/loop\.py: skipped, a symbolic link loop/);
    warn(/^workflow\/ping\.py: skipped, a symbolic link loop/);
    warn(/^workflow\/zero\.py: skipped, not a regular file/);
    warn(/^workflow\/dangling\.py: skipped, a broken symbolic link/);
    warn(/^workflow\/escape: a link to the directory .*outside.*not followed/);
    warn(/^workflow\/parent: a link to the directory .*not followed/);
    // Content from outside the root: shipped only with a warning that names the link and its target.
    for (const [path, target] of [
      ["workflow/leak.py", join(outside, "secret.py")],
      ["workflow/passwd.txt", "/etc/passwd"],
    ] as const) {
      if (!paths.includes(path)) continue;
      assert.ok(
        r.warnings.some((x) => x.startsWith(`${path}: a link to ${target}, outside the root`)),
        `${path} shipped from outside the root without a warning: ${JSON.stringify(r.warnings)}`,
      );
      const f = r.files.find((x) => x.path === path)!;
      assert.equal(f.sha256, sha(await readFile(target)));
    }
  });

  test("a FIFO in the tree is never opened (resolution finishes), whether reached by rule, glob or link", async () => {
    const { root } = await project("fifo");
    await mkdir(join(root, "workflow/data"));
    mkfifo(join(root, "workflow/pipe.py"));
    mkfifo(join(root, "workflow/data/pipe.csv"));
    await symlink("pipe.py", join(root, "workflow/to_pipe.py"));
    const r = await resolvePackage(root, { include: ["workflow/data/*"] });
    const paths = r.files.map((f) => f.path);
    for (const p of ["workflow/pipe.py", "workflow/data/pipe.csv", "workflow/to_pipe.py"]) {
      assert.ok(!paths.includes(p), `${p} was shipped`);
      assert.ok(
        r.warnings.some((x) => x === `${p}: skipped, not a regular file`),
        `no warning for ${p}: ${JSON.stringify(r.warnings)}`,
      );
    }
    assert.ok(paths.includes("workflow/main.py"));
  });

  test("device files in the tree are never opened", async (t) => {
    const { root } = await project("dev");
    await mkdir(join(root, "workflow/data"));
    // /dev/zero would never end and /dev/null would ship as empty.
    if (!tryMknod(join(root, "workflow/zero.py"), 1, 5)) {
      t.skip("mknod is not permitted here");
      return;
    }
    assert.ok(tryMknod(join(root, "workflow/data/null.bin"), 1, 3));
    const r = await resolvePackage(root, { include: ["workflow/data/*"] });
    const paths = r.files.map((f) => f.path);
    for (const p of ["workflow/zero.py", "workflow/data/null.bin"]) {
      assert.ok(!paths.includes(p), `${p} was shipped`);
      assert.ok(r.warnings.includes(`${p}: skipped, not a regular file`), JSON.stringify(r.warnings));
    }
  });

  test("an unreadable file is refused with its name", async () => {
    const { root } = await project("unreadable");
    await writeFile(join(root, "workflow/secret.py"), "X = 1\n");
    await chmod(join(root, "workflow/secret.py"), 0o000);
    if (!isRoot) {
      await rejectsWith(resolvePackage(root), /workflow\/secret\.py/, /permission denied|EACCES/i);
      return;
    }
    const home = await openForNobody(join(root, ".."));
    const r = cliAsNobody(["resolve", "-m", "workflow.main", "--python", SYSTEM_PYTHON], root, home);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /workflow\/secret\.py/);
    assert.match(r.stderr, /permission denied/i);
  });

  test("a file deleted between resolution and sending is refused with its name", async () => {
    const { root } = await project("deleted");
    const r = await resolvePackage(root);
    await rm(join(root, "util/sort/quick.py"));
    await rejectsWith(
      within(10_000, "buildArchive", buildArchive(r.root, r.files)),
      /util\/sort\/quick\.py could not be read while pushing/,
      /ENOENT|no such file/,
    );
  });

  test("a file replaced by a FIFO between resolution and sending is refused, not opened for ever", async () => {
    const { root } = await project("swapped");
    const r = await resolvePackage(root);
    await rm(join(root, "util/sort/quick.py"));
    mkfifo(join(root, "util/sort/quick.py"));
    try {
      await rejectsWith(
        within(10_000, "buildArchive", buildArchive(r.root, r.files)),
        /util\/sort\/quick\.py/,
        /not a regular file/,
      );
    } finally {
      // Unblock a reader stuck in open(2), if any, so the run can end.
      try {
        closeSync(openSync(join(root, "util/sort/quick.py"), "r+"));
      } catch {}
    }
  });

  test("a file replaced by /dev/zero's device between resolution and sending is refused, not streamed", async (t) => {
    const { root } = await project("swapped-dev");
    const r = await resolvePackage(root);
    await rm(join(root, "util/sort/quick.py"));
    if (!tryMknod(join(root, "util/sort/quick.py"), 1, 5)) {
      t.skip("mknod is not permitted here");
      return;
    }
    await rejectsWith(
      within(10_000, "buildArchive", buildArchive(r.root, r.files)),
      /util\/sort\/quick\.py could not be read while pushing \(not a regular file/,
    );
  });

  test("a file replaced by a FIFO between listing and hashing is refused, not opened for ever", async () => {
    const { root } = await project("swapped-digest");
    const { digestFiles } = await import("../../src/resolve/file-digest.js");
    mkfifo(join(root, "workflow/late.py"));
    mkfifo(join(root, "workflow/late.bin"));
    try {
      for (const [path, size] of [
        ["workflow/late.py", 10],
        ["workflow/late.bin", 64 * 1024 * 1024],
      ] as const) {
        await assert.rejects(
          within(10_000, "digestFiles", digestFiles([{ absPath: join(root, path), size, mtimeMs: 0 }])),
          (e: Error) => /not a regular file/.test(e.message),
        );
      }
    } finally {
      for (const p of ["workflow/late.py", "workflow/late.bin"]) {
        try {
          closeSync(openSync(join(root, p), "r+"));
        } catch {}
      }
    }
  });

  test("a huge data file matched by an include glob is refused by name and limit, without reading it", async () => {
    const { root } = await project("huge");
    await mkdir(join(root, "workflow/data"));
    const huge = join(root, "workflow/data/huge.bin");
    await writeFile(huge, "");
    await truncate(huge, 2 * 1024 * 1024 * 1024); // sparse: 2 GiB that take no disk
    await writeFile(join(root, "workflow/data/small.csv"), "a,b\n");
    const started = performance.now();
    const memBefore = process.memoryUsage().rss;
    const error = await rejectsWith(
      resolvePackage(root, { include: ["workflow/data/*"] }),
      /^workflow\/data\/huge\.bin is 2\.0 GiB, more than the 512 MiB limit/,
      /workflow\/data\/huge\.bin/,
      /2\.0 GiB/,
      /512 MiB/,
      /exclude/,
    );
    const ms = performance.now() - started;
    assert.ok(ms < 5_000, `took ${ms.toFixed(0)} ms: the file was read (${error.message})`);
    assert.ok(process.memoryUsage().rss - memBefore < 256 * 1024 * 1024, "memory grew with the file");
    // Excluding it, as the message says, resolves.
    const r = await resolvePackage(root, {
      include: ["workflow/data/*"],
      exclude: ["workflow/data/huge.bin"],
    });
    assert.ok(r.files.some((f) => f.path === "workflow/data/small.csv"));
    assert.ok(!r.files.some((f) => f.path === "workflow/data/huge.bin"));
    await rm(huge);
  });
});
