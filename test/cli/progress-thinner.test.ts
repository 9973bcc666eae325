import assert from "node:assert/strict";
import { test } from "node:test";
import { progressThinner } from "../../src/cli/progress-thinner.js";
import type { PushEvent } from "../../src/push/push.js";

const sending = (node: string, bytesSent: number): PushEvent => ({
  type: "node-progress",
  node,
  phase: "sending",
  bytesSent,
  bytesTotal: 1000,
  files: 3,
});

test("byte progress is kept once per interval per worker, with the first and the last always kept", () => {
  let clock = 0;
  const keep = progressThinner(250, () => clock);
  const kept: string[] = [];
  const offer = (event: PushEvent, at: number) => {
    clock = at;
    if (keep(event))
      kept.push(
        `${"node" in event ? event.node : "-"}:${event.type === "node-progress" && event.phase === "sending" ? event.bytesSent : event.type}`,
      );
  };
  offer({ type: "node-start", node: "w1" }, 0);
  offer(sending("w1", 0), 0);
  offer(sending("w2", 0), 10);
  offer(sending("w1", 100), 100);
  offer(sending("w1", 200), 249);
  offer(sending("w1", 300), 250);
  offer(sending("w2", 500), 260);
  offer(sending("w1", 1000), 260);
  offer({ type: "node-progress", node: "w1", phase: "publishing" }, 261);
  offer(
    {
      type: "node-done",
      node: "w1",
      result: {
        status: "published",
        release: "r",
        previous: null,
        filesSent: 3,
        bytesSent: 1000,
        filesLinked: 0,
        filesRemoved: 0,
      },
      ms: 300,
    },
    300,
  );
  assert.deepEqual(kept, [
    "w1:node-start",
    "w1:0",
    "w2:0",
    "w1:300",
    "w2:500",
    "w1:1000",
    "w1:node-progress",
    "w1:node-done",
  ]);
});
