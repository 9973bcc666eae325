import assert from "node:assert/strict";
import { test } from "node:test";
import { pushSummary } from "../../src/cli/push-command.js";
import type { NodeOutcome } from "../../src/push/push.js";

const result = {
  release: "r2",
  previous: "r1",
  filesSent: 0,
  bytesSent: 0,
  filesLinked: 0,
  filesRemoved: 0,
};

test("the summary: one line per worker, the failures named, the count last", () => {
  const outcomes: NodeOutcome[] = [
    {
      node: "w1",
      role: "worker",
      ok: true,
      ms: 550,
      result: {
        ...result,
        status: "published",
        filesSent: 5,
        bytesSent: 4608,
        filesRemoved: 2,
        filesLinked: 9,
      },
    },
    { node: "worker2", role: "worker", ok: true, ms: 20, result: { ...result, status: "unchanged" } },
    { node: "w3", role: "worker", ok: false, ms: 3000, error: "connection refused by 10.0.0.13:22" },
  ];
  assert.equal(
    pushSummary("r2", outcomes, false),
    [
      "release r2",
      "w1       published  sent 5 file(s), 4.5 KiB, removed 2; 9 reused  (0.55s)",
      "worker2  unchanged  already current  (0.02s)",
      "w3       FAILED     connection refused by 10.0.0.13:22",
      "1 of 3 worker(s) failed",
      "",
    ].join("\n"),
  );
});

test("a dry run lists the paths, quotes the strange ones and cuts long lists", () => {
  const send = ["a.py", "new\nline.py", " lead.py", ...Array.from({ length: 30 }, (_, i) => `m${i}.py`)];
  const outcomes: NodeOutcome[] = [
    {
      node: "w1",
      role: "worker",
      ok: true,
      ms: 100,
      result: {
        ...result,
        status: "would-publish",
        filesSent: send.length,
        bytesSent: 10,
        filesRemoved: 1,
        wouldChange: { send, remove: ["old.py"] },
      },
    },
    { node: "w2", role: "worker", ok: true, ms: 100, result: { ...result, status: "switched" } },
  ];
  const lines = pushSummary("r2", outcomes, true).split("\n");
  assert.equal(lines[0], "release r2 (dry run: nothing was changed)");
  assert.equal(
    lines[1],
    "w1    would-publish  would send 33 file(s), 10 B, would remove 1; 0 reused  (0.10s)",
  );
  assert.deepEqual(lines.slice(2, 5), ["      + a.py", '      + "new\\nline.py"', '      + " lead.py"']);
  assert.equal(lines[22], "      + ... and 13 more");
  assert.equal(lines[23], "      - old.py");
  assert.equal(lines[24], "w2    switched   would switch to a release it had  (0.10s)");
  assert.equal(lines[25], "2 worker(s) looked at; nothing was changed");
});
