import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { editableInstallOf, selectInstalledSet } from "../../src/core/module-set/installed-set.js";
import {
  classifyImports,
  isStandardLibrary,
  locateTopLevel,
} from "../../src/core/python/import-classification.js";
import type { DistributionFacts, InterpreterFacts } from "../../src/core/python/interpreter-facts.js";

const SITE = "/venv/lib/python3.11/site-packages";
const SYS = "/usr/lib/python3/dist-packages";

function dist(
  name: string,
  siteDir: string,
  files: string[] | null,
  extra: Partial<DistributionFacts> = {},
): DistributionFacts {
  const tops = new Set<string>();
  for (const f of files ?? []) {
    const first = f.split("/")[0]!;
    if (f.includes("/") && !first.includes(".")) tops.add(first);
    else if (!f.includes("/") && f.endsWith(".py")) tops.add(f.slice(0, -3));
  }
  return {
    name,
    version: "1.0",
    metaDir: `${name}-1.0.dist-info`,
    siteDir,
    files,
    hasFileList: files !== null,
    compiledFiles: (files ?? []).filter((f) => f.endsWith(".so")),
    topLevel: [],
    fileTopLevel: [...tops],
    editable: false,
    sourceUrl: null,
    installer: "pip",
    ...extra,
  };
}

function facts(over: Partial<InterpreterFacts> = {}): InterpreterFacts {
  return {
    executable: "/venv/bin/python",
    version: "3.11.2",
    prefix: "/venv",
    basePrefix: "/usr",
    venvSite: SITE,
    systemSites: [SYS],
    userSite: null,
    startDir: "/work/p",
    path: [
      { path: "/work/p", kind: "start", names: { workflow: "package" } },
      { path: "/usr/lib/python3.11", kind: "stdlib", names: { os: "module", json: "package" } },
      {
        path: SITE,
        kind: "venv-site",
        names: {
          workflow: "package",
          util: "package",
          handmade: "module",
          pip: "package",
          fastext: "extension",
          _distutils_hack: "package",
        },
      },
      { path: SYS, kind: "system-site", names: { numpy: "package", toil: "package", six: "module" } },
    ],
    stdlibNames: ["os", "json", "sys"],
    distributions: [
      dist("my-project", SITE, [
        "workflow/__init__.py",
        "workflow/main.py",
        "workflow/__pycache__/main.cpython-311.pyc",
        "my_project-1.0.dist-info/METADATA",
        "my_project-1.0.dist-info/RECORD",
        "../../../bin/run-flow",
      ]),
      dist("pip", SITE, ["pip/__init__.py"]),
      dist("setuptools", SITE, [
        "setuptools/__init__.py",
        "pkg_resources/__init__.py",
        "_distutils_hack/__init__.py",
        "distutils-precedence.pth",
      ]),
      dist("fastlib", SITE, ["fastlib/__init__.py", "fastlib/_speed.cpython-311-x86_64-linux-gnu.so"]),
      dist("numpy", SYS, null, { topLevel: ["numpy"] }),
      dist("toil", SYS, null, { topLevel: ["toil"] }),
    ],
    installs: [],
    ...over,
  };
}

describe("selectInstalledSet (rule 5)", () => {
  test("pure distributions with their metadata, hand-copied modules; never packaging tools; native listed", () => {
    const s = selectInstalledSet(facts());
    assert.deepEqual(s.distFiles, [
      "my_project-1.0.dist-info/METADATA",
      "my_project-1.0.dist-info/RECORD",
      "workflow/__init__.py",
      "workflow/main.py",
    ]);
    assert.deepEqual(s.orphanPackages, ["util"]);
    assert.deepEqual(s.orphanModules, ["handmade"]);
    assert.deepEqual(s.native.map((n) => n.dist).sort(), ["fastext", "fastlib"]);
    assert.deepEqual(
      s.shippedDists.map((d) => d.name),
      ["my-project"],
    );
  });

  test("a distribution without a file list is reported, not guessed", () => {
    const f = facts();
    f.distributions.push(dist("oldstyle", SITE, null));
    assert.ok(selectInstalledSet(f).warnings.some((w) => w.includes("oldstyle")));
  });

  test("editable installs of every flavour are found", () => {
    const f = facts({
      installs: [
        {
          kind: "editable-finder",
          file: `${SITE}/__editable___p_finder.py`,
          paths: ["/src/p/workflow"],
          topLevel: ["workflow"],
        },
        { kind: "egg-link", file: `${SITE}/p.egg-link`, paths: ["/src/q"], topLevel: [] },
        { kind: "egg", file: `${SITE}/r.egg`, paths: [`${SITE}/r.egg`], topLevel: ["rmod"] },
      ],
    });
    assert.equal(editableInstallOf("workflow", "/work/p", f)?.kind, "editable-finder");
    assert.equal(editableInstallOf("qmod", "/src/q", f)?.kind, "egg-link");
    assert.equal(editableInstallOf("qmod", "/src/q/src", f)?.kind, "egg-link");
    assert.equal(editableInstallOf("rmod", undefined, f)?.kind, "egg");
    assert.equal(editableInstallOf("other", "/work/p", f), undefined);
    const direct = facts();
    direct.distributions.push(
      dist("e", SITE, [], { editable: true, sourceUrl: "file:///src/e", topLevel: ["emod"] }),
    );
    assert.ok(editableInstallOf("emod", undefined, direct));
    assert.ok(editableInstallOf("x", "/src/e", direct));
  });
});

describe("classifyImports (rule 6)", () => {
  test("in-set, stdlib, third-party with dist and location, unresolved with file and line", () => {
    const f = facts();
    const sites = [
      { module: "workflow", file: "a.py", line: 1 },
      { module: "os", file: "a.py", line: 2 },
      { module: "__future__", file: "a.py", line: 3 },
      { module: "numpy", file: "a.py", line: 4 },
      { module: "toil", file: "b.py", line: 1 },
      { module: "six", file: "b.py", line: 2 },
      { module: "nowhere", file: "b.py", line: 9 },
      { module: "nowhere", file: "c.py", line: 1 },
    ];
    const c = classifyImports({
      sites,
      inSet: new Set(["workflow"]),
      facts: f,
      hasCompiledCode: (name) => name === "numpy",
    });
    assert.deepEqual(
      c.thirdParty.map((t) => [t.module, t.dist, t.native, t.location]),
      [
        ["numpy", "numpy", true, "system"],
        ["six", null, false, "system"],
        ["toil", "toil", false, "system"],
      ],
    );
    assert.deepEqual(c.unresolved, [{ module: "nowhere", file: "b.py", line: 9 }]);
  });

  test("an import guarded everywhere by except ImportError is optional: never unresolved, flagged when third-party", () => {
    const c = classifyImports({
      sites: [
        { module: "azure", file: "a.py", line: 3, optional: true },
        { module: "six", file: "a.py", line: 4, optional: true },
        { module: "numpy", file: "a.py", line: 5, optional: true },
        { module: "numpy", file: "b.py", line: 1 },
        { module: "gone", file: "b.py", line: 2, optional: true },
        { module: "gone", file: "c.py", line: 7 },
      ],
      inSet: new Set(),
      facts: facts(),
      hasCompiledCode: () => false,
    });
    assert.deepEqual(c.unresolved, [{ module: "gone", file: "c.py", line: 7 }]);
    assert.deepEqual(c.optional, [
      { module: "azure", file: "a.py", line: 3, found: false },
      { module: "six", file: "a.py", line: 4, found: true },
    ]);
    assert.deepEqual(
      c.thirdParty.map((t) => [t.module, t.optional]),
      [
        ["numpy", false],
        ["six", true],
      ],
    );
  });

  test("package mode: a module found only in the start directory is found on the leader, not shipped", () => {
    const f = facts();
    f.path[0]!.names = { version: "module" };
    const sites = [{ module: "version", file: "wf/main.py", line: 2 }];
    const c = classifyImports({
      sites,
      inSet: new Set(),
      facts: f,
      hasCompiledCode: () => false,
      startDirOnPath: true,
    });
    assert.deepEqual(c.notShipped, [{ module: "version", file: "wf/main.py", line: 2, path: "/work/p" }]);
    assert.deepEqual(c.unresolved, []);
    // In script mode python does not put the start directory on the path: truly unresolved.
    const script = classifyImports({ sites, inSet: new Set(), facts: f, hasCompiledCode: () => false });
    assert.deepEqual(script.unresolved, [{ module: "version", file: "wf/main.py", line: 2 }]);
  });

  test("names in the standard library's directory count as standard library, listed or not (test)", () => {
    const f = facts();
    f.path[1]!.names = { ...f.path[1]!.names, test: "package" };
    assert.equal(isStandardLibrary("test", f), true);
    assert.equal(isStandardLibrary("workflow", f), false);
  });

  test("a regular package later on the path wins over an earlier namespace portion", () => {
    const f = facts();
    f.path.splice(1, 0, { path: "/extra", kind: "pythonpath", names: { numpy: "namespace" } });
    assert.equal(locateTopLevel("numpy", f)?.entry.path, SYS);
  });
});
