import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  isValidModuleName,
  parseEntry,
  refusedRootReason,
  scriptNameProblem,
} from "../../src/core/module-set/entry-rules.js";
import { absoluteImports, addWithPrefixes, moduleNameOfFile } from "../../src/core/python/import-graph.js";

describe("entry rules", () => {
  test("parseEntry reads the inventory's project.entry", () => {
    assert.deepEqual(parseEntry("-m workflow.main"), { kind: "module", name: "workflow.main" });
    assert.deepEqual(parseEntry("-mworkflow.main"), { kind: "module", name: "workflow.main" });
    assert.deepEqual(parseEntry("userScript.py"), { kind: "script", path: "userScript.py" });
  });

  test("module names", () => {
    assert.ok(isValidModuleName("workflow.main"));
    assert.ok(isValidModuleName("données.étape"));
    for (const bad of ["", "a..b", ".a", "a.", "1a", "a-b", "a b"]) assert.ok(!isValidModuleName(bad), bad);
  });

  test("refused roots (rule 4)", () => {
    for (const root of [
      "/",
      "/home",
      "/tmp",
      "/tmp/",
      "/usr",
      "/etc",
      "/var",
      "/bin",
      "/sbin",
      "/dev",
      "/sys",
      "/run",
      "/proc",
    ]) {
      assert.ok(refusedRootReason(root, "/home/ada"), root);
    }
    assert.match(refusedRootReason("/home/ada", "/home/ada")!, /home directory/);
    assert.equal(refusedRootReason("/home/ada/project", "/home/ada"), undefined);
    assert.equal(refusedRootReason("/tmp/project", "/home/ada"), undefined);
  });

  test("script names (rule 3)", () => {
    const stdlib = new Set(["collections", "json"]);
    assert.match(scriptNameProblem("run", stdlib)!, /does not end in \.py/);
    assert.match(scriptNameProblem("collections.py", stdlib)!, /standard-library/);
    assert.match(scriptNameProblem("my-flow.py", stdlib)!, /my_flow\.py/);
    assert.equal(scriptNameProblem("userScript.py", stdlib), undefined);
  });
});

describe("import graph", () => {
  test("module names of files", () => {
    assert.equal(moduleNameOfFile("pkg/sub/mod.py"), "pkg.sub.mod");
    assert.equal(moduleNameOfFile("pkg/__init__.py"), "pkg");
    assert.equal(moduleNameOfFile("top.py"), "top");
  });

  test("relative imports become absolute; ones that climb too far are dropped", () => {
    const imports = [
      { module: "", level: 1, names: ["helper"], line: 1 },
      { module: "helper", level: 1, names: ["thing"], line: 2 },
      { module: "other", level: 2, names: [], line: 3 },
      { module: "x", level: 4, names: [], line: 4 },
      { module: "os.path", level: 0, names: [], line: 5 },
    ];
    assert.deepEqual(
      absoluteImports("pkg/sub/mod.py", imports).map((i) => [i.module, i.candidates, i.relative]),
      [
        ["pkg.sub", ["pkg.sub.helper"], true],
        ["pkg.sub.helper", ["pkg.sub.helper.thing"], true],
        ["pkg.other", [], true],
        ["os.path", [], false],
      ],
    );
    assert.deepEqual(absoluteImports("top.py", [{ module: "x", level: 1, names: [], line: 1 }]), []);
  });

  test("prefixes", () => {
    const s = new Set<string>();
    addWithPrefixes("a.b.c", s);
    assert.deepEqual([...s].sort(), ["a", "a.b", "a.b.c"]);
  });
});
