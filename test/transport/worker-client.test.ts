import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { AGENT_MARKER } from "../../src/core/protocol/agent-announcement.js";
import { agentSourceMessage } from "../../src/transport/agent-bootstrap.js";
import { AgentSession } from "../../src/transport/agent-session.js";
import {
  check,
  hello,
  PROTOCOL_VERSION,
  ProtocolError,
  prepare,
  ReplyError,
  TIMEOUTS,
} from "../../src/transport/worker-client.js";
import { localAgent } from "../fixtures/local-agent.js";

/** An agent that answers every request with the next canned reply, and records the requests. */
function cannedAgent(replies: object[]): { session: AgentSession; requests: Record<string, unknown>[] } {
  const stdout = new EventEmitter();
  const requests: Record<string, unknown>[] = [];
  let pending = Buffer.alloc(0);
  // What the bootstrap reads first (the agent's source) is no request; the agent then announces itself.
  let source = agentSourceMessage().length;
  setImmediate(() =>
    stdout.emit("data", Buffer.concat([AGENT_MARKER, Buffer.from(`${PROTOCOL_VERSION}\n`)])),
  );
  const stdin = {
    write(data: Buffer) {
      const skipped = Math.min(source, data.length);
      source -= skipped;
      const chunk = data.subarray(skipped);
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
        const length = pending.readUInt32BE(0);
        requests.push(JSON.parse(pending.subarray(4, 4 + length).toString("utf8")));
        pending = pending.subarray(4 + length);
        const body = Buffer.from(
          JSON.stringify(replies.shift() ?? { ok: false, message: "no more replies" }),
        );
        const header = Buffer.alloc(4);
        header.writeUInt32BE(body.length, 0);
        setImmediate(() => stdout.emit("data", Buffer.concat([header, body])));
      }
      return true;
    },
    end() {},
  };
  const session = new AgentSession(
    { name: "n1" },
    { stdin, stdout, stderr: new EventEmitter(), lifecycle: new EventEmitter(), close() {} },
  );
  return { session, requests };
}

const node = { name: "n1", deployDir: "/tmp/deploy", venv: "/tmp/venv" } as NodeSpec;

const goodHello = {
  ok: true,
  agent: PROTOCOL_VERSION,
  python: { executable: "/usr/bin/python3", version: "3.11.2" },
  home: "/root",
  projectDir: "/tmp/deploy/p",
  venv: "/tmp/venv",
  path: "/usr/bin:/bin",
  sitePackages: null,
  pthOk: false,
  pinned: [],
  runs: [],
  current: null,
  releases: [],
  manifest: null,
  origin: null,
};

test("hello says which protocol it speaks and reads the real agent's reply", async () => {
  const base = mkdtempSync(join(tmpdir(), "worker-client-"));
  const agent = localAgent();
  try {
    const state = await hello(agent.session, { ...node, deployDir: base, venv: join(base, "venv") }, "p", 3);
    assert.equal(state.agent, PROTOCOL_VERSION);
    assert.equal(state.current, null);
    assert.deepEqual(state.releases, []);
    assert.equal(state.projectDir, join(base, "p"));
  } finally {
    agent.session.close();
    rmSync(base, { recursive: true, force: true });
  }
});

test("hello sends the protocol version", async () => {
  const { session, requests } = cannedAgent([goodHello]);
  await hello(session, node, "p", 3);
  assert.equal(requests[0]?.protocol, PROTOCOL_VERSION);
  assert.equal(requests[0]?.op, "hello");
});

test("an agent of another version is named as such, whether it refuses or answers", async () => {
  const refusing = cannedAgent([{ ok: false, code: "protocol", message: "this agent speaks protocol 3" }]);
  await assert.rejects(
    hello(refusing.session, node, "p", 3),
    (e: unknown) =>
      e instanceof ProtocolError &&
      e.node === "n1" &&
      /the node runs an agent of another version/.test(e.message),
  );
  const older = cannedAgent([{ ...goodHello, agent: 1 }]);
  await assert.rejects(
    hello(older.session, node, "p", 3),
    (e: unknown) => e instanceof ProtocolError && /protocol 1/.test(e.message),
  );
});

test("a malformed reply names the node and the field", async () => {
  const { current: _, ...noCurrent } = goodHello;
  const missing = cannedAgent([noCurrent]);
  await assert.rejects(
    hello(missing.session, node, "p", 3),
    (e: unknown) =>
      e instanceof ReplyError && e.node === "n1" && /hello reply .*no field `current`/.test(e.message),
  );
  const badRow = cannedAgent([{ ...goodHello, releases: [{ id: 5 }] }]);
  await assert.rejects(hello(badRow.session, node, "p", 3), /`releases\[0\]\.id` is a number, not string/);
  const badRun = cannedAgent([{ ...goodHello, runs: [{ release: "r", since: "yesterday", pid: 1 }] }]);
  await assert.rejects(hello(badRun.session, node, "p", 3), /`runs\[0\]\.since` is a string, not number/);
  const nested = cannedAgent([{ ...goodHello, python: { executable: 1, version: "3" } }]);
  await assert.rejects(hello(nested.session, node, "p", 3), /`python\.executable`/);
  const status = cannedAgent([{ ok: true, status: "maybe" }]);
  await assert.rejects(
    prepare(status.session, { release: "r", lockTimeout: 1 }),
    (e: unknown) => e instanceof ReplyError && /prepare reply .*`status` is "maybe"/.test(e.message),
  );
});

test("prepare has one timeout, whether it switches or stages", () => {
  assert.equal(TIMEOUTS.prepare(60), 180_000);
  assert.ok(TIMEOUTS.upload(10 * 1024 * 1024) > TIMEOUTS.upload(0));
});

test("check's probes are read field by field: the real agent's reply passes, a malformed one is named", async () => {
  const base = mkdtempSync(join(tmpdir(), "worker-client-"));
  const venv = join(base, "venv");
  execFileSync("/usr/bin/python3", ["-m", "venv", "--system-site-packages", "--without-pip", venv]);
  const agent = localAgent(join(venv, "bin", "python"));
  try {
    await hello(agent.session, { ...node, deployDir: base, venv }, "p", 3);
    const facts = await check(agent.session, {
      modules: [{ module: "json", dist: null }],
      deep: false,
      topLevel: ["json", "no_such_module_here"],
      toilWorker: { command: "_toil_worker", path: "/nowhere" },
    });
    assert.equal(facts.imports?.modules?.json?.found, true);
    assert.equal(typeof facts.imports?.toil?.found, "boolean");
    assert.match(
      facts.entry?.origins?.json && "origin" in facts.entry.origins.json
        ? String(facts.entry.origins.json.origin)
        : "",
      /json/,
    );
    assert.equal(facts.entry?.origins?.no_such_module_here, null);
    assert.deepEqual(
      { command: facts.toilWorker?.command, found: facts.toilWorker?.found, ours: facts.toilWorker?.ours },
      { command: "_toil_worker", found: null, ours: false },
    );
  } finally {
    agent.session.close();
    rmSync(base, { recursive: true, force: true });
  }

  const goodCheck = {
    ok: true,
    venvPython: "/v/bin/python",
    venvIsVenv: true,
    pyvenvCfg: { path: "/v/pyvenv.cfg", line: 2, value: "true" },
    deploy: { path: "/d/p", existing: "/d", writable: true, free: 1 },
    pth: { path: null, expected: "/d/p", serves: null },
    current: null,
    releases: [],
    venv: "/v",
    projectDir: "/d/p",
  };
  const malformed: [object, RegExp][] = [
    [{ imports: { toil: { found: "yes" } } }, /`imports\.toil\.found`/],
    [{ imports: { modules: { numpy: { found: true, origin: 3 } } } }, /`imports\.modules\.numpy\.origin`/],
    [{ entry: { origins: { util: { origin: ["x"], real: null } } } }, /`entry\.origins\.util\.origin`/],
    [
      { toilWorker: { command: "_toil_worker", path: "", found: null, ours: "no", interpreter: null } },
      /`toilWorker\.ours`/,
    ],
  ];
  for (const [part, field] of malformed) {
    const canned = cannedAgent([{ ...goodCheck, ...part }]);
    await assert.rejects(
      check(canned.session, { modules: [], deep: false }),
      (e: unknown) => e instanceof ReplyError && e.node === "n1" && field.test(e.message),
    );
  }
  const fine = cannedAgent([goodCheck]);
  assert.equal((await check(fine.session, { modules: [], deep: false })).venvPython, "/v/bin/python");
});
