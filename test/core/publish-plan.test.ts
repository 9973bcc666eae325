import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { ManifestFile } from "../../src/core/release/manifest.js";
import { planPublish } from "../../src/core/release/publish-plan.js";

const file = (path: string, sha: string, mode = 0o644, size = 10): ManifestFile => ({
  path,
  size,
  mode,
  sha256: sha.padEnd(64, "0"),
});

/** What the worker agent does with a plan (op_prepare and op_upload), as a model. */
function applyOnWorker(
  base: readonly ManifestFile[],
  plan: ReturnType<typeof planPublish>,
  sent: ManifestFile[],
) {
  const baseByPath = new Map(base.map((f) => [f.path, f]));
  const target = new Map(baseByPath);
  for (const p of plan.remove) target.delete(p);
  const upserted = new Set<string>();
  for (const [path, size, mode, sha256] of plan.upsert) {
    target.set(path, { path, size, mode, sha256 });
    upserted.add(path);
  }
  const reuse = new Map(plan.reuse);
  const sentPaths = new Set(sent.map((f) => f.path));
  for (const [path, f] of target) {
    if (upserted.has(path) && !reuse.has(path)) {
      assert.ok(sentPaths.has(path), `${path} is neither in the base nor sent`);
      continue;
    }
    const from = baseByPath.get(reuse.get(path) ?? path);
    assert.ok(from, `${path} is linked from nothing`);
    assert.deepEqual(
      [from.size, from.mode, from.sha256],
      [f.size, f.mode, f.sha256],
      `${path} linked from other content`,
    );
  }
  return [...target.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

describe("planPublish", () => {
  test("an unchanged file at the same path needs no entry; a moved one names where it was", () => {
    const base = [file("a.py", "1"), file("pkg/old.py", "2"), file("gone.py", "3")];
    const plan = planPublish([file("a.py", "1"), file("pkg2/new.py", "2"), file("b.py", "9")], base);
    assert.deepEqual(plan.upsert, [
      ["b.py", 10, 0o644, "9".padEnd(64, "0")],
      ["pkg2/new.py", 10, 0o644, "2".padEnd(64, "0")],
    ]);
    assert.deepEqual(plan.reuse, [["pkg2/new.py", "pkg/old.py"]]);
    assert.deepEqual(plan.remove, ["pkg/old.py", "gone.py"]);
    assert.deepEqual(
      plan.delta.send.map((f) => f.path),
      ["b.py"],
    );
  });

  test("cold: every file is upserted and sent", () => {
    const plan = planPublish([file("a.py", "1"), file("b.py", "2")], undefined);
    assert.equal(plan.upsert.length, 2);
    assert.deepEqual(plan.reuse, []);
    assert.deepEqual(plan.remove, []);
  });

  test("property: the worker applying the plan to its base ends with exactly the target", () => {
    const arbFile = fc.record({
      path: fc.stringMatching(/^[a-c]{1,3}(\/[a-c]{1,3})?\.py$/),
      size: fc.nat(100),
      mode: fc.constantFrom(0o644, 0o755),
      sha256: fc.stringMatching(/^[0-3]$/),
    });
    const unique = (files: ManifestFile[]) =>
      [...new Map(files.map((f) => [f.path, f])).values()].sort((a, b) => (a.path < b.path ? -1 : 1));
    fc.assert(
      fc.property(fc.array(arbFile), fc.array(arbFile), (t, b) => {
        const target = unique(t);
        const base = unique(b);
        const plan = planPublish(target, base);
        const tuples = (files: ManifestFile[]) => files.map((f) => [f.path, f.size, f.mode, f.sha256]);
        assert.deepEqual(tuples(applyOnWorker(base, plan, plan.delta.send)), tuples(target));
      }),
      { numRuns: 500, seed: 7 },
    );
  });
});
