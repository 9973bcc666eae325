import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PROTOCOL_VERSION } from "../../src/transport/agent-bootstrap.js";
import { tempDir } from "../fixtures/projects.js";
import { frame, rawAgent } from "../protocol/raw-agent.js";

describe("the agent's framing", () => {
  let base: string;
  let deployDir: string;
  const children: ChildProcess[] = [];
  let counter = 0;
  const hello = (extra: Record<string, unknown> = {}) => ({
    op: "hello",
    deployDir,
    project: `proj${++counter}`,
    venv: join(base, "no-venv"),
    ...extra,
  });

  before(async () => {
    base = await tempDir("framing");
    deployDir = join(base, "deploy");
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  test("a frame written one byte at a time is one request", async () => {
    const agent = rawAgent(children);
    for (const byte of frame(hello())) await agent.write(Buffer.from([byte]));
    const reply = await agent.next();
    assert.equal(reply.ok, true, reply.message);
    assert.equal(reply.agent, PROTOCOL_VERSION);
  });

  test("a length nobody could mean is answered, then the agent stops (nothing after it can be found)", async () => {
    const agent = rawAgent(children);
    await agent.write(frame(hello()));
    assert.equal((await agent.next()).ok, true);
    await agent.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7b, 0x7d]));
    const reply = await agent.next();
    assert.equal(reply.ok, false);
    assert.equal(reply.code, "bad-frame");
    assert.match(reply.message ?? "", /4294967295/);
    assert.equal(await agent.exited, 0);
  });

  test("a frame that is not JSON, or not an object, is refused and the next one is served", async () => {
    const agent = rawAgent(children);
    const junk = Buffer.from("{not json", "utf8");
    const header = Buffer.alloc(4);
    header.writeUInt32BE(junk.length, 0);
    await agent.write(Buffer.concat([header, junk, frame([1, 2, 3]), frame(hello())]));
    const first = await agent.next();
    assert.deepEqual([first.ok, first.code], [false, "bad-frame"]);
    assert.match(first.message ?? "", /not JSON/);
    const second = await agent.next();
    assert.deepEqual([second.ok, second.code], [false, "bad-frame"]);
    const third = await agent.next();
    assert.equal(third.ok, true, third.message);
  });

  test("an unknown operation's payload is skipped: the stream stays in sync", async () => {
    const agent = rawAgent(children);
    await agent.write(frame(hello()));
    assert.equal((await agent.next()).ok, true);
    // A payload that holds what looks like a frame: read as one, it would get a reply of its own.
    const payload = Buffer.concat([frame({ op: "abort" }), Buffer.alloc(100_000, 0xab)]);
    await agent.write(Buffer.concat([frame({ op: "frobnicate", payload: payload.length }), payload]));
    await agent.write(frame({ op: "verify", topLevel: [] }));
    const refused = await agent.next();
    assert.deepEqual([refused.ok, refused.code], [false, "bad-request"]);
    assert.match(refused.message ?? "", /unknown operation "frobnicate"/);
    const next = await agent.next();
    assert.equal(next.ok, true, next.message);
    assert.equal(next.status, undefined, "the abort inside the payload was not served");
    assert.ok("projectDir" in next, "the verify after it was answered");
  });

  test("an upload without prepare is refused and its payload skipped", async () => {
    const agent = rawAgent(children);
    await agent.write(frame(hello()));
    assert.equal((await agent.next()).ok, true);
    const payload = Buffer.alloc(3000, 1);
    await agent.write(
      Buffer.concat([frame({ op: "upload", payload: payload.length }), payload, frame(hello())]),
    );
    const refused = await agent.next();
    assert.deepEqual([refused.ok, refused.code], [false, "bad-request"]);
    assert.equal((await agent.next()).ok, true);
  });

  test("a handler's error (a missing field, a wrong type) is an answer, not the end of the agent", async () => {
    const agent = rawAgent(children);
    await agent.write(frame(hello()));
    assert.equal((await agent.next()).ok, true);
    await agent.write(frame({ op: "prepare", base: null, upsert: [], remove: [], reuse: [] }));
    const missing = await agent.next();
    assert.deepEqual([missing.ok, missing.code], [false, "bad-request"]);
    assert.match(missing.message ?? "", /release/);
    await agent.write(frame({ op: "hello", deployDir, project: 42, venv: base }));
    const wrongType = await agent.next();
    assert.deepEqual([wrongType.ok, wrongType.code], [false, "bad-request"]);
    await agent.write(frame({ op: "verify", topLevel: [] }));
    assert.equal((await agent.next()).ok, true);
    assert.equal(agent.child.exitCode, null);
  });

  test("no operation but hello comes first, payload or not", async () => {
    const agent = rawAgent(children);
    const payload = Buffer.alloc(500, 7);
    await agent.write(
      Buffer.concat([
        frame({ op: "check" }),
        frame({ op: "upload", payload: payload.length }),
        payload,
        frame(hello()),
      ]),
    );
    for (const op of ["check", "upload"]) {
      const refused = await agent.next();
      assert.deepEqual([refused.ok, refused.code], [false, "bad-request"]);
      assert.match(refused.message ?? "", new RegExp(`${op} before hello`));
    }
    assert.equal((await agent.next()).ok, true);
  });

  test("a leader of another protocol is refused at hello, one of this protocol is served", async () => {
    const agent = rawAgent(children);
    await agent.write(frame(hello({ protocol: PROTOCOL_VERSION + 1 })));
    const refused = await agent.next();
    assert.deepEqual([refused.ok, refused.code], [false, "protocol"]);
    assert.match(
      refused.message ?? "",
      new RegExp(
        `this node's agent speaks protocol ${PROTOCOL_VERSION}, the leader ${PROTOCOL_VERSION + 1}: `,
      ),
    );
    await agent.write(frame({ op: "check" }));
    assert.equal((await agent.next()).code, "bad-request", "a refused hello is no hello");
    await agent.write(frame(hello({ protocol: PROTOCOL_VERSION })));
    assert.equal((await agent.next()).ok, true);
  });
});

describe("the worker's layout version", () => {
  let deployDir: string;
  const children: ChildProcess[] = [];
  before(async () => {
    deployDir = join(await tempDir("layout"), "deploy");
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });
  const hello = (project: string) => frame({ op: "hello", deployDir, project, venv: "/nonexistent-venv" });
  const exists = (path: string) =>
    access(path).then(
      () => true,
      () => false,
    );

  test("a project directory of another layout is refused, saying what to do", async () => {
    await mkdir(join(deployDir, "future", "releases"), { recursive: true });
    await writeFile(join(deployDir, "future", "layout"), "3\n");
    const agent = rawAgent(children);
    await agent.write(hello("future"));
    const refused = await agent.next();
    assert.deepEqual([refused.ok, refused.code], [false, "layout"]);
    assert.match(refused.message ?? "", /layout 3/);
    assert.match(refused.message ?? "", /move the directory away/);
    assert.equal(await readFile(join(deployDir, "future", "layout"), "utf8"), "3\n", "left as it was");
  });

  test("a project directory without a layout file gets one; hello creates no directory", async () => {
    await mkdir(join(deployDir, "older", "releases"), { recursive: true });
    const agent = rawAgent(children);
    await agent.write(Buffer.concat([hello("older"), hello("unused")]));
    assert.equal((await agent.next()).ok, true);
    assert.equal((await agent.next()).ok, true);
    assert.equal(await readFile(join(deployDir, "older", "layout"), "utf8"), "2\n");
    assert.equal(await exists(join(deployDir, "unused")), false);
  });

  test("a push writes the file, and refuses a directory whose layout changed since hello", async () => {
    const agent = rawAgent(children);
    await agent.write(hello("fresh"));
    assert.equal((await agent.next()).ok, true);
    assert.equal(await exists(join(deployDir, "fresh")), false);
    // An empty release: nothing to send, so prepare goes on to stage it.
    const empty = { op: "prepare", release: "e3b0c44298fc1c149afbf4c8", upsert: [], remove: [], reuse: [] };
    await agent.write(frame(empty));
    const prepared = await agent.next();
    assert.equal(prepared.ok, true, prepared.message);
    assert.equal(prepared.status, "ready");
    await agent.write(frame({ op: "abort" }));
    await agent.next();
    assert.equal(await readFile(join(deployDir, "fresh", "layout"), "utf8"), "2\n");
    await writeFile(join(deployDir, "fresh", "layout"), "9\n");
    await agent.write(frame(empty));
    const refused = await agent.next();
    assert.deepEqual([refused.ok, refused.code], [false, "layout"]);
  });
});
