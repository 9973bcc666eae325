import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import type { ManifestFile } from "../../src/core/release/manifest.js";
import { countDifferingFiles, formatAge, releaseStatus } from "../../src/core/release/node-status.js";

const file = (path: string, sha = "a", size = 1, mode = 0o644): ManifestFile => ({
  path,
  sha256: sha.repeat(64).slice(0, 64),
  size,
  mode,
});

describe("releaseStatus", () => {
  const leader = { id: "L", files: [file("a.py"), file("b.py", "b")] };

  test("a node on the leader's release is in sync, with its age and kept releases", () => {
    const s = releaseStatus(
      {
        current: "L",
        releases: [
          { id: "L", time: 100 },
          { id: "X", time: 50 },
        ],
        manifest: undefined,
      },
      leader,
      160,
    );
    assert.deepEqual(s, { current: "L", ageSeconds: 60, inSync: true, filesDiffering: 0, releasesKept: 2 });
  });

  test("a node on another release counts the files that differ", () => {
    const manifest = [file("a.py"), file("b.py", "c"), file("old.py")];
    const s = releaseStatus({ current: "X", releases: [{ id: "X", time: 10 }], manifest }, leader, 10);
    assert.equal(s.inSync, false);
    assert.equal(s.filesDiffering, 2);
  });

  test("an empty node lacks every file; an unknown leader set leaves the comparison open", () => {
    assert.equal(
      releaseStatus({ current: null, releases: [], manifest: undefined }, leader, 0).filesDiffering,
      2,
    );
    const open = releaseStatus({ current: "X", releases: [], manifest: undefined }, undefined, 0);
    assert.equal(open.inSync, null);
    assert.equal(open.filesDiffering, null);
    assert.equal(open.ageSeconds, null);
  });
});

describe("countDifferingFiles", () => {
  test("mode and size count as differences", () => {
    assert.equal(countDifferingFiles([file("a", "a", 1, 0o755)], [file("a")]), 1);
    assert.equal(countDifferingFiles([file("a", "a", 2)], [file("a")]), 1);
  });

  test("is symmetric and zero exactly for equal sets", () => {
    const arbFile = fc.record({
      path: fc.constantFrom("a.py", "b.py", "p/c.py", "p/__init__.py"),
      sha256: fc.constantFrom("1", "2"),
      size: fc.constantFrom(1, 2),
      mode: fc.constantFrom(0o644, 0o755),
    });
    const arbSet = fc.uniqueArray(arbFile, { selector: (f) => f.path });
    fc.assert(
      fc.property(arbSet, arbSet, (x, y) => {
        assert.equal(countDifferingFiles(x, y), countDifferingFiles(y, x));
        assert.equal(countDifferingFiles(x, x), 0);
      }),
      { numRuns: 300 },
    );
  });
});

test("formatAge picks a readable unit", () => {
  assert.deepEqual([null, 5, 600, 10000, 400000].map(formatAge), ["-", "5s", "10m", "2h", "4d"]);
});
