import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { holdsLockAfter, leavesAgentStale, WORKER_OPS } from "../../src/core/protocol/worker-protocol.js";
import { TIMEOUTS } from "../../src/transport/worker-client.js";

/** The TypeScript side of the worker protocol's declaration (src/core/protocol/worker-protocol.json). */

test("the protocol's TypeScript types are those its declaration gives", () => {
  const run = spawnSync(process.execPath, [join(process.cwd(), "bin", "protocol-types.mjs"), "--check"], {
    encoding: "utf8",
  });
  assert.equal(run.status, 0, run.stderr);
});

test("the client has a timeout for every declared op", () => {
  assert.deepEqual(Object.keys(TIMEOUTS).sort(), [...WORKER_OPS].sort());
});

test("only a ready prepare leaves the lock held, and only fix leaves the agent stale", () => {
  assert.equal(holdsLockAfter("prepare", { ok: true, status: "ready" }), true);
  assert.equal(holdsLockAfter("prepare", { ok: true, status: "switched" }), false);
  assert.equal(holdsLockAfter("prepare", { ok: false, status: "ready" }), false);
  assert.equal(holdsLockAfter("upload", { ok: true, status: "ready" }), false);
  assert.deepEqual(
    WORKER_OPS.filter((op) => leavesAgentStale(op)),
    ["fix"],
  );
});
