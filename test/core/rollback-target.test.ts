import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { findRelease, rollbackTarget } from "../../src/core/release/rollback-target.js";

const kept = [
  { id: "cccc1111", time: 30 },
  { id: "bbbb2222", time: 20 },
  { id: "aaaa3333", time: 10 },
];

describe("rollbackTarget", () => {
  test("goes back to the release that was current before", () => {
    assert.deepEqual(rollbackTarget("cccc1111", kept), { kind: "switch", release: "bbbb2222" });
    assert.deepEqual(rollbackTarget("bbbb2222", kept), { kind: "switch", release: "aaaa3333" });
  });

  test("with nothing older, or nothing pushed, the node is left alone with a reason", () => {
    assert.equal(rollbackTarget("aaaa3333", kept).kind, "missing");
    assert.equal(rollbackTarget(null, kept).kind, "missing");
    assert.equal(rollbackTarget("dddd", kept).kind, "missing");
  });

  test("--to takes a full id or a unique prefix; a missing one names what the node keeps", () => {
    assert.deepEqual(rollbackTarget("cccc1111", kept, "aaaa3333"), { kind: "switch", release: "aaaa3333" });
    assert.deepEqual(rollbackTarget("cccc1111", kept, "bbbb"), { kind: "switch", release: "bbbb2222" });
    assert.deepEqual(rollbackTarget("cccc1111", kept, "cccc"), { kind: "already", release: "cccc1111" });
    const missing = rollbackTarget("cccc1111", kept, "eeee9999");
    assert.equal(missing.kind, "missing");
    assert.match(missing.kind === "missing" ? missing.reason : "", /keeps: cccc1111, bbbb2222, aaaa3333/);
    assert.equal(rollbackTarget("cccc1111", kept, "c").kind, "missing");
  });

  test("an ambiguous prefix is refused", () => {
    const found = findRelease(
      [
        { id: "abcd1", time: 1 },
        { id: "abcd2", time: 2 },
      ],
      "abcd",
    );
    assert.ok("problem" in found && /ambiguous/.test(found.problem));
  });

  test("the target is always a kept release other than current, and older than it", () => {
    const arb = fc.uniqueArray(
      fc.record({ id: fc.stringMatching(/^[0-9a-f]{6}$/), time: fc.integer({ min: 0, max: 5 }) }),
      {
        selector: (r) => r.id,
        minLength: 1,
      },
    );
    fc.assert(
      fc.property(arb, fc.nat(), (releases, pick) => {
        const current = releases[pick % releases.length]!;
        const t = rollbackTarget(current.id, releases);
        if (t.kind !== "switch") return;
        const target = releases.find((r) => r.id === t.release)!;
        assert.notEqual(target.id, current.id);
        assert.ok(target.time <= current.time);
      }),
      { numRuns: 500 },
    );
  });
});
