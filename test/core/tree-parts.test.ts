import assert from "node:assert/strict";
import { test } from "node:test";
import { readAgentLines } from "../../src/core/tree/agent-lines.js";
import { describeEnd, relayEvent } from "../../src/core/tree/relay-events.js";
import { topologyText } from "../../src/core/tree/topology-file.js";

const ANNOUNCE = "\u0000\u001esync-cluster-agent/3";

test("the relay's lines become typed events; anything else is none", () => {
  assert.deepEqual(relayEvent('{"route": "n1", "via": "gw1"}'), { kind: "route", node: "n1", via: "gw1" });
  assert.deepEqual(relayEvent('{"route": "n1", "via": null}'), { kind: "route", node: "n1", via: null });
  assert.deepEqual(relayEvent('{"run": "b0", "node": "n1", "out": "x"}'), {
    kind: "out",
    run: "b0",
    node: "n1",
    line: "x",
  });
  assert.deepEqual(relayEvent('{"run": "b0", "node": "n1", "err": ""}'), {
    kind: "err",
    run: "b0",
    node: "n1",
    line: "",
  });
  assert.deepEqual(relayEvent('{"run": "b0", "node": "n1", "rc": 255}'), {
    kind: "rc",
    run: "b0",
    node: "n1",
    rc: 255,
  });
  assert.deepEqual(relayEvent('{"run": "b0", "node": "n1", "lost": "why"}'), {
    kind: "lost",
    run: "b0",
    node: "n1",
    reason: "why",
  });
  assert.deepEqual(relayEvent('{"run": "b0", "node": "n1", "timeout": true}'), {
    kind: "timeout",
    run: "b0",
    node: "n1",
  });
  assert.deepEqual(relayEvent('{"done": true}'), { kind: "done" });
  for (const junk of [
    "",
    "not json",
    "[]",
    "null",
    '{"run": "b0"}',
    '{"run": 1, "node": "n", "rc": 0}',
    '{"run": "b", "node": "n"}',
  ])
    assert.equal(relayEvent(junk), undefined, junk);
});

test("a node's end in words: lost and timed out name why, an exit status needs none", () => {
  const run = { node: "n1", via: "gw1", out: [], err: [] };
  assert.equal(describeEnd({ ...run, end: { rc: 0 } }, 10), undefined);
  assert.equal(
    describeEnd({ ...run, end: { lost: "its gateway gw1 could not be reached" } }, 10),
    "not reached: its gateway gw1 could not be reached",
  );
  assert.equal(
    describeEnd({ ...run, end: { timeout: true } }, 10),
    "did not finish within 10 s (reached through gw1)",
  );
  assert.equal(describeEnd({ ...run, via: null, end: { timeout: true } }, 10), "did not finish within 10 s");
});

test("the agent's line replies: the login shell's output set aside, one reply a line", () => {
  assert.deepEqual(readAgentLines([ANNOUNCE, '{"ok": true, "a": 1}', '{"ok": false, "code": "x"}']), {
    kind: "replies",
    replies: [
      { ok: true, a: 1 },
      { ok: false, code: "x" },
    ],
  });
  const chatty = readAgentLines(["Welcome to n1", `quota ok${ANNOUNCE}`, '{"ok": true}']);
  assert.equal(chatty.kind, "replies");
  assert.equal(chatty.kind === "replies" && chatty.loginOutput?.firstLine, "Welcome to n1");
  assert.equal(chatty.kind === "replies" && chatty.loginOutput?.lines, 2);
  assert.deepEqual(readAgentLines([]), { kind: "no-agent" });
  const silent = readAgentLines(["bash: python3: command not found"]);
  assert.equal(silent.kind, "no-agent");
  assert.deepEqual(readAgentLines([ANNOUNCE, "{truncated"]), { kind: "garbled", line: "{truncated" });
  assert.deepEqual(readAgentLines([ANNOUNCE, "[1]"]), { kind: "garbled", line: "[1]" });
  assert.deepEqual(readAgentLines(["\u0000\u001esync-cluster-agent/x"]), {
    kind: "garbled",
    line: "\u0000\u001esync-cluster-agent/x",
  });
});

test("a topology written from the inventory's gateways: the leader above them, each above its node set", () => {
  assert.equal(
    topologyText("leader", { gw1: "node[001-128]", gw2: "node[129-256]" }),
    "[routes]\nleader: gw1,gw2\ngw1: node[001-128]\ngw2: node[129-256]\n",
  );
});
