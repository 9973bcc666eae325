import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { selectModuleSet, type TreeEntry, topLevelNamesOf } from "../../src/core/module-set/module-set.js";

/** Builds a tree snapshot from paths: "a/b.py" makes directories a and the file b.py. */
function tree(paths: string[], extra: Record<string, Partial<TreeEntry>> = {}): Map<string, TreeEntry[]> {
  const t = new Map<string, TreeEntry[]>([["", []]]);
  const ensureDir = (dir: string) => {
    if (t.has(dir)) return;
    const slash = dir.lastIndexOf("/");
    const parent = slash === -1 ? "" : dir.slice(0, slash);
    ensureDir(parent);
    t.get(parent)!.push({
      name: dir.slice(slash + 1),
      type: "dir",
      size: 0,
      mode: 0o755,
      mtimeMs: 0,
      ...extra[dir],
    });
    t.set(dir, []);
  };
  for (const p of paths) {
    const slash = p.lastIndexOf("/");
    const dir = slash === -1 ? "" : p.slice(0, slash);
    ensureDir(dir);
    t.get(dir)!.push({
      name: p.slice(slash + 1),
      type: "file",
      size: 1,
      mode: 0o644,
      mtimeMs: 1,
      ...extra[p],
    });
  }
  return t;
}

function select(
  t: Map<string, TreeEntry[]>,
  imported: string[] = [],
  include: string[] = [],
  exclude: string[] = [],
) {
  return selectModuleSet({ tree: t, imported: new Set(imported), include, exclude });
}

const names = (r: ReturnType<typeof select>) => r.files.map((f) => f.path);

describe("selectModuleSet (rule 1)", () => {
  test("root .py files and regular packages go, recursively, with their data; other root files do not", () => {
    const r = select(
      tree([
        "main.py",
        "util.py",
        "README.md",
        "pkg/__init__.py",
        "pkg/a.py",
        "pkg/data.json",
        "pkg/sub/__init__.py",
        "pkg/sub/b.py",
      ]),
    );
    assert.deepEqual(names(r), [
      "main.py",
      "pkg/__init__.py",
      "pkg/a.py",
      "pkg/data.json",
      "pkg/sub/__init__.py",
      "pkg/sub/b.py",
      "util.py",
    ]);
    assert.deepEqual(r.pending, []);
  });

  test("namespace directories go only when imported, with their .py files and regular packages", () => {
    const t = tree(["ns/mod.py", "ns/inner/__init__.py", "ns/inner/x.py", "ns/deeper/y.py", "other/z.py"]);
    assert.deepEqual(names(select(t)), []);
    assert.deepEqual(names(select(t, ["ns", "ns.mod"])), [
      "ns/inner/__init__.py",
      "ns/inner/x.py",
      "ns/mod.py",
    ]);
    assert.deepEqual(names(select(t, ["ns", "ns.deeper", "ns.deeper.y"])), [
      "ns/deeper/y.py",
      "ns/inner/__init__.py",
      "ns/inner/x.py",
      "ns/mod.py",
    ]);
  });

  test("inside a regular package every file goes, in directories without __init__.py too (package data)", () => {
    const t = tree([
      "pkg/__init__.py",
      "pkg/templates/t.py",
      "pkg/templates/report.html",
      "pkg/schemas-v2/a.json",
      "pkg/pipeline/defaults.yaml",
      "pkg/.hidden.yaml",
      "pkg/__pycache__/x.pyc",
      "pkg/venv/pyvenv.cfg",
      "pkg/venv/lib.py",
      "pkg/node_modules/m.js",
    ]);
    assert.deepEqual(names(select(t)), [
      "pkg/__init__.py",
      "pkg/pipeline/defaults.yaml",
      "pkg/schemas-v2/a.json",
      "pkg/templates/report.html",
      "pkg/templates/t.py",
    ]);
  });

  test("setup.py, conftest.py, noxfile.py and __init__.py at the root never go, even by include", () => {
    const t = tree([
      "setup.py",
      "conftest.py",
      "noxfile.py",
      "__init__.py",
      "main.py",
      "pkg/__init__.py",
      "pkg/setup.py",
    ]);
    assert.deepEqual(names(select(t, [], ["*.py"])), ["main.py", "pkg/__init__.py", "pkg/setup.py"]);
  });

  test("in a git work tree, .gitignore files at and below the root and above it decide; include wins", () => {
    const gitignore = (text: string): Partial<TreeEntry> => ({ text });
    const t = tree(
      [
        ".gitignore",
        "main.py",
        "build.py",
        "pkg/__init__.py",
        "pkg/.gitignore",
        "pkg/out.json",
        "pkg/keep.json",
        "pkg/cache/c.bin",
        "pkg/data/big.bin",
        "pkg/data/small.yaml",
        "pkg/local.cfg",
      ],
      {
        ".gitignore": gitignore("build.py\ncache/\n*.bin\n"),
        "pkg/.gitignore": gitignore("*.json\n!keep.json\n"),
      },
    );
    const above = [{ dir: "", above: "src", text: "src/pkg/local.cfg\n" }];
    const inWorkTree = (include: string[] = []) =>
      names(selectModuleSet({ tree: t, imported: new Set(), include, exclude: [], gitIgnoreAbove: above }));
    assert.deepEqual(inWorkTree(), ["main.py", "pkg/__init__.py", "pkg/data/small.yaml", "pkg/keep.json"]);
    assert.deepEqual(inWorkTree(["pkg/cache/*.bin"]), [
      "main.py",
      "pkg/__init__.py",
      "pkg/cache/c.bin",
      "pkg/data/small.yaml",
      "pkg/keep.json",
    ]);
    // Outside a git work tree no .gitignore counts, as for git.
    assert.equal(names(select(t)).length, 9);
  });

  test("never shipped: caches, compiled files, hidden entries, virtualenvs, site-packages, node_modules", () => {
    const r = select(
      tree([
        "a.py",
        ".secret.py",
        ".git/config.py",
        "__pycache__/a.cpython-311.pyc",
        "pkg/__init__.py",
        "pkg/b.pyc",
        "pkg/__pycache__/x.py",
        "venv/pyvenv.cfg",
        "venv/__init__.py",
        "venv/lib.py",
        "site-packages/__init__.py",
        "node_modules/__init__.py",
      ]),
      ["venv"],
      ["**/*"],
    );
    assert.deepEqual(names(r), ["a.py", "pkg/__init__.py"]);
  });

  test("include globs add data files; exclude globs remove files and whole directories", () => {
    const t = tree([
      "main.py",
      "pkg/__init__.py",
      "pkg/t/x.json",
      "pkg/t/y.txt",
      "tests/__init__.py",
      "tests/test_a.py",
      "data/in.csv",
    ]);
    assert.deepEqual(names(select(t, [], ["pkg/t/*.json", "data/*.csv"], ["tests/**"])), [
      "data/in.csv",
      "main.py",
      "pkg/__init__.py",
      "pkg/t/x.json",
      "pkg/t/y.txt",
    ]);
    assert.deepEqual(names(select(t, [], [], ["main.py", "pkg"])), ["tests/__init__.py", "tests/test_a.py"]);
  });

  test("directories are listed only when they may matter", () => {
    const t = new Map<string, TreeEntry[]>([
      [
        "",
        [
          { name: "pkg", type: "dir", size: 0, mode: 0o755, mtimeMs: 0 },
          { name: "big-data", type: "dir", size: 0, mode: 0o755, mtimeMs: 0 },
          { name: ".git", type: "dir", size: 0, mode: 0o755, mtimeMs: 0 },
        ],
      ],
    ]);
    assert.deepEqual(select(t).pending, ["pkg"]);
    assert.deepEqual(select(t, [], ["big-data/*.csv"]).pending.sort(), ["big-data", "pkg"]);
    assert.deepEqual(select(new Map()).pending, [""]);
  });

  test("links: files are followed and reported when they leave the root; directory links are not followed", () => {
    const t = tree(["pkg/__init__.py", "pkg/shared.py", "pkg/linked/__init__.py"], {
      "pkg/shared.py": { link: { target: "/elsewhere/shared.py", outsideRoot: true } },
      "pkg/linked": { link: { target: "/elsewhere/pkg", outsideRoot: true } },
    });
    const r = select(t, ["pkg.linked"]);
    assert.deepEqual(names(r), ["pkg/__init__.py", "pkg/shared.py"]);
    assert.ok(r.notes.some((n) => n.includes("pkg/shared.py") && n.includes("outside the root")));
    assert.ok(r.notes.some((n) => n.includes("pkg/linked") && n.includes("not followed")));
  });

  test("unreadable entries and non-regular files are skipped with a note", () => {
    const t = tree(["a.py", "fifo.py", "broken.py"], {
      "fifo.py": { type: "other" },
      "broken.py": { error: "a symbolic link loop" },
    });
    const r = select(t);
    assert.deepEqual(names(r), ["a.py"]);
    assert.equal(r.notes.length, 2);
  });

  test("topLevelNamesOf: root modules and root directories", () => {
    assert.deepEqual(
      [
        ...topLevelNamesOf([
          { path: "a.py" },
          { path: "my-notes.py" },
          { path: "pkg/x.py" },
          { path: "data/x.csv" },
        ]),
      ].sort(),
      ["a", "data", "pkg"],
    );
  });
});
