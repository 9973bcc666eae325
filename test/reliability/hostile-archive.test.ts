import assert from "node:assert/strict";
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { type ManifestFile, releaseIdOf } from "../../src/core/release/manifest.js";
import { AgentError, type AgentSession } from "../../src/transport/agent-session.js";
import { sendRequest } from "../../src/transport/worker-client.js";
import { localAgent, manifestOf, publishContent, wire } from "../fixtures/local-agent.js";
import { SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";

/**
 * A hostile leader (or a corrupted stream) sends the worker agent crafted archives. Whatever the
 * archive says, the upload is refused, nothing is written outside the staging directory, `current`
 * and the published release stay as they were, and the next push starts clean and succeeds.
 */

// ---- a raw tar writer: tar-stream only writes well-formed archives ------------------------------

interface RawEntry {
  name: string;
  /** Tar type flag: "0" file, "1" hard link, "2" symlink, "5" directory, "x" PAX, "L" GNU long name. */
  type?: string;
  body?: Buffer | string;
  /** Size written in the header; defaults to the body's length. */
  size?: number | bigint;
  linkname?: string;
  mode?: number;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function header(e: RawEntry, bodyLength: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(e.name, 0, 100, "utf8");
  h.write(octal(e.mode ?? 0o644, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  const size = BigInt(e.size ?? bodyLength);
  if (size >= 0n && size < 8n ** 11n) {
    h.write(octal(Number(size), 12), 124, "ascii");
  } else {
    // GNU base-256: first byte 0x80 (0xff for negative), big-endian two's complement.
    let v = size < 0n ? (1n << 96n) + size : size;
    for (let i = 135; i >= 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    h[124] = size < 0n ? 0xff : 0x80;
  }
  h.write(octal(0, 12), 136, "ascii");
  h.write(e.type ?? "0", 156, "ascii");
  if (e.linkname) h.write(e.linkname, 157, 100, "utf8");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len)
    len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

function rawTar(entries: RawEntry[], { end = true } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    parts.push(header(e, body.length), body, pad(body.length));
  }
  if (end) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const pax = (records: Record<string, string>): RawEntry => ({
  name: "PaxHeader",
  type: "x",
  body: Object.entries(records)
    .map(([k, v]) => paxRecord(k, v))
    .join(""),
});

// ---- the agent as a local process -----------------------------------------------------------------

/** Every path below a directory (links not followed), relative to it. */
async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

// ---- the cases ------------------------------------------------------------------------------------

const V1 = { "a.py": "A = 1\n", "pkg/b.py": "B = 1\n" };
const V2 = { "a.py": "A = 2\n", "pkg/b.py": "B = 2\n" };
const good = (name: keyof typeof V2): RawEntry => ({ name, body: V2[name] });

/** Each case: the archive, given the absolute canary directory (beside the deploy directory). */
const cases: {
  label: string;
  codes: string[];
  archive: (canary: string) => Buffer;
  /** What Python's tarfile makes of the first member ("CANARY" stands for the canary path): proves the attack is well-formed. */
  first?: { name: string; type: string; linkname?: string };
}[] = [
  {
    label: "an absolute path into the canary directory",
    first: { name: "CANARY/abs.txt", type: "0" },
    codes: ["bad-archive"],
    archive: (canary) => rawTar([{ name: `${canary}/abs.txt`, body: "x" }, good("a.py"), good("pkg/b.py")]),
  },
  {
    label: "an absolute path with the name of an expected file",
    codes: ["bad-archive"],
    archive: () => rawTar([{ name: "/a.py", body: V2["a.py"] }, good("pkg/b.py")]),
  },
  {
    label: "`..` components climbing to the canary",
    first: { name: "../../../canary/dotdot.txt", type: "0" },
    codes: ["bad-archive"],
    archive: () =>
      rawTar([{ name: "../../../canary/dotdot.txt", body: "x" }, good("a.py"), good("pkg/b.py")]),
  },
  {
    label: "`..` in the middle of an expected-looking path",
    codes: ["bad-archive"],
    archive: () => rawTar([good("a.py"), { name: "pkg/../pkg/b.py", body: V2["pkg/b.py"] }]),
  },
  {
    label: "a symbolic link to the canary, then a file written through it",
    first: { name: "pkg", type: "2", linkname: "CANARY" },
    codes: ["bad-archive"],
    archive: (canary) =>
      rawTar([{ name: "pkg", type: "2", linkname: canary }, good("pkg/b.py"), good("a.py")]),
  },
  {
    label: "a relative symbolic link out of staging, then a file written through it",
    first: { name: "pkg", type: "2", linkname: "../../../canary" },
    codes: ["bad-archive"],
    archive: () =>
      rawTar([{ name: "pkg", type: "2", linkname: "../../../canary" }, good("pkg/b.py"), good("a.py")]),
  },
  {
    label: "a hard link to a file outside",
    codes: ["bad-archive"],
    archive: (canary) =>
      rawTar([{ name: "a.py", type: "1", linkname: join(canary, "..", "outside.txt") }, good("pkg/b.py")]),
  },
  {
    label: "a hard link with `..` in its target",
    first: { name: "a.py", type: "1", linkname: "../../../outside.txt" },
    codes: ["bad-archive"],
    archive: () => rawTar([{ name: "a.py", type: "1", linkname: "../../../outside.txt" }, good("pkg/b.py")]),
  },
  {
    label: "a directory entry where a file is expected",
    codes: ["bad-archive"],
    archive: () => rawTar([{ name: "a.py", type: "5" }, good("pkg/b.py")]),
  },
  {
    label: "a header size far larger than the stream (octal)",
    codes: ["bad-archive"],
    archive: () => rawTar([{ name: "a.py", body: V2["a.py"], size: 0o77777777777 }], { end: false }),
  },
  {
    label: "a header size of 2^40 (base-256)",
    codes: ["bad-archive"],
    archive: () => rawTar([{ name: "a.py", body: V2["a.py"], size: 2n ** 40n }], { end: false }),
  },
  {
    label: "a negative header size (base-256)",
    codes: ["bad-archive"],
    archive: () => rawTar([{ name: "a.py", body: V2["a.py"], size: -6n }, good("pkg/b.py")]),
  },
  {
    label: "a file cut short by the end of the stream",
    codes: ["bad-archive", "corrupt"],
    archive: () => rawTar([good("pkg/b.py"), { name: "a.py", body: "A", size: 6 }], { end: false }),
  },
  {
    label: "a PAX header overriding the path to `../x`",
    first: { name: "../../../canary/pax.txt", type: "0" },
    codes: ["bad-archive"],
    archive: () => rawTar([pax({ path: "../../../canary/pax.txt" }), good("a.py"), good("pkg/b.py")]),
  },
  {
    label: "a PAX header overriding the path to an absolute one",
    first: { name: "CANARY/pax-abs.txt", type: "0" },
    codes: ["bad-archive"],
    archive: (canary) => rawTar([pax({ path: `${canary}/pax-abs.txt` }), good("a.py"), good("pkg/b.py")]),
  },
  {
    label: "a PAX header overriding the size",
    codes: ["bad-archive"],
    archive: () => rawTar([pax({ size: "4096" }), good("a.py"), good("pkg/b.py")]),
  },
  {
    label: "a PAX header turning an expected name into a symbolic link target",
    first: { name: "pkg", type: "2", linkname: "CANARY" },
    codes: ["bad-archive"],
    archive: (canary) =>
      rawTar([pax({ linkpath: canary }), { name: "pkg", type: "2", linkname: "x" }, good("pkg/b.py")]),
  },
  {
    label: "a GNU long name climbing out",
    first: { name: "../../../canary/gnu.txt", type: "0" },
    codes: ["bad-archive"],
    archive: () =>
      rawTar([
        { name: "././@LongLink", type: "L", body: "../../../canary/gnu.txt\0" },
        { name: "placeholder", body: "x" },
        good("a.py"),
        good("pkg/b.py"),
      ]),
  },
  {
    label: "a duplicate entry",
    codes: ["bad-archive"],
    archive: () => rawTar([good("a.py"), good("a.py"), good("pkg/b.py")]),
  },
  {
    label: "a duplicate entry whose second copy differs",
    codes: ["bad-archive"],
    archive: () => rawTar([good("a.py"), { name: "a.py", body: "A = 9\n" }, good("pkg/b.py")]),
  },
  {
    label: "an entry not in the manifest",
    codes: ["bad-archive"],
    archive: () => rawTar([good("a.py"), good("pkg/b.py"), { name: "pkg/extra.py", body: "x" }]),
  },
  {
    label: "the release's own manifest file",
    codes: ["bad-archive"],
    archive: () =>
      rawTar([good("a.py"), good("pkg/b.py"), { name: ".sync-cluster-manifest.json", body: "{}" }]),
  },
  {
    label: "content that does not match its sha256 (same size)",
    codes: ["corrupt"],
    archive: () => rawTar([{ name: "a.py", body: "A = 3\n" }, good("pkg/b.py")]),
  },
  {
    label: "a size that does not match the manifest",
    codes: ["bad-archive"],
    archive: () => rawTar([{ name: "a.py", body: "A = 22\n" }, good("pkg/b.py")]),
  },
  {
    label: "a missing file",
    codes: ["incomplete"],
    archive: () => rawTar([good("a.py")]),
  },
  {
    label: "an empty payload",
    codes: ["bad-archive", "incomplete"],
    archive: () => Buffer.alloc(0),
  },
  {
    label: "bytes that are not a tar archive at all",
    codes: ["bad-archive"],
    archive: () => Buffer.from("#!/bin/sh\nrm -rf /\n".repeat(100)),
  },
];

describe("hostile archives sent to the worker agent", () => {
  let base: string;
  let deployDir: string;
  let canary: string;
  let session: AgentSession;
  let counter = 0;
  const children: ChildProcess[] = [];

  before(async () => {
    base = await tempDir("hostile-archive");
    deployDir = join(base, "deploy");
    canary = join(base, "canary");
    await mkdir(canary);
    await writeFile(join(base, "outside.txt"), "outside\n");
    const agent = localAgent();
    children.push(agent.child);
    session = agent.session;
  });
  after(() => {
    for (const c of children) c.kill("SIGKILL");
  });

  async function publishGood(project: string, content: Record<string, string>): Promise<string> {
    const { id, prepared, published } = await publishContent(session, content);
    assert.equal(prepared.status, "ready");
    assert.equal(published?.status, "published", project);
    return id;
  }

  for (const c of cases) {
    test(`refuses ${c.label}`, async () => {
      const project = `p${++counter}`;
      const projectDir = join(deployDir, project);
      await sendRequest(session, { op: "hello", deployDir, project, venv: "/nonexistent-venv" });
      const id1 = await publishGood(project, V1);
      const before = await listAll(base);

      const files2 = manifestOf(V2);
      const id2 = releaseIdOf(files2);
      const prepared = await sendRequest(session, {
        op: "prepare",
        release: id2,
        base: null,
        upsert: wire(files2),
        remove: [],
        reuse: [],
      });
      assert.equal(prepared.status, "ready");
      const archive = c.archive(canary);
      let refusal: unknown;
      try {
        await sendRequest(session, { op: "upload" }, archive);
      } catch (error) {
        refusal = error;
      }
      assert.ok(refusal instanceof AgentError, `the upload was not refused: ${String(refusal)}`);
      assert.ok(c.codes.includes(refusal.code), `refused with ${refusal.code}: ${refusal.message}`);

      // Nothing written anywhere: the canary stays empty, the whole tree is as it was before the push.
      assert.deepEqual(await readdir(canary), []);
      assert.equal(await readFile(join(base, "outside.txt"), "utf8"), "outside\n");
      assert.deepEqual(await listAll(base), before, "files appeared or vanished outside the release");
      // `current` and the published release are untouched.
      assert.equal(await readlink(join(projectDir, "current")), `releases/${id1}`);
      for (const [path, text] of Object.entries(V1)) {
        assert.equal(await readFile(join(projectDir, "current", path), "utf8"), text);
      }
      assert.deepEqual(await readdir(join(projectDir, "releases")), [id1]);

      // The session still works; the next prepare leaves only its own staging; a good upload publishes.
      const again = await sendRequest(session, {
        op: "prepare",
        release: id2,
        base: null,
        upsert: wire(files2),
        remove: [],
        reuse: [],
      });
      assert.equal(again.status, "ready");
      const staging = (await readdir(projectDir)).filter((n) => n.startsWith(".staging"));
      assert.equal(staging.length, 1, `staging left behind: ${staging.join(", ")}`);
      assert.ok(staging[0]!.startsWith(`.staging-${id2}-`));
      assert.deepEqual(await listAll(join(projectDir, staging[0]!)), []);
      const published = await sendRequest(
        session,
        { op: "upload" },
        rawTar([good("a.py"), good("pkg/b.py")]),
      );
      assert.equal(published.status, "published");
      assert.equal(await readlink(join(projectDir, "current")), `releases/${id2}`);
      for (const [path, text] of Object.entries(V2)) {
        assert.equal(await readFile(join(projectDir, "current", path), "utf8"), text);
      }
      assert.deepEqual(
        (await readdir(projectDir)).filter((n) => n.startsWith(".staging")),
        [],
      );
      assert.deepEqual(await readdir(canary), []);
    });
  }

  test("the crafted archives are read by Python's tarfile as the attacks they are meant to be", () => {
    const script = [
      "import sys, tarfile, json",
      "t = tarfile.open(fileobj=sys.stdin.buffer, mode='r|', encoding='utf-8', errors='surrogateescape')",
      "m = next(iter(t))",
      "print(json.dumps({'name': m.name, 'type': m.type.decode(), 'linkname': m.linkname}))",
    ].join("\n");
    for (const c of cases) {
      if (!c.first) continue;
      const r = spawnSync(SYSTEM_PYTHON, ["-c", script], { input: c.archive("/CANARY") });
      assert.equal(r.status, 0, `${c.label}: ${r.stderr}`);
      const got = JSON.parse(r.stdout.toString()) as { name: string; type: string; linkname: string };
      const want = c.first;
      assert.equal(got.name, want.name.replace("CANARY", "/CANARY"), c.label);
      assert.equal(got.type, want.type, c.label);
      if (want.linkname) assert.equal(got.linkname, want.linkname.replace("CANARY", "/CANARY"), c.label);
    }
  });

  test("a header size that agrees with a huge manifest size but not with the stream is refused fast", async (t) => {
    const project = `p${++counter}`;
    const projectDir = join(deployDir, project);
    await sendRequest(session, { op: "hello", deployDir, project, venv: "/nonexistent-venv" });
    const id1 = await publishGood(project, V1);
    const huge = 1024 ** 3;
    const files2: ManifestFile[] = [{ path: "a.py", size: huge, mode: 0o644, sha256: "0".repeat(64) }];
    const id2 = releaseIdOf(files2);
    try {
      await sendRequest(session, {
        op: "prepare",
        release: id2,
        base: null,
        upsert: wire(files2),
        remove: [],
        reuse: [],
      });
    } catch (error) {
      if (error instanceof AgentError && error.code === "no-space") {
        t.skip("less than 1 GiB free for the claimed size");
        return;
      }
      throw error;
    }
    const started = performance.now();
    await assert.rejects(
      sendRequest(
        session,
        { op: "upload" },
        rawTar([{ name: "a.py", body: "A = 2\n", size: huge }], { end: false }),
      ),
      (e: unknown) => e instanceof AgentError && ["bad-archive", "corrupt"].includes(e.code),
    );
    assert.ok(performance.now() - started < 5_000);
    assert.deepEqual(await readdir(canary), []);
    assert.equal(await readlink(join(projectDir, "current")), `releases/${id1}`);
    assert.deepEqual(
      (await readdir(projectDir)).filter((n) => n.startsWith(".staging")),
      [],
      "the partial file's staging directory was removed",
    );
  });

  test("a manifest whose reuse entries point out of the base release is refused before any upload", async () => {
    const project = `p${++counter}`;
    await sendRequest(session, { op: "hello", deployDir, project, venv: "/nonexistent-venv" });
    const id1 = await publishGood(project, V1);
    const files2 = manifestOf({ "a.py": V1["a.py"], "pkg/b.py": V1["pkg/b.py"], "c.py": "outside\n" });
    for (const from of ["../../../outside.txt", `${base}/outside.txt`, "../releases/x/a.py"]) {
      await assert.rejects(
        sendRequest(session, {
          op: "prepare",
          release: releaseIdOf(files2),
          base: id1,
          upsert: wire(files2.filter((f) => f.path === "c.py")),
          remove: [],
          reuse: [["c.py", from]],
        }),
        (e: unknown) => e instanceof AgentError && e.code === "bad-request",
        from,
      );
    }
    assert.deepEqual(await readdir(canary), []);
    assert.equal(await readlink(join(deployDir, project, "current")), `releases/${id1}`);
  });
});
