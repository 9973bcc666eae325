import assert from "node:assert/strict";
import { test } from "node:test";
import { PendingChanges } from "../../src/core/daemon/pending-changes.js";
import { interpreterEnvironment, pathShapingEnvironment } from "../../src/core/python/path-environment.js";
import {
  changeVerdict,
  importDirReadsInside,
  type ResolutionInput,
} from "../../src/core/python/resolution-inputs.js";

const INPUTS: ResolutionInput[] = [
  { kind: "tree", path: "/p/proj", scope: "project" },
  { kind: "import-dir", path: "/p/proj", scope: "project" },
  { kind: "import-dir", path: "/v/site", scope: "interpreter" },
  { kind: "scan", path: "/v/site/purelib", scope: "compiled" },
  { kind: "file", path: "/v/pyvenv.cfg", scope: "interpreter" },
  { kind: "file", path: "/u/.local/lib/site", scope: "interpreter" },
];

const verdict = (path: string) => changeVerdict(INPUTS, path);

test("below a root of the set, what can ship counts and what never ships does not", () => {
  assert.deepEqual(verdict("/p/proj/util/calc.py"), { scope: "project", structural: false });
  assert.deepEqual(verdict("/p/proj/util/.gitignore"), { scope: "project", structural: false });
  assert.equal(verdict("/p/proj/util/__pycache__/calc.cpython-311.pyc"), undefined);
  assert.equal(verdict("/p/proj/.venv/lib/x.py"), undefined);
  assert.equal(verdict("/p/proj-other/x.py"), undefined);
});

test("a root itself, or a directory above it, changed: structural", () => {
  assert.deepEqual(verdict("/p/proj"), { scope: "project", structural: true });
  assert.deepEqual(verdict("/p"), { scope: "project", structural: true });
});

test("in a sys.path directory: the names, __init__.py and installed metadata count, nothing deeper", () => {
  assert.deepEqual(verdict("/v/site/newpkg"), { scope: "interpreter", structural: false });
  assert.deepEqual(verdict("/v/site/newpkg/__init__.py"), { scope: "interpreter", structural: false });
  assert.deepEqual(verdict("/v/site/newpkg-1.0.dist-info/RECORD"), {
    scope: "interpreter",
    structural: false,
  });
  assert.deepEqual(verdict("/v/site/extra.pth"), { scope: "interpreter", structural: false });
  assert.deepEqual(verdict("/v/site/x.egg/EGG-INFO/top_level.txt"), {
    scope: "interpreter",
    structural: false,
  });
  assert.equal(verdict("/v/site/newpkg/module.py"), undefined);
  assert.equal(verdict("/v/site/__pycache__"), undefined);
  // Metadata in a PYTHONPATH directory is read by the interpreter's probe too.
  assert.deepEqual(verdict("/p/proj/tool-1.0.dist-info"), { scope: "interpreter", structural: false });
});

test("in a package searched for compiled files, everything but bytecode counts", () => {
  assert.deepEqual(verdict("/v/site/purelib/sub/_fast.cpython-311-x86_64-linux-gnu.so"), {
    scope: "compiled",
    structural: false,
  });
  assert.equal(verdict("/v/site/purelib/sub/__pycache__/a.cpython-311.pyc"), undefined);
});

test("a single path counts alone; a missing directory on its way is structural", () => {
  assert.deepEqual(verdict("/v/pyvenv.cfg"), { scope: "interpreter", structural: false });
  assert.equal(verdict("/v/other.cfg"), undefined);
  assert.deepEqual(verdict("/u/.local"), { scope: "interpreter", structural: true });
});

test("the directories of a sys.path directory read inside: packages and metadata, not caches", () => {
  assert.deepEqual(
    ["numpy", "numpy-1.26.dist-info", "x.egg", "__pycache__", "not-a-package", "bin"].filter(
      importDirReadsInside,
    ),
    ["numpy", "numpy-1.26.dist-info", "x.egg", "bin"],
  );
});

test("pending changes keep the widest call per path, and past the bound only doubt", () => {
  const pending = new PendingChanges();
  assert.ok(pending.empty);
  pending.record("/a", { scope: "interpreter", structural: false });
  pending.record("/a", { scope: "project", structural: true });
  pending.record("/b", { scope: "project", structural: false });
  assert.equal(pending.describe(), "/a, /b changed");
  const batch = pending.take();
  assert.deepEqual(batch.paths.get("/a"), { scope: "interpreter", structural: true });
  assert.deepEqual([...batch.scopes].sort(), ["interpreter", "project"]);
  assert.equal(batch.doubt, undefined);
  assert.ok(pending.empty);
  for (let i = 0; i <= PendingChanges.maxPaths; i++)
    pending.record(`/f${i}`, { scope: "project", structural: false });
  const doubtful = pending.take();
  assert.match(doubtful.doubt ?? "", /more than 10000 paths changed/);
  assert.equal(doubtful.paths.size, 0);
});

test("the environment that shapes sys.path: set variables only, PATH when python is searched on it", () => {
  const env = { PATH: "/bin", HOME: "/h", PYTHONPATH: "/x", EDITOR: "vi" };
  assert.deepEqual(pathShapingEnvironment(env, undefined), { HOME: "/h", PATH: "/bin", PYTHONPATH: "/x" });
  assert.deepEqual(pathShapingEnvironment(env, "/usr/bin/python3"), { HOME: "/h", PYTHONPATH: "/x" });
  // The interpreter started for a client has the client's values, and not the daemon's own.
  const own = { PATH: "/daemon/bin", PYTHONPATH: "/daemon", LANG: "C" };
  assert.deepEqual(interpreterEnvironment(own, { HOME: "/h" }), {
    PATH: "/daemon/bin",
    LANG: "C",
    HOME: "/h",
  });
});
