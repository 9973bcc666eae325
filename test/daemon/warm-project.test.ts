import assert from "node:assert/strict";
import { mkdir, realpath, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { DirectoryWatch } from "../../src/daemon/directory-watch.js";
import { WarmProject } from "../../src/daemon/warm-project.js";
import { SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";

/**
 * A warm project in this process, with the real interpreter: kept while nothing changes, made
 * again at once after a change (even one made just before the request), and settled in the
 * background after its first resolution. The real daemon's pushes are in warm-resolution.test.ts.
 */

const projects: WarmProject[] = [];
const roots: string[] = [];
after(async () => {
  for (const p of projects) p.close();
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function warmProject(files: Record<string, string>) {
  const root = await realpath(await tempDir("warm-project"));
  roots.push(root);
  await writeTree(root, files);
  const project = new WarmProject(
    {
      entry: { kind: "module", name: "workflow.main" },
      startDir: root,
      python: SYSTEM_PYTHON,
      include: [],
      exclude: [],
      env: { HOME: process.env.HOME ?? "/root" },
      interpreterEnv: { ...process.env, PYTHONPATH: "" },
    },
    () => {},
  );
  projects.push(project);
  return { root, project };
}

const paths = (r: { resolution: { files: { path: string }[] } }) => r.resolution.files.map((f) => f.path);

test("a directory watch names what changed, and a directory moved away is forgotten below", async () => {
  const root = await realpath(await tempDir("dir-watch"));
  await mkdir(join(root, "a", "b"), { recursive: true });
  const seen: string[] = [];
  const watch = new DirectoryWatch(
    (_dir, path) => seen.push(path),
    (reason) => assert.fail(reason),
  );
  try {
    assert.ok(watch.add(join(root, "a")));
    assert.ok(watch.add(join(root, "a", "b")));
    assert.equal(watch.add(join(root, "missing")), false);
    await writeFile(join(root, "a", "b", "x.py"), "1");
    await waitFor("the new file", () => seen.includes(join(root, "a", "b", "x.py")));
    await rename(join(root, "a", "b"), join(root, "moved"));
    await waitFor("the move", () => seen.includes(join(root, "a", "b")));
    watch.forgetAt(join(root, "a", "b"));
    assert.deepEqual([...watch.directories()], [join(root, "a")]);
  } finally {
    watch.close();
    await rm(root, { recursive: true, force: true });
  }
});

test("kept while nothing changes; a change made just before the request is seen", async () => {
  const { root, project } = await warmProject({
    "workflow/__init__.py": "",
    "workflow/main.py": "import util.calc\n",
    "util/__init__.py": "",
    "util/calc.py": "VALUE = 1\n",
  });
  const first = await project.resolve();
  assert.equal(first.warm, false);
  const second = await project.resolve();
  assert.equal(second.warm, true, "nothing changed since the first (and its settling)");
  assert.deepEqual(paths(second), paths(first));

  await writeFile(join(root, "util", "calc.py"), "VALUE = 22\n");
  const edited = await project.resolve();
  assert.equal(edited.warm, false);
  assert.match(edited.reason, /util\/calc\.py changed/);
  assert.notEqual(
    edited.resolution.files.find((f) => f.path === "util/calc.py")?.sha256,
    first.resolution.files.find((f) => f.path === "util/calc.py")?.sha256,
  );

  await writeTree(root, { "util/deep/__init__.py": "", "util/deep/more.py": "X = 1\n" });
  const added = await project.resolve();
  assert.deepEqual(
    paths(added).filter((p) => p.startsWith("util/deep/")),
    ["util/deep/__init__.py", "util/deep/more.py"],
  );
  // The new directory was watched before it was read: a file made in it now is seen too.
  await writeFile(join(root, "util", "deep", "later.py"), "Y = 1\n");
  assert.ok(paths(await project.resolve()).includes("util/deep/later.py"));
  assert.equal((await project.resolve()).warm, true);
  assert.equal(project.status().unwatchable, null);
});

test("a change is resolved again as soon as the saves stop, before any request: the next one finds it done", async () => {
  const { root, project } = await warmProject({
    "workflow/__init__.py": "",
    "workflow/main.py": "import util.calc\n",
    "util/__init__.py": "",
    "util/calc.py": "VALUE = 1\n",
  });
  await project.resolve();
  assert.equal((await project.resolve()).warm, true);
  const made = project.status().resolutions;

  await writeFile(join(root, "util", "calc.py"), "VALUE = 22\n");
  await writeTree(root, { "util/more.py": "X = 1\n" });
  await waitFor("the daemon resolving on its own", () => project.status().resolutions > made);
  const next = await project.resolve();
  assert.equal(project.status().resolutions, made + 1, "no request resolved again");
  // Answered from the resolution made when the change was heard, and said so: not "nothing changed".
  assert.equal(next.warm, false);
  assert.match(next.reason, /changed.*; resolved when heard$/);
  assert.ok(paths(next).includes("util/more.py"));
  assert.equal((await project.resolve()).warm, true);
});
