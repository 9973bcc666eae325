import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { planDelta } from "../../src/core/release/delta.js";
import { type ManifestFile, releaseIdOf } from "../../src/core/release/manifest.js";

const file = (path: string, sha: string, mode = 0o644, size = 10): ManifestFile => ({
  path,
  size,
  mode,
  sha256: sha.padEnd(64, "0"),
});

describe("planDelta", () => {
  test("cold: everything is sent", () => {
    const d = planDelta([file("a.py", "1"), file("b.py", "2")], undefined);
    assert.equal(d.send.length, 2);
    assert.equal(d.bytesToSend, 20);
    assert.deepEqual(d.reuse, []);
  });

  test("incremental: changed and new files are sent, unchanged reused, deleted listed", () => {
    const base = [file("a.py", "1"), file("b.py", "2"), file("gone.py", "3")];
    const d = planDelta([file("a.py", "1"), file("b.py", "9"), file("new.py", "4")], base);
    assert.deepEqual(
      d.send.map((f) => f.path),
      ["b.py", "new.py"],
    );
    assert.deepEqual(d.reuse, [{ file: file("a.py", "1"), from: "a.py" }]);
    assert.deepEqual(d.removed, ["gone.py"]);
  });

  test("a renamed or copied file is reused from where the worker has it", () => {
    const d = planDelta([file("pkg2/mod.py", "1"), file("pkg2/copy.py", "1")], [file("pkg/mod.py", "1")]);
    assert.deepEqual(d.send, []);
    assert.deepEqual(
      d.reuse.map((r) => [r.file.path, r.from]),
      [
        ["pkg2/mod.py", "pkg/mod.py"],
        ["pkg2/copy.py", "pkg/mod.py"],
      ],
    );
  });

  test("a mode change alone is sent again (the worker's links share modes)", () => {
    const d = planDelta([file("run.py", "1", 0o755)], [file("run.py", "1", 0o644)]);
    assert.equal(d.send.length, 1);
  });

  test("property: every target file is either sent or reused from identical content", () => {
    const arbFile = fc.record({
      path: fc.stringMatching(/^[a-c]{1,3}(\/[a-c]{1,3})?\.py$/),
      size: fc.nat(100),
      mode: fc.constantFrom(0o644, 0o755),
      sha256: fc.stringMatching(/^[0-3]$/),
    });
    const unique = (files: ManifestFile[]) => [...new Map(files.map((f) => [f.path, f])).values()];
    fc.assert(
      fc.property(fc.array(arbFile), fc.option(fc.array(arbFile)), (t, b) => {
        const target = unique(t);
        const base = b === null ? undefined : unique(b);
        const d = planDelta(target, base);
        assert.equal(d.send.length + d.reuse.length, target.length);
        const baseByPath = new Map((base ?? []).map((f) => [f.path, f]));
        for (const r of d.reuse) {
          const src = baseByPath.get(r.from)!;
          assert.deepEqual([src.sha256, src.size, src.mode], [r.file.sha256, r.file.size, r.file.mode]);
        }
        for (const p of d.removed) assert.ok(!target.some((f) => f.path === p));
      }),
      { numRuns: 300, seed: 42 },
    );
  });
});

describe("releaseIdOf", () => {
  test("depends on content and mode, not on order", () => {
    const a = [file("a.py", "1"), file("b.py", "2")];
    assert.equal(releaseIdOf(a), releaseIdOf([...a].reverse()));
    assert.notEqual(releaseIdOf(a), releaseIdOf([file("a.py", "1"), file("b.py", "3")]));
    assert.notEqual(releaseIdOf(a), releaseIdOf([file("a.py", "1", 0o755), file("b.py", "2")]));
    assert.match(releaseIdOf(a), /^[0-9a-f]{24}$/);
  });
});
