import assert from "node:assert/strict";
import { type ChildProcess, execFileSync } from "node:child_process";
import { appendFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  AGENT_ERROR_CODES,
  replyProblem,
  WORKER_OPS,
  type WorkerOp,
} from "../../src/core/protocol/worker-protocol.js";
import { PROTOCOL_VERSION } from "../../src/core/protocol/worker-protocol-types.js";
import { type ManifestFile, releaseIdOf } from "../../src/core/release/manifest.js";
import { buildArchive } from "../../src/push/archive.js";
import { manifestOf, wire } from "../fixtures/local-agent.js";
import { SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { frame, type Reply, rawAgent } from "./raw-agent.js";

/**
 * The worker protocol's declaration (src/core/protocol/worker-protocol.json) against the real
 * agent: every op is sent and its reply checked field by field against what the declaration says,
 * and every declared error code is brought about. A field declared on one side only fails here.
 */

describe("the worker protocol, against the real agent", () => {
  const children: ChildProcess[] = [];
  const answeredOps = new Set<string>();
  const refusedWith = new Set<string>();
  let base: string;
  let venv: string;
  let counter = 0;

  before(async () => {
    base = await tempDir("conformance");
    venv = join(base, "venv");
    execFileSync(SYSTEM_PYTHON, ["-m", "venv", "--system-site-packages", "--without-pip", venv]);
  });
  after(() => {
    for (const child of children) child.kill();
  });

  /** A session with the agent under the venv's python: send a request, get its reply checked. */
  function agent() {
    const raw = rawAgent(children);
    const send = async (request: Record<string, unknown>, payload?: Buffer): Promise<Reply> => {
      const message = payload ? { ...request, payload: payload.length } : request;
      await raw.write(payload ? Buffer.concat([frame(message), payload]) : frame(message));
      const reply = await raw.next();
      if (reply.ok) {
        const op = request.op as WorkerOp;
        assert.equal(replyProblem(op, reply), undefined, `${op}: ${JSON.stringify(reply)}`);
        answeredOps.add(op);
      } else {
        assert.equal(typeof reply.message, "string");
        assert.ok((AGENT_ERROR_CODES as readonly string[]).includes(reply.code ?? ""), String(reply.code));
        refusedWith.add(reply.code!);
      }
      return reply;
    };
    return { raw, send };
  }

  async function hello(send: (r: Record<string, unknown>) => Promise<Reply>, extra = {}) {
    const reply = await send({
      op: "hello",
      protocol: PROTOCOL_VERSION,
      deployDir: join(base, "deploy"),
      project: `proj${++counter}`,
      venv,
      keep: 3,
      withManifest: true,
      ...extra,
    });
    assert.equal(reply.ok, true, reply.message);
    return reply;
  }

  /** Files on disk, their manifest and release id. */
  async function release(content: Record<string, string>) {
    const src = await tempDir("conformance-release");
    await writeTree(src, content);
    const files = manifestOf(content);
    return { src, files, id: releaseIdOf(files) };
  }

  const prepareOf = (id: string, files: readonly ManifestFile[], extra = {}) => ({
    op: "prepare",
    release: id,
    lockTimeout: 0,
    base: null,
    upsert: wire(files),
    remove: [],
    reuse: [],
    ...extra,
  });

  test("every op answers as declared", async () => {
    const { send } = agent();
    await hello(send);
    await send({
      op: "check",
      modules: [{ module: "json", dist: null }],
      deep: false,
      topLevel: ["json"],
      toilWorker: { command: "_toil_worker", path: "/nowhere" },
    });
    const one = await release({ "a.py": "A = 1\n", "pkg/__init__.py": "" });
    assert.equal((await send(prepareOf(one.id, one.files))).status, "ready");
    assert.equal((await send({ op: "upload" }, await buildArchive(one.src, one.files))).status, "published");
    assert.equal((await send(prepareOf(one.id, one.files))).status, "switched");
    assert.equal((await send(prepareOf(one.id, one.files, { activate: false }))).status, "present");
    const two = await release({ "a.py": "A = 2\n" });
    assert.equal((await send(prepareOf(two.id, two.files, { base: "f".repeat(24) }))).status, "base-missing");
    assert.equal((await send(prepareOf(two.id, two.files))).status, "ready");
    assert.equal((await send({ op: "abort" })).status, "aborted");
    assert.equal((await send({ op: "activate", release: one.id, lockTimeout: 0 })).status, "switched");
    assert.equal((await send({ op: "verify", topLevel: ["a", "pkg"] })).fromRecord, false);
    assert.equal((await send({ op: "verify", topLevel: ["a", "pkg"] })).fromRecord, true);
    await send({ op: "runs" });
    assert.equal(((await send({ op: "export", release: one.id })).files as unknown[]).length, 2);
    await send({ op: "export", release: one.id, paths: ["a.py"] });
    await send({ op: "fix" });
    assert.deepEqual([...answeredOps].sort(), [...WORKER_OPS].sort());
  });

  test("every declared error code is answered with", async () => {
    const { raw, send } = agent();
    const refused = async (request: Record<string, unknown>, code: string, payload?: Buffer) => {
      const reply = await send(request, payload);
      assert.deepEqual([reply.ok, reply.code], [false, code], reply.message);
    };
    await refused({ op: "hello", protocol: PROTOCOL_VERSION + 1 }, "protocol");
    const { projectDir } = await hello(send);
    await refused({ op: "frobnicate" }, "bad-request");
    const notJson = Buffer.from("{not json", "utf8");
    const header = Buffer.alloc(4);
    header.writeUInt32BE(notJson.length, 0);
    await raw.write(Buffer.concat([header, notJson]));
    refusedWith.add((await raw.next()).code ?? "");
    // Nested deeper than the agent's JSON reader goes: a failure it has no name for.
    const deep = Buffer.from("[".repeat(100_000), "utf8");
    header.writeUInt32BE(deep.length, 0);
    await raw.write(Buffer.concat([header, deep]));
    refusedWith.add((await raw.next()).code ?? "");

    const files = manifestOf({ "../x.py": "X = 1\n" });
    await refused(prepareOf(releaseIdOf(files), files), "bad-path");
    const one = await release({ "a.py": "A = 1\n", "b.py": "B = 1\n" });
    await refused(prepareOf("0".repeat(24), one.files), "bad-manifest");
    await refused({ op: "activate", release: "f".repeat(24), lockTimeout: 0 }, "no-release");
    const huge: ManifestFile[] = [{ path: "big.bin", size: 2 ** 50, mode: 0o644, sha256: "0".repeat(64) }];
    await refused(prepareOf(releaseIdOf(huge), huge), "no-space");

    await send(prepareOf(one.id, one.files));
    await refused({ op: "upload" }, "bad-archive", Buffer.from("not an archive at all".repeat(50)));
    await send(prepareOf(one.id, one.files));
    await refused({ op: "upload" }, "incomplete", await buildArchive(one.src, one.files.slice(0, 1)));
    await send(prepareOf(one.id, one.files));
    // The same sizes, other bytes: packed with tar(1), since buildArchive checks what it packs.
    const tampered = await tempDir("conformance-tampered");
    await writeTree(tampered, { "a.py": "A = 9\n", "b.py": "B = 1\n" });
    const archive = execFileSync("tar", ["-cf", "-", "-C", tampered, "a.py", "b.py"]);
    await refused({ op: "upload" }, "corrupt", archive);
    await send(prepareOf(one.id, one.files));
    assert.equal((await send({ op: "upload" }, await buildArchive(one.src, one.files))).ok, true);

    // The base release's copy of a.py, changed on the node: the next release links it from there.
    await appendFile(join(String(projectDir), "releases", one.id, "a.py"), "# changed on the node\n");
    const next = await release({ "a.py": "A = 1\n", "c.py": "C = 1\n" });
    await refused(
      prepareOf(next.id, next.files, { base: one.id, upsert: wire(next.files.slice(1)), remove: ["b.py"] }),
      "corrupt-base",
    );

    // Another pusher holds the lock between its prepare and its upload.
    const other = agent();
    await other.send({ op: "hello", deployDir: join(base, "deploy"), project: `proj${counter}`, venv });
    const two = await release({ "a.py": "A = 2\n" });
    assert.equal((await other.send(prepareOf(two.id, two.files))).status, "ready");
    await refused(prepareOf(two.id, two.files), "locked");
    await other.send({ op: "abort" });

    const layoutDir = join(base, "deploy", `proj${counter + 1}`);
    await mkdir(layoutDir, { recursive: true });
    await writeFile(join(layoutDir, "layout"), "99\n");
    await refused(
      { op: "hello", deployDir: join(base, "deploy"), project: `proj${counter + 1}`, venv },
      "layout",
    );
    await hello(send, { deployDir: "/dev/null/deploy" });
    await refused(prepareOf(one.id, one.files), "os-error");
    await hello(send, { venv: "/dev/null/venv" });
    await refused({ op: "fix" }, "fix-failed");

    assert.deepEqual([...refusedWith].sort(), [...AGENT_ERROR_CODES].sort());
  });
});
