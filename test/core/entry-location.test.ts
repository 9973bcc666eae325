import assert from "node:assert/strict";
import { test } from "node:test";
import {
  editableInstallProblem,
  moduleEntryPlace,
  scriptShadowedProblem,
} from "../../src/core/module-set/entry-location.js";
import {
  importWarnings,
  LARGE_FILE_BYTES,
  largeFileWarnings,
  rootInitWarning,
} from "../../src/core/module-set/resolution-warnings.js";
import type { PathEntryKind } from "../../src/core/python/interpreter-facts.js";

const at = (kind: PathEntryKind, path: string) => ({
  entry: { path, kind, names: {} },
  kind: "package" as const,
});

test("where the top-level name is found decides the mode and the root", () => {
  for (const kind of ["start", "pythonpath", "pth"] as const)
    assert.deepEqual(moduleEntryPlace("workflow", "workflow.main", at(kind, "/p"), []), {
      mode: "package",
      root: "/p",
    });
  assert.deepEqual(moduleEntryPlace("workflow", "workflow.main", at("venv-site", "/v/site"), []), {
    mode: "installed",
    root: "/v/site",
  });
});

test("nothing to ship from the standard library or another site-packages; not found says where it looked", () => {
  const problem = (place: ReturnType<typeof moduleEntryPlace>) => ("problem" in place ? place.problem : "");
  assert.match(
    problem(moduleEntryPlace("json", "json.tool", at("stdlib", "/usr/lib"), [])),
    /standard-library module/,
  );
  assert.match(
    problem(moduleEntryPlace("toil", "toil.worker", at("system-site", "/usr/lib/python3/dist-packages"), [])),
    /dist-packages \(the system's or the user's site-packages\).*nothing to ship/,
  );
  assert.match(
    problem(moduleEntryPlace("flow", "flow.main", undefined, [{ path: "/w", kind: "start" }])),
    /No module named `flow` .*Looked in:\n {2}\/w \(start\)/,
  );
});

test("an editable install names its kind and says pip install .", () => {
  assert.match(
    editableInstallProblem("w", { kind: "pep660", file: "/x.pth" }),
    /editable install \(pep660\) \(\/x\.pth\)/,
  );
  assert.match(
    editableInstallProblem("w", { kind: "egg", file: "/w.egg" }),
    /installed as an \.egg .*pip install \./,
  );
});

test("a script is shadowed only by a module of its name found in another directory", () => {
  assert.equal(scriptShadowedProblem("numpy.py", "numpy", "/p", undefined), undefined);
  assert.equal(scriptShadowedProblem("flow.py", "flow", "/p", at("start", "/p")), undefined);
  assert.match(
    scriptShadowedProblem("numpy.py", "numpy", "/p", at("system-site", "/s")) ?? "",
    /found in \/s/,
  );
});

test("warnings: large files by their root when there are several, and one per import finding in order", () => {
  const big = LARGE_FILE_BYTES + 1;
  assert.deepEqual(largeFileWarnings([{ path: "a.py", root: 0, size: LARGE_FILE_BYTES }], ["/r"]), []);
  assert.match(
    largeFileWarnings([{ path: "d.bin", root: 1, size: big }], ["/r", "/s"])[0]!,
    /^\/s\/d\.bin is 10\.0 MiB/,
  );
  assert.match(largeFileWarnings([{ path: "d.bin", root: 0, size: big }], ["/r"])[0]!, /^d\.bin is/);
  assert.match(rootInitWarning("/r"), /^\/r\/__init__\.py is ignored/);
  const warnings = importWarnings(
    {
      native: [{ dist: "numpy", version: "1.26", location: "venv", modules: ["numpy"], evidence: "a .so" }],
      unresolved: [{ file: "f.py", line: 3, module: "nope" }],
      syntaxErrors: [{ file: "g.py", line: 1, message: "bad" }],
      notShipped: [{ file: "h.py", line: 2, module: "near", path: "/start" }],
    },
    "3.11.2",
  );
  assert.equal(warnings.length, 4);
  assert.match(warnings[0]!, /^numpy 1\.26 contains compiled code \(a \.so\)/);
  assert.match(warnings[1]!, /^f\.py:3: `import nope` cannot be resolved/);
  assert.match(warnings[2]!, /^g\.py:1: does not compile with the leader's Python 3\.11\.2 \(bad\)/);
  assert.match(
    warnings[3]!,
    /^h\.py:2: `import near` is found on the leader, not shipped: only in the start directory \/start/,
  );
});
