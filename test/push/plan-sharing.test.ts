import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ManifestFile } from "../../src/core/release/manifest.js";
import { planFor, type Release } from "../../src/push/node-push.js";

/** Workers on one base share its plan; one worker's failure to get the base's manifest is not shared. */
describe("plans by base release", () => {
  const file = (path: string, sha256: string): ManifestFile => ({ path, size: 1, mode: 0o644, sha256 });
  const base = [file("a.py", "1"), file("b.py", "2")];
  const release = (): Release => ({ id: "r2", project: "p", files: [file("a.py", "1"), file("b.py", "3")] });

  test("workers on the same base ask for its manifest once and share the plan", async () => {
    const r = release();
    let asked = 0;
    const load = async () => {
      asked++;
      return base;
    };
    const [one, two] = await Promise.all([planFor(r, "r1", load), planFor(r, "r1", load)]);
    assert.equal(asked, 1);
    assert.equal(one, two);
    assert.deepEqual(
      one?.delta.send.map((f) => f.path),
      ["b.py"],
    );
  });

  test("a worker that could not get the base's manifest (an error, or none) leaves the next worker to ask", async () => {
    const r = release();
    await assert.rejects(
      planFor(r, "r1", async () => {
        throw new Error("connection lost");
      }),
      /connection lost/,
    );
    assert.equal(await planFor(r, "r1", async () => undefined), undefined);
    const plan = await planFor(r, "r1", async () => base);
    assert.deepEqual(
      plan?.delta.send.map((f) => f.path),
      ["b.py"],
    );
  });
});
