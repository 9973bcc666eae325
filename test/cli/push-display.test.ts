import assert from "node:assert/strict";
import { test } from "node:test";
import { type NodeState, nextNodeState, pushProgressLines } from "../../src/cli/push-display.js";
import type { NodePushResult } from "../../src/push/node-push.js";
import type { PushEvent } from "../../src/push/push.js";

const published: NodePushResult = {
  status: "published",
  release: "r1",
  previous: null,
  filesSent: 12,
  bytesSent: 3 * 1024 * 1024,
  filesLinked: 0,
  filesRemoved: 0,
};

test("a worker's state follows its events, and events of no node change nothing", () => {
  const steps: PushEvent[] = [
    { type: "release", release: "r1", files: 12, bytes: 100 },
    { type: "node-start", node: "w1" },
    { type: "node-progress", node: "w1", phase: "checking" },
    { type: "node-progress", node: "w1", phase: "preparing" },
    { type: "node-progress", node: "w1", phase: "sending", bytesSent: 512, bytesTotal: 2048, files: 3 },
    { type: "node-progress", node: "w1", phase: "publishing" },
    { type: "node-done", node: "w1", result: published, ms: 1500 },
  ];
  let state: NodeState | undefined = { state: "queued" };
  const seen: string[] = [];
  for (const event of steps) {
    state = nextNodeState(state, event);
    seen.push(state!.state);
  }
  assert.deepEqual(seen, ["queued", "connecting", "checking", "preparing", "sending", "publishing", "done"]);
  assert.deepEqual(nextNodeState(undefined, { type: "node-failed", node: "w1", error: "refused", ms: 3 }), {
    state: "failed",
    error: "refused",
  });
});

test("up to 20 workers: one aligned line each with state, bytes and files", () => {
  const nodes = new Map<string, NodeState>([
    ["w1", { state: "sending", bytesSent: 1024 * 1024, bytesTotal: 4 * 1024 * 1024, files: 7 }],
    ["worker-long", { state: "queued" }],
    ["w3", { state: "done", result: published, ms: 1234 }],
    ["w4", { state: "failed", error: "connection refused\nsecond line" }],
    ["w5", { state: "done", result: { ...published, status: "unchanged" }, ms: 200 }],
  ]);
  assert.deepEqual(pushProgressLines(nodes, 200), [
    "w1           sending     1.0 MiB of 4.0 MiB (25%), 7 file(s)",
    "worker-long  queued",
    "w3           done        12 file(s), 3.0 MiB in 1.2s",
    "w4           failed      connection refused",
    "w5           done        already current in 0.2s",
  ]);
});

test("lines never exceed the terminal's width", () => {
  const nodes = new Map<string, NodeState>([["w1", { state: "failed", error: "x".repeat(500) }]]);
  for (const width of [20, 80, 200]) {
    for (const line of pushProgressLines(nodes, width)) assert.ok(line.length < width, `${line.length}`);
  }
});

test("past 20 workers: counts per state, bytes in flight and the first failures", () => {
  const nodes = new Map<string, NodeState>();
  for (let i = 0; i < 30; i++) {
    const name = `w${i}`;
    if (i < 10) nodes.set(name, { state: "done", result: published, ms: 1000 });
    else if (i < 12) nodes.set(name, { state: "sending", bytesSent: 1024, bytesTotal: 4096, files: 2 });
    else if (i < 19) nodes.set(name, { state: "failed", error: `refused ${i}` });
    else nodes.set(name, { state: "queued" });
  }
  const lines = pushProgressLines(nodes, 200);
  assert.equal(lines[0], "30 workers: 10 done, 2 sending, 11 queued, 7 failed; 2.0 KiB of 8.0 KiB in flight");
  assert.deepEqual(lines.slice(1), [
    "  w12: refused 12",
    "  w13: refused 13",
    "  w14: refused 14",
    "  w15: refused 15",
    "  w16: refused 16",
  ]);
});
