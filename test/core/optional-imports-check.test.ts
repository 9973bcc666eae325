import assert from "node:assert/strict";
import { test } from "node:test";
import type { ThirdPartyModule } from "../../src/core/python/import-classification.js";
import { judgeNode, type NodeCheckFacts, nodePasses } from "../../src/core/readiness/node-checks.js";

const module = (name: string, extra: Partial<ThirdPartyModule> = {}): ThirdPartyModule => ({
  module: name,
  dist: name,
  version: "1.0",
  native: false,
  location: "system",
  path: "/usr/lib/python3/dist-packages",
  optional: false,
  ...extra,
});

function node(modules: NonNullable<NodeCheckFacts["imports"]>["modules"]): NodeCheckFacts {
  return {
    venvPython: "/v/bin/python",
    venvIsVenv: true,
    pyvenvCfg: { path: "/v/pyvenv.cfg", line: 3, value: "true" },
    imports: {
      python: "3.11.2",
      venvSite: "/v/lib",
      toil: { found: true, version: "5.9.0", origin: "/usr/x" },
      modules,
    },
    deploy: { path: "/d/p", existing: "/d", writable: true, free: 1e12 },
    pth: { path: "/v/lib/x.pth", expected: "/d/p", serves: null },
    current: null,
    releases: [],
  };
}

const leader = (thirdParty: ThirdPartyModule[]) => ({
  venv: "/v",
  pythonVersion: "3.11.2",
  toilVersion: "5.9.0",
  thirdParty,
  releaseId: "abcdef0123456789",
  setBytes: 10,
  topLevel: [],
});

test("a missing optional import (try/except ImportError) is a warning, never a reason to refuse the node", () => {
  const results = judgeNode(
    node({ azure: { found: false }, numpy: { found: true, version: "2.0" } }),
    leader([module("azure", { optional: true }), module("numpy", { native: true, optional: true })]),
  );
  const imports = results.find((r) => r.id === "imports")!;
  assert.equal(imports.status, "warn");
  assert.match(imports.detail, /azure is missing \(an optional import/);
  assert.ok(nodePasses(results));
});

test("a missing required import fails the node", () => {
  const results = judgeNode(node({ azure: { found: false } }), leader([module("azure")]));
  assert.equal(results.find((r) => r.id === "imports")!.status, "fail");
  assert.equal(nodePasses(results), false);
});
