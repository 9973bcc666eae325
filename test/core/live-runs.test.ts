import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  batchesBySize,
  protectedReleases,
  releaseTopLevel,
  runReleasesLacking,
  runsStatus,
} from "../../src/core/release/live-runs.js";

const run = (release: string, since: number, pid = 1) => ({ release, since, pid });

describe("live workflow runs", () => {
  test("a worker keeps what the leader pinned and what its live runs use, each once", () => {
    assert.deepEqual(protectedReleases({ pinned: ["b", "a"], runs: [run("c", 1), run("a", 2)] }), [
      "a",
      "b",
      "c",
    ]);
    assert.deepEqual(protectedReleases({ pinned: [], runs: [] }), []);
  });

  test("a node gets the live runs' releases it lacks, oldest run first, never the one being published", () => {
    const runs = [run("new", 30), run("old", 10), run("held", 20), run("old", 40), run("pushing", 5)];
    assert.deepEqual(runReleasesLacking(runs, [{ id: "held" }], "pushing"), ["old", "new"]);
    assert.deepEqual(runReleasesLacking(runs, [{ id: "held" }, { id: "old" }, { id: "new" }], null), [
      "pushing",
    ]);
    assert.deepEqual(runReleasesLacking([], [], null), []);
  });

  test("a release's top-level names, of every root of a release of several", () => {
    const f = (path: string) => ({ path, size: 1, mode: 0o644, sha256: "x" });
    assert.deepEqual(releaseTopLevel([f("wf/main.py"), f("util.py"), f("README.txt"), f("wf/a/b.py")]), [
      "util",
      "wf",
    ]);
    assert.deepEqual(
      releaseTopLevel([f(".roots/0/wf/main.py"), f(".roots/1/lib.py"), f(".roots/1/x/y.py")]),
      ["lib", "wf", "x"],
    );
  });

  test("status: each run with the nodes that lack its release and those not asked", () => {
    const nodes = [
      { node: "leader", releases: ["r1", "r2"] },
      { node: "w1", releases: ["r2"] },
      { node: "w2" },
    ];
    assert.deepEqual(runsStatus([run("r2", 20), run("r1", 10)], nodes), [
      { ...run("r1", 10), lacking: ["w1"], unknown: ["w2"] },
      { ...run("r2", 20), lacking: [], unknown: ["w2"] },
    ]);
  });

  test("exports are asked for in batches of bounded size; a file larger than the bound goes alone", () => {
    const s = (size: number) => ({ size });
    assert.deepEqual(batchesBySize([s(4), s(4), s(4), s(20), s(1)], 10), [
      [s(4), s(4)],
      [s(4)],
      [s(20)],
      [s(1)],
    ]);
    assert.deepEqual(batchesBySize([], 10), []);
  });
});
