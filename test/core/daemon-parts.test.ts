import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  idleExpired,
  needsProbe,
  PROBE_AFTER_MS,
  sleptBetween,
} from "../../src/core/daemon/daemon-policy.js";
import { encodeFrame, encodeJsonFrame, Frame, FrameDecoder } from "../../src/core/daemon/stream-mux.js";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { AgentFrameFollower } from "../../src/core/protocol/agent-frames.js";
import { agentKey, connectionKey } from "../../src/core/ssh/node-key.js";

/** One frame of the agent protocol: 4-byte length, JSON, then the payload's bytes if any. */
function frame(message: Record<string, unknown>, payload?: Buffer): Buffer {
  const body = Buffer.from(JSON.stringify(payload ? { ...message, payload: payload.length } : message));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body, payload ?? Buffer.alloc(0)]);
}

/** Feeds `data` one byte at a time: the follower must not depend on how the stream is cut. */
function byteByByte(feed: (chunk: Buffer) => void, data: Buffer): void {
  for (let i = 0; i < data.length; i++) feed(data.subarray(i, i + 1));
}

describe("following the agent's conversation from the daemon", () => {
  test("between requests the agent can serve the next client", () => {
    const f = new AgentFrameFollower();
    assert.equal(f.verdict, "reuse");
    byteByByte((c) => f.fromClient(c), frame({ op: "hello" }));
    assert.equal(f.verdict, "discard", "a request without its reply is in flight");
    byteByByte((c) => f.fromAgent(c), frame({ ok: true, current: null }));
    assert.equal(f.verdict, "reuse");
  });

  test("a client gone in the middle of a payload, or before the reply, leaves an agent that is discarded", () => {
    const f = new AgentFrameFollower();
    const upload = frame({ op: "upload" }, Buffer.alloc(1000, 7));
    f.fromClient(upload.subarray(0, 600));
    assert.equal(f.settled, false);
    assert.equal(f.verdict, "discard");
    f.fromClient(upload.subarray(600));
    assert.equal(f.verdict, "discard", "the payload is whole but the reply has not come");
    const reply = frame({ ok: true, status: "published" });
    f.fromAgent(reply.subarray(0, 5));
    assert.equal(f.verdict, "discard", "half a reply");
    f.fromAgent(reply.subarray(5));
    assert.equal(f.verdict, "reuse");
  });

  test("a prepare answered ready holds the worker's lock until its upload or abort", () => {
    const f = new AgentFrameFollower();
    f.fromClient(frame({ op: "prepare", release: "ab".repeat(12) }));
    f.fromAgent(frame({ ok: true, status: "ready", expect: 3 }));
    assert.equal(f.holdsLock, true);
    assert.equal(f.verdict, "abort-then-reuse");
    f.fromClient(frame({ op: "abort" }));
    f.fromAgent(frame({ ok: true, status: "aborted" }));
    assert.equal(f.verdict, "reuse");
    // A prepare that only switched, or was refused, leaves nothing held.
    f.fromClient(frame({ op: "prepare" }));
    f.fromAgent(frame({ ok: true, status: "switched" }));
    assert.equal(f.holdsLock, false);
    f.fromClient(frame({ op: "prepare" }));
    f.fromAgent(frame({ ok: false, code: "locked", status: "ready" }));
    assert.equal(f.verdict, "reuse");
  });

  test("several requests in one chunk (pipelined) are followed one by one", () => {
    const f = new AgentFrameFollower();
    f.fromClient(Buffer.concat([frame({ op: "hello" }), frame({ op: "check" }, Buffer.from("xyz"))]));
    f.fromAgent(frame({ ok: true }));
    assert.equal(f.verdict, "discard", "one reply is still due");
    f.fromAgent(frame({ ok: true }));
    assert.equal(f.verdict, "reuse");
  });

  test("after fix, or on a stream that cannot be followed, the agent is never reused", () => {
    const fixed = new AgentFrameFollower();
    fixed.fromClient(frame({ op: "fix" }));
    fixed.fromAgent(frame({ ok: true }));
    assert.equal(fixed.verdict, "discard", "fix may have changed the venv the agent runs from");
    const bad = new AgentFrameFollower();
    bad.fromClient(frame({ op: "upload", payload: -1 }));
    assert.equal(bad.verdict, "discard");
    const unasked = new AgentFrameFollower();
    unasked.fromAgent(frame({ ok: true }));
    assert.equal(unasked.verdict, "discard", "a reply nobody asked for");
  });
});

describe("the key of a node's held connection", () => {
  const node: NodeSpec = {
    name: "w1",
    role: "worker",
    host: "10.0.0.1",
    port: 22,
    user: "u",
    identityFiles: ["/k"],
    knownHosts: "/kh",
    venv: "~/venv",
    deployDir: "~/.sync-cluster",
    acceptNewHostKeys: false,
    connectTimeout: 10,
    keep: 3,
  };

  test("every way of reaching the node is in it; names and the deploy directory are not", () => {
    const key = connectionKey(node);
    for (const change of [
      { host: "10.0.0.2" },
      { port: 2222 },
      { user: "v" },
      { identityFiles: ["/other"] },
      { knownHosts: "/kh2" },
      { acceptNewHostKeys: true },
      { connectTimeout: 3 },
    ])
      assert.notEqual(connectionKey({ ...node, ...change }), key, JSON.stringify(change));
    assert.equal(connectionKey({ ...node, name: "renamed", role: "leader", deployDir: "/d" }), key);
  });

  test("an agent runs from the node's venv: another venv is another agent on the same connection", () => {
    const other = { ...node, venv: "/opt/venv" };
    assert.equal(connectionKey(other), connectionKey(node));
    assert.notEqual(agentKey(other), agentKey(node));
  });
});

describe("when the daemon leaves and when it distrusts a connection", () => {
  test("it exits only with nothing open and nothing done for the idle period", () => {
    const idleMs = 600_000;
    assert.equal(idleExpired({ openStreams: 0, lastActivityMs: 0, nowMs: idleMs - 1, idleMs }), false);
    assert.equal(idleExpired({ openStreams: 0, lastActivityMs: 0, nowMs: idleMs, idleMs }), true);
    assert.equal(idleExpired({ openStreams: 1, lastActivityMs: 0, nowMs: 10 * idleMs, idleMs }), false);
  });

  test("a wall clock running ahead of the monotonic clock is a suspend", () => {
    assert.equal(sleptBetween(1_000, 1_000), false);
    assert.equal(sleptBetween(1_400, 1_000), false, "a late timer on a loaded machine is no suspend");
    assert.equal(sleptBetween(3_600_000, 1_000), true);
  });

  test("a connection quiet for a while, or held across a suspend, is probed first", () => {
    assert.equal(needsProbe({ lastAliveMs: 0, nowMs: PROBE_AFTER_MS - 1, sleptSinceAlive: false }), false);
    assert.equal(needsProbe({ lastAliveMs: 0, nowMs: PROBE_AFTER_MS, sleptSinceAlive: false }), true);
    assert.equal(needsProbe({ lastAliveMs: 0, nowMs: 1, sleptSinceAlive: true }), true);
  });
});

describe("the framing of a daemon client's socket", () => {
  test("frames come out whole and in order however the bytes are cut", () => {
    const stream = Buffer.concat([
      encodeJsonFrame(Frame.open, { op: "agent" }),
      encodeFrame(Frame.stdin, Buffer.from("abc")),
      encodeFrame(Frame.stdinEnd),
      encodeFrame(Frame.stderr, "é"),
    ]);
    const decoder = new FrameDecoder();
    const got: { type: number; body: string }[] = [];
    byteByByte((c) => {
      for (const f of decoder.push(c)) got.push({ type: f.type, body: f.body.toString("utf8") });
    }, stream);
    assert.deepEqual(got, [
      { type: Frame.open, body: '{"op":"agent"}' },
      { type: Frame.stdin, body: "abc" },
      { type: Frame.stdinEnd, body: "" },
      { type: Frame.stderr, body: "é" },
    ]);
    assert.equal(decoder.buffered, 0);
  });

  test("a frame longer than the limit is refused rather than buffered", () => {
    const header = Buffer.alloc(5);
    header.writeUInt8(Frame.stdin, 0);
    header.writeUInt32BE(0xffffffff, 1);
    assert.throws(() => new FrameDecoder().push(header), /over the limit/);
  });
});
