import assert from "node:assert/strict";
import { test } from "node:test";
import { originConflict } from "../../src/core/release/project-origin.js";

const ours = { host: "leader1", root: "/home/a/neo/src" };

test("the same leader and root, or nothing recorded yet, is no conflict", () => {
  assert.equal(originConflict({ ...ours }, ours, "neo", "w1"), undefined);
  assert.equal(originConflict(null, ours, "neo", "w1"), undefined);
  assert.equal(originConflict("garbage", ours, "neo", "w1"), undefined);
});

test("another root or another leader is another project: the message names both and the ways out", () => {
  const message = originConflict({ host: "leader1", root: "/home/b/other/src" }, ours, "neo", "w1");
  assert.match(
    message ?? "",
    /w1 holds another project named `neo`, pushed from leader1:\/home\/b\/other\/src/,
  );
  assert.match(message ?? "", /project\.name.*--replace/);
  assert.ok(originConflict({ host: "laptop", root: ours.root }, ours, "neo", "w1"));
});
