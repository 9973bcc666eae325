import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { NodeError } from "../../src/core/errors.js";
import { AGENT_MARKER } from "../../src/core/protocol/agent-announcement.js";
import {
  agentCommand,
  BOOTSTRAP_PROGRAM,
  NO_PYTHON_MESSAGE,
  PROTOCOL_VERSION,
} from "../../src/transport/agent-bootstrap.js";
import { AgentSession, MAX_REPLY_BYTES, ProtocolError } from "../../src/transport/agent-session.js";
import { processStreams } from "../fixtures/local-agent.js";
import { SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";

/**
 * AgentSession over hand-fed streams: the test writes what a node would send on stdout and
 * stderr, byte for byte, and sees what the session makes of it.
 */
function fedSession(startTimeoutMs = 0) {
  const stdout = new EventEmitter();
  const stderr = new EventEmitter();
  const lifecycle = new EventEmitter();
  let closed = false;
  const session = new AgentSession(
    { name: "w1" },
    {
      stdin: { write: () => true, end() {} },
      stdout,
      stderr,
      lifecycle,
      close() {
        closed = true;
      },
    },
    { startTimeoutMs },
  );
  return {
    session,
    out: (data: Buffer | string) => stdout.emit("data", Buffer.from(data)),
    err: (data: string) => stderr.emit("data", Buffer.from(data)),
    end: () => lifecycle.emit("close"),
    closed: () => closed,
  };
}

const announcement = (version = PROTOCOL_VERSION) =>
  Buffer.concat([AGENT_MARKER, Buffer.from(`${version}\n`)]);

function frame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

test("what the login shell prints before the announcement is set aside, and the replies are read", async () => {
  const node = fedSession();
  const reply = node.session.request({ op: "hello" });
  const bytes = Buffer.concat([
    Buffer.from("\x1b[1mWelcome to w1\x1b[0m\r\nDisk quota: 80% used\n"),
    announcement(),
    frame({ ok: true, agent: 2 }),
  ]);
  // One byte at a time: the marker and the first frame split anywhere.
  for (const byte of bytes) node.out(Buffer.from([byte]));
  await node.session.started;
  assert.deepEqual(await reply, { ok: true, agent: 2 });
  assert.equal(node.session.loginOutput?.firstLine, "Welcome to w1");
  assert.equal(node.session.loginOutput?.lines, 2);
});

test("a shell that prints nothing leaves no login output", async () => {
  const node = fedSession();
  node.out(Buffer.concat([announcement(), frame({ ok: true })]));
  await node.session.started;
  assert.equal(node.session.loginOutput, undefined);
});

test("a reply frame over the size limit fails the session at once, without buffering it", async () => {
  const node = fedSession();
  const reply = node.session.request({ op: "hello" });
  const header = Buffer.alloc(4);
  header.writeUInt32BE(MAX_REPLY_BYTES + 1, 0);
  node.out(Buffer.concat([announcement(), header, Buffer.alloc(1024)]));
  await assert.rejects(
    reply,
    (e: unknown) =>
      e instanceof ProtocolError && e.node === "w1" && /over the limit of 64 MiB/.test(e.message),
  );
  assert.ok(node.closed(), "the stream is closed, not read on");
  await assert.rejects(node.session.request({ op: "check" }), ProtocolError);
});

test("garbage inside the frame stream is a ProtocolError, not a wait", async () => {
  // A shell that prints once the agent runs cannot reach its stdout; anything else writing there
  // turns the next length into text.
  const node = fedSession();
  const first = node.session.request({ op: "hello" });
  node.out(Buffer.concat([announcement(), frame({ ok: true })]));
  assert.deepEqual(await first, { ok: true });
  const second = node.session.request({ op: "check" });
  node.out("Welcome to w1\n");
  await assert.rejects(second, (e: unknown) => e instanceof ProtocolError && /corrupt/.test(e.message));
});

test("a frame that is not JSON is a ProtocolError", async () => {
  const node = fedSession();
  const reply = node.session.request({ op: "hello" });
  const body = Buffer.from("not json at all");
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  node.out(Buffer.concat([announcement(), header, body]));
  await assert.rejects(reply, (e: unknown) => e instanceof ProtocolError && /not JSON/.test(e.message));
});

test("an announcement of another protocol version is refused", async () => {
  const node = fedSession();
  node.out(announcement(PROTOCOL_VERSION + 1));
  await assert.rejects(
    node.session.started,
    (e: unknown) => e instanceof ProtocolError && /different versions/.test(e.message),
  );
});

test("a shell that never lets the agent start fails within the start timeout, naming the node and its first line", async () => {
  const node = fedSession(300);
  const reply = node.session.request({ op: "hello" });
  node.out("Welcome to w1\nPress any key\n");
  node.err("stty: 'standard input': Inappropriate ioctl for device\n");
  const started = performance.now();
  await assert.rejects(node.session.started, (e: unknown) => {
    assert.ok(e instanceof NodeError);
    assert.match(
      e.message,
      /^the login shell on w1 printed 'Welcome to w1' \(and 1 more line\(s\), 28 B in all\) and no sync-cluster agent started within 0\.3s: stty: .*Inappropriate ioctl/,
    );
    return true;
  });
  assert.ok(performance.now() - started < 2000);
  await assert.rejects(reply, /no sync-cluster agent started/);
  assert.ok(node.closed());
});

test("a shell that prints megabytes fails once it passes the limit, without waiting for the timeout", async () => {
  const node = fedSession(60_000);
  const line = Buffer.from(`${"quota ".repeat(20)}\n`);
  for (let i = 0; i < (2 * 1024 * 1024) / line.length && node.session.isOpen; i++) node.out(line);
  await assert.rejects(
    node.session.started,
    /kept on printing: over 1 MiB before the sync-cluster agent started/,
  );
});

test("a node without python says so when the channel closes", async () => {
  const node = fedSession(60_000);
  node.err(
    "sync-cluster: no python to run the agent: neither /opt/venv/bin/python nor python3 on PATH (/usr/bin:/bin)\n",
  );
  node.end();
  await assert.rejects(
    node.session.started,
    /on w1, the node has no python for the sync-cluster agent: sync-cluster: no python .*neither \/opt\/venv\/bin\/python nor python3 on PATH.*install python3/,
  );
});

/** The real bootstrap run by a local shell that prints first, as a chatty ~/.bashrc makes sshd's shell do. */
function shellAgent(shellScript: string, startTimeoutMs = 10_000) {
  const child = spawn("/bin/sh", ["-c", shellScript], { stdio: ["pipe", "pipe", "pipe"], cwd: "/" });
  const session = new AgentSession({ name: "local" }, processStreams(child), { startTimeoutMs });
  return { session, child };
}

test("a bootstrap that exits before it reads the agent's source fails with its own message, not a broken pipe", async () => {
  // The shell closes its stdin and says so; only then is the session made, so writing the agent's
  // source fails for certain (child stdio are socket pairs, whose buffers could otherwise take it
  // all before the shell closes its end). Told to, it says why it cannot start and ends.
  const child = spawn(
    "/bin/sh",
    [
      "-c",
      `trap 'kill $! 2>/dev/null; echo "${NO_PYTHON_MESSAGE}: none here" >&2; exit 127' USR1
exec 0<&-
echo closed
sleep 60 & wait`,
    ],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  await new Promise((resolve) => child.stdout.once("data", resolve));
  const stdinFailed = new Promise((resolve) => child.stdin.once("error", resolve));
  const session = new AgentSession({ name: "w1" }, processStreams(child), { startTimeoutMs: 10_000 });
  assert.match(String(await stdinFailed), /EPIPE/);
  child.kill("SIGUSR1");
  await assert.rejects(session.started, /on w1, the node has no python for the sync-cluster agent/);
});

test("the real agent behind a shell that prints a banner answers hello", async () => {
  const base = await tempDir("chatty");
  const { session, child } = shellAgent(
    `echo 'Welcome to the cluster'; printf 'no newline'; exec ${SYSTEM_PYTHON} -c '${BOOTSTRAP_PROGRAM}'`,
  );
  try {
    await session.started;
    const reply = await session.request({ op: "hello", deployDir: base, project: "p", venv: `${base}/venv` });
    assert.equal(reply.agent, PROTOCOL_VERSION);
    assert.deepEqual(session.loginOutput, { bytes: 33, lines: 2, firstLine: "Welcome to the cluster" });
  } finally {
    child.kill();
  }
});

test("agentCommand runs the node's python3 when the venv has none, and says so when there is no python3 either", async () => {
  const base = await tempDir("no-python");
  const withPython3 = shellAgent(
    agentCommand({ venv: `${base}/no-venv` }).replace(/^/, "PATH=/usr/bin:/bin "),
  );
  try {
    await withPython3.session.started;
    const reply = await withPython3.session.request({
      op: "hello",
      deployDir: base,
      project: "p",
      venv: base,
    });
    assert.equal(reply.agent, PROTOCOL_VERSION);
  } finally {
    withPython3.child.kill();
  }
  // A PATH with a shell but no python3 (sh found by its absolute path).
  const bare = shellAgent(`PATH=${base} exec /bin/${agentCommand({ venv: `${base}/no-venv` })}`);
  await assert.rejects(
    bare.session.started,
    new RegExp(
      `no python for the sync-cluster agent: .*neither ${base}/no-venv/bin/python nor python3 on PATH \\(${base}\\)`,
    ),
  );
});
