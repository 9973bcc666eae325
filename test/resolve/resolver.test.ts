import assert from "node:assert/strict";
import { cp, mkdir, realpath, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { ResolutionError } from "../../src/core/errors.js";
import type { Entry } from "../../src/core/module-set/entry-rules.js";
import { type Resolution, resolveProject } from "../../src/resolve/resolver.js";
import {
  makePackageProject,
  makeSiblingProject,
  makeVenv,
  run,
  SETUP_PY,
  SYSTEM_PYTHON,
  sitePackagesOf,
  tempDir,
  writeTree,
} from "../fixtures/projects.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };

function paths(r: Resolution): string[] {
  return r.files.map((f) => f.path);
}

/** Copies the resolved set alone into an empty directory and imports the entry from it with real python. */
async function proveSufficient(r: Resolution, python = SYSTEM_PYTHON): Promise<string> {
  const target = await tempDir("alone");
  for (const f of r.files) {
    await mkdir(join(target, f.path, ".."), { recursive: true });
    await cp(join(r.root, f.path), join(target, f.path));
  }
  const code = `import sys; sys.path.insert(0, ${JSON.stringify(target)}); import importlib; m = importlib.import_module(${JSON.stringify(r.module)}); print(m.__file__)`;
  const { stdout } = await run(python, ["-c", code], { cwd: "/" });
  assert.ok(stdout.trim().startsWith(target), `imported from ${stdout.trim()}, not from the copied set`);
  return target;
}

async function rejects(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ResolutionError, `expected a ResolutionError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

const scriptAt = (dir: string, file: string): Entry => ({ kind: "script", path: join(dir, file) });
const moduleNamed = (name: string): Entry => ({ kind: "module", name });

/** A project the resolver must refuse: what the test writes, and the reason the refusal gives. */
interface Refusal {
  /** The test's name. */
  refused: string;
  /** Writes what the case needs; says what python is asked to run and where it starts. */
  setup: () => Promise<{ entry: Entry; startDir: string }>;
  /** A function, since the pattern may name a directory the suite makes before its tests. */
  because: () => RegExp;
}

/** One test per case: resolving with the system's python fails with a ResolutionError that says why. */
function refusals(cases: readonly Refusal[]): void {
  for (const c of cases) {
    test(c.refused, async () => {
      const { entry, startDir } = await c.setup();
      await rejects(resolveProject({ entry, startDir, python: SYSTEM_PYTHON, env }), c.because());
    });
  }
}

describe("script mode (sibling files)", () => {
  let root: string;
  before(async () => {
    root = await realpath(await tempDir("script"));
    await makeSiblingProject(root);
    await writeTree(root, {
      "unimported.py": "X = 1\n",
      "helpers/__init__.py": "",
      "helpers/deep/__init__.py": "",
      "helpers/deep/tool.py": "Y = 2\n",
      "helpers/notes.txt": "not shipped\n",
      "used_ns/part.py": "Z = 3\n",
      "unused_ns/other.py": "W = 4\n",
      "data/big.csv": "a,b\n",
      ".hidden.py": "",
      "__pycache__/utilities.cpython-311.pyc": "junk",
      "venv/pyvenv.cfg": "home = /usr/bin\n",
      "venv/lib/python3.11/site-packages/x/__init__.py": "",
      "node_modules/pkg/__init__.py": "",
      "README.md": "hi\n",
    });
    await writeFile(
      join(root, "userScript.py"),
      `import utilities\nimport used_ns.part\n\n\ndef run():\n    return utilities.double(21)\n`,
    );
  });

  test("ships every sibling .py file and every regular package with its data, imported or not", async () => {
    const r = await resolveProject({
      entry: { kind: "script", path: join(root, "userScript.py") },
      startDir: root,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.equal(r.mode, "script");
    assert.equal(r.module, "userScript");
    assert.equal(r.root, root);
    assert.deepEqual(paths(r), [
      "helpers/__init__.py",
      "helpers/deep/__init__.py",
      "helpers/deep/tool.py",
      "helpers/notes.txt",
      "unimported.py",
      "used_ns/part.py",
      "userScript.py",
      "utilities.py",
    ]);
    for (const f of r.files) assert.match(f.sha256, /^[0-9a-f]{64}$/);
    await proveSufficient(r);
  });

  test("include and exclude globs add data files and remove paths", async () => {
    const r = await resolveProject({
      entry: { kind: "script", path: join(root, "userScript.py") },
      startDir: root,
      python: SYSTEM_PYTHON,
      env,
      include: ["data/*.csv", "helpers/*.txt"],
      exclude: ["helpers/deep/**", "unimported.py"],
    });
    assert.deepEqual(paths(r), [
      "data/big.csv",
      "helpers/__init__.py",
      "helpers/notes.txt",
      "used_ns/part.py",
      "userScript.py",
      "utilities.py",
    ]);
  });

  refusals([
    {
      refused: "a script in a package directory is refused with the -m invocation to use instead",
      setup: async () => ({ entry: scriptAt(root, "helpers/deep/tool.py"), startDir: root }),
      because: () => new RegExp(`PYTHONPATH=${root} python3 -m helpers\\.deep\\.tool`),
    },
    {
      refused: "a script that does not end in .py is refused",
      setup: async () => {
        await writeFile(join(root, "runme"), "print(1)\n");
        return { entry: scriptAt(root, "runme"), startDir: root };
      },
      because: () => /does not end in \.py/,
    },
    {
      refused: "a script named like a standard-library module is refused",
      setup: async () => {
        const dir = await tempDir("stdlib");
        await writeTree(dir, { "collections.py": "print(1)\n" });
        return { entry: scriptAt(dir, "collections.py"), startDir: dir };
      },
      because: () => /standard-library module `collections`/,
    },
    {
      refused: "a script named like an installed module is refused",
      setup: async () => {
        const dir = await tempDir("installed-name");
        await writeTree(dir, { "numpy.py": "print(1)\n" });
        return { entry: scriptAt(dir, "numpy.py"), startDir: dir };
      },
      because: () => /has the name of the module `numpy`/,
    },
    {
      refused: "a sibling named like a standard-library module is refused",
      setup: async () => {
        const dir = await tempDir("sibling-stdlib");
        await writeTree(dir, { "flow.py": "import json\n", "json.py": "X = 1\n" });
        return { entry: scriptAt(dir, "flow.py"), startDir: dir };
      },
      because: () => /`json` .* standard-library module/,
    },
    {
      refused: "a root of /tmp is refused",
      setup: async () => {
        const name = `sc_refused_${process.pid}.py`;
        await writeFile(join("/tmp", name), "X = 1\n");
        return { entry: scriptAt("/tmp", name), startDir: "/tmp" };
      },
      because: () => /system directory/,
    },
  ]);
});

describe("package mode (-m)", () => {
  let root: string;
  before(async () => {
    root = await realpath(await tempDir("package"));
    await makePackageProject(root);
    await writeTree(root, { "tests/test_main.py": "import workflow.main\n", "notes/readme.txt": "x" });
  });

  test("the seed's my_project: all of workflow/ and util/ go, with util/sort/quick.py", async () => {
    const r = await resolveProject({
      entry: { kind: "module", name: "workflow.main" },
      startDir: root,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.equal(r.mode, "package");
    assert.equal(r.root, root);
    assert.deepEqual(paths(r), [
      "util/__init__.py",
      "util/sort/__init__.py",
      "util/sort/quick.py",
      "workflow/__init__.py",
      "workflow/main.py",
    ]);
    const toil = r.thirdParty.find((t) => t.module === "toil");
    assert.ok(toil, "toil is classified as third-party");
    assert.equal(toil.location, "system");
    assert.equal(toil.native, false);
    assert.deepEqual(r.unresolved, []);
    await proveSufficient(r);
  });

  test("PYTHONPATH=$PWD from another directory finds the same root", async () => {
    const elsewhere = await tempDir("elsewhere");
    const r = await resolveProject({
      entry: { kind: "module", name: "workflow.main" },
      startDir: elsewhere,
      python: SYSTEM_PYTHON,
      env: { ...env, PYTHONPATH: root },
    });
    assert.equal(r.root, root);
    assert.equal(r.files.length, 5);
  });

  refusals([
    {
      refused: "a module that cannot be found says where it looked",
      setup: async () => ({ entry: moduleNamed("workflow.main"), startDir: await tempDir("nowhere") }),
      because: () => /No module named `workflow` .*Looked in:[\s\S]*\(start\)[\s\S]*\(stdlib\)/,
    },
    {
      refused: "a component on the way that is not a package is an error",
      setup: async () => ({ entry: moduleNamed("util.sort.quick.deeper"), startDir: root }),
      because: () => /`util\.sort\.quick` is a module .*not a package/,
    },
    {
      refused: "a module its package does not have is an error",
      setup: async () => ({ entry: moduleNamed("workflow.missing"), startDir: root }),
      because: () => /No module named `workflow\.missing`/,
    },
    {
      refused: "a package without a __main__.py is no entry",
      setup: async () => ({ entry: moduleNamed("workflow"), startDir: root }),
      because: () => /without a __main__\.py/,
    },
    {
      refused:
        "a top-level package the standard library's directory has (test) is an error: it would lose on the workers",
      setup: async () => {
        const dir = await realpath(await tempDir("shadow-stdlib"));
        await writeTree(dir, {
          "flow/__init__.py": "",
          "flow/main.py": "import test.cases\n",
          "test/__init__.py": "",
          "test/cases.py": "",
        });
        return { entry: moduleNamed("flow.main"), startDir: dir };
      },
      because: () =>
        /`test` in .* has the name of a standard-library module: on the workers the standard library comes first/,
    },
    {
      refused: "a standard-library entry has nothing to ship",
      setup: async () => ({ entry: moduleNamed("json.tool"), startDir: root }),
      because: () => /standard-library module: there is nothing to ship/,
    },
    {
      refused: "an entry found in the system's site-packages has nothing to ship",
      setup: async () => ({ entry: moduleNamed("toil.worker"), startDir: root }),
      because: () => /nothing to ship/,
    },
  ]);

  test("a root with its own __init__.py is an import-path entry all the same: a warning, and it is not shipped", async () => {
    const parent = await realpath(await tempDir("pkgroot"));
    await makePackageProject(parent);
    await writeFile(join(parent, "__init__.py"), "");
    const r = await resolveProject({
      entry: { kind: "module", name: "workflow.main" },
      startDir: parent,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.ok(!paths(r).includes("__init__.py"));
    assert.ok(r.warnings.some((w) => w.includes(`${join(parent, "__init__.py")} is ignored`)));
    await proveSufficient(r);
  });

  test("a top-level package an installed distribution also provides is a warning that names the installed copy", async () => {
    const dir = await realpath(await tempDir("shadow-installed"));
    await writeTree(dir, {
      "flow/__init__.py": "",
      "flow/main.py": "import numpy\n",
      "numpy/__init__.py": "",
    });
    const r = await resolveProject({
      entry: { kind: "module", name: "flow.main" },
      startDir: dir,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.ok(
      r.warnings.some((w) =>
        /`numpy` in .* has the name of an installed module: numpy \d[^ ]* in \//.test(w),
      ),
      r.warnings.join("\n"),
    );
  });

  test("a file over 10 MiB ships with a warning", async () => {
    const dir = await realpath(await tempDir("large"));
    await writeTree(dir, {
      "flow/__init__.py": "",
      "flow/main.py": "",
      "flow/reference.fa": "A".repeat(11 * 1024 * 1024),
    });
    const r = await resolveProject({
      entry: { kind: "module", name: "flow.main" },
      startDir: dir,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.ok(r.files.some((f) => f.path === "flow/reference.fa"));
    assert.ok(
      r.warnings.some((w) => w.startsWith("flow/reference.fa is 11.0 MiB")),
      r.warnings.join("\n"),
    );
  });

  test(".gitignore files above the root and .git/info/exclude count when the root is in a git work tree", async () => {
    const repo = await realpath(await tempDir("gitroot"));
    await writeTree(repo, {
      ".gitignore": "src/flow/generated/\n",
      "src/flow/__init__.py": "",
      "src/flow/main.py": "",
      "src/flow/generated/big.json": "{}",
      "src/flow/local.ini": "x",
      "src/flow/kept.ini": "x",
    });
    const options = {
      entry: { kind: "module" as const, name: "flow.main" },
      startDir: join(repo, "src"),
      python: SYSTEM_PYTHON,
      env,
    };
    assert.equal((await resolveProject(options)).files.length, 5, "not a work tree yet: every file goes");
    await run("git", ["init", "-q", repo]);
    await writeFile(join(repo, ".git", "info", "exclude"), "local.ini\n");
    assert.deepEqual(paths(await resolveProject(options)), [
      "flow/__init__.py",
      "flow/kept.ini",
      "flow/main.py",
    ]);
  });

  test("imports are classified: in-set, stdlib, native third-party from the system, unresolved with file and line", async () => {
    const dir = await realpath(await tempDir("classify"));
    await writeTree(dir, {
      "flow/__init__.py": "",
      "flow/main.py": [
        "import os, sys",
        "from . import helper",
        "from .helper import thing",
        "import numpy as np",
        "import not_a_real_module_xyz",
        "try:",
        "    import optional_missing_xyz",
        "except ImportError:",
        "    pass",
        "def f():",
        "    from util_ns import part",
        "",
      ].join("\n"),
      "flow/helper.py": "thing = 1\n",
      "util_ns/part.py": "P = 1\n",
    });
    const r = await resolveProject({
      entry: { kind: "module", name: "flow.main" },
      startDir: dir,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.deepEqual(paths(r), ["flow/__init__.py", "flow/helper.py", "flow/main.py", "util_ns/part.py"]);
    const numpy = r.thirdParty.find((t) => t.module === "numpy");
    assert.ok(numpy);
    assert.equal(numpy.native, true);
    assert.equal(numpy.location, "system");
    assert.ok(r.native.some((n) => n.modules.includes("numpy")));
    assert.deepEqual(r.unresolved, [{ module: "not_a_real_module_xyz", file: "flow/main.py", line: 5 }]);
    assert.ok(r.warnings.some((w) => w.includes("flow/main.py:5")));
    assert.deepEqual(r.optional, [
      { module: "optional_missing_xyz", file: "flow/main.py", line: 7, found: false },
    ]);
    assert.ok(!r.warnings.some((w) => w.includes("optional_missing_xyz")));
  });

  test("a link to a file outside the root ships its content and is reported; a directory link is not followed", async () => {
    const dir = await realpath(await tempDir("links"));
    const outside = await realpath(await tempDir("outside"));
    await writeTree(outside, { "shared.py": "S = 1\n", "pkg/__init__.py": "" });
    await makePackageProject(dir);
    await symlink(join(outside, "shared.py"), join(dir, "workflow", "shared.py"));
    await symlink(join(outside, "pkg"), join(dir, "workflow", "linked_pkg"));
    const r = await resolveProject({
      entry: { kind: "module", name: "workflow.main" },
      startDir: dir,
      python: SYSTEM_PYTHON,
      env,
    });
    assert.ok(paths(r).includes("workflow/shared.py"));
    assert.ok(!paths(r).some((p) => p.startsWith("workflow/linked_pkg")));
    assert.ok(r.warnings.some((w) => w.includes("workflow/shared.py") && w.includes("outside the root")));
  });
});

describe("installed mode", () => {
  let project: string;
  before(async () => {
    project = await realpath(await tempDir("installed"));
    await makePackageProject(join(project, "src"));
    await writeFile(join(project, "src", "setup.py"), SETUP_PY);
  });

  test("pip install . ships the project's distribution with its .dist-info, never pip or setuptools", async () => {
    const python = await makeVenv(join(project, "venv"), true);
    await run(
      join(project, "venv/bin/pip"),
      ["install", "-q", "--no-index", "--no-build-isolation", join(project, "src")],
      { cwd: project },
    );
    const elsewhere = await tempDir("run-elsewhere");
    const r = await resolveProject({
      entry: { kind: "module", name: "workflow.main" },
      startDir: elsewhere,
      python,
      env,
    });
    assert.equal(r.mode, "installed");
    assert.match(r.root, /site-packages$/);
    const p = paths(r);
    assert.ok(p.includes("util/sort/quick.py"));
    assert.ok(p.includes("workflow/main.py"));
    assert.ok(p.some((x) => /^my_project-1\.0\.dist-info\/METADATA$/.test(x)));
    assert.ok(!p.some((x) => /^(pip|setuptools|_distutils_hack|pkg_resources)[/-]/.test(x)), p.join(" "));
    assert.ok(!p.some((x) => x.includes("__pycache__") || x.endsWith(".pth")));
    await proveSufficient(r, python);
  });

  test("modules copied into site-packages by hand (the seed's cp -R) ship too", async () => {
    const venv = join(project, "venv-copied");
    const python = await makeVenv(venv);
    const sitePackages = await sitePackagesOf(python);
    await cp(join(project, "src", "workflow"), join(sitePackages, "workflow"), { recursive: true });
    await cp(join(project, "src", "util"), join(sitePackages, "util"), { recursive: true });
    const r = await resolveProject({
      entry: { kind: "module", name: "workflow.main" },
      startDir: await tempDir("x"),
      python,
      env,
    });
    assert.equal(r.mode, "installed");
    assert.deepEqual(paths(r), [
      "util/__init__.py",
      "util/sort/__init__.py",
      "util/sort/quick.py",
      "workflow/__init__.py",
      "workflow/main.py",
    ]);
  });

  for (const flavour of ["egg-link", "pep660", "egg"] as const) {
    test(`an editable or egg install (${flavour}) is refused and says pip install .`, async () => {
      const src = join(project, `src-${flavour}`);
      await cp(join(project, "src"), src, { recursive: true });
      const venv = join(project, `venv-${flavour}`);
      const python = await makeVenv(venv, true);
      if (flavour === "egg") {
        await run(python, ["setup.py", "-q", "install"], { cwd: src });
      } else {
        if (flavour === "pep660") {
          await writeFile(
            join(src, "pyproject.toml"),
            '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n',
          );
        }
        await run(join(venv, "bin/pip"), ["install", "-q", "--no-index", "--no-build-isolation", "-e", src]);
      }
      for (const startDir of [await tempDir("e"), src]) {
        await rejects(
          resolveProject({ entry: { kind: "module", name: "workflow.main" }, startDir, python, env }),
          /pip install \./,
        );
      }
    });
  }
});
