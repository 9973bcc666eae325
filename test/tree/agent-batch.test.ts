import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { WorkerRequest } from "../../src/core/protocol/worker-protocol-types.js";
import { batchKey } from "../../src/tree/agent-batch.js";

/** Which nodes share one ClusterShell run (one stdin, sent once per gateway): batchKey equal. */
describe("nodes share a run when their batches are the same", () => {
  const files = Array.from({ length: 100 }, (_, i) => ({
    path: `pkg/m${i}.py`,
    size: i,
    mode: 0o644,
    sha256: "a",
  }));
  const prepare = (upsert: unknown[], release = "r1") =>
    ({ op: "prepare", release, base: "r0", upsert, remove: [], reuse: [] }) as unknown as WorkerRequest;
  const archive = Buffer.from("archive");

  test("the same plan's arrays and archive, in requests built apart: one run", () => {
    const a = batchKey("cmd", [{ request: prepare(files) }, { request: { op: "upload" }, payload: archive }]);
    const b = batchKey("cmd", [{ request: prepare(files) }, { request: { op: "upload" }, payload: archive }]);
    assert.equal(a, b);
  });

  test("another command, release or archive: another run", () => {
    const key = batchKey("cmd", [
      { request: prepare(files) },
      { request: { op: "upload" }, payload: archive },
    ]);
    assert.notEqual(
      batchKey("other", [{ request: prepare(files) }]),
      batchKey("cmd", [{ request: prepare(files) }]),
    );
    assert.notEqual(
      batchKey("cmd", [{ request: prepare(files, "r2") }, { request: { op: "upload" }, payload: archive }]),
      key,
    );
    assert.notEqual(
      batchKey("cmd", [
        { request: prepare(files) },
        { request: { op: "upload" }, payload: Buffer.from("archive") },
      ]),
      key,
      "equal bytes in another buffer: compared by identity, never read",
    );
  });

  test("short arrays count by content, long ones by identity (equal plans built twice only share less)", () => {
    const few = files.slice(0, 3);
    assert.equal(
      batchKey("cmd", [{ request: prepare([...few]) }]),
      batchKey("cmd", [{ request: prepare([...few]) }]),
    );
    assert.notEqual(
      batchKey("cmd", [{ request: prepare(few) }]),
      batchKey("cmd", [{ request: prepare(files.slice(0, 4)) }]),
    );
    assert.notEqual(
      batchKey("cmd", [{ request: prepare([...files]) }]),
      batchKey("cmd", [{ request: prepare([...files]) }]),
    );
  });
});
