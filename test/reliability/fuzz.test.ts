import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { pack } from "tar-stream";
import { stringify } from "yaml";
import { InventoryError } from "../../src/core/errors.js";
import { planDelta } from "../../src/core/release/delta.js";
import { type ManifestFile, releaseIdOf } from "../../src/core/release/manifest.js";
import { loadInventory } from "../../src/inventory/load.js";
import { AgentError, type AgentSession } from "../../src/transport/agent-session.js";
import { sendRequest } from "../../src/transport/worker-client.js";
import { localAgent } from "../fixtures/local-agent.js";
import { tempDir } from "../fixtures/projects.js";

/**
 * Property tests with fixed seeds and run counts: the same cases, in about the same time, every run.
 * A failure prints the seed and the shrunk counterexample.
 */

/** Fixed for reproducible runs; FUZZ_SEED=n explores other cases. */
const SEED = Number(process.env.FUZZ_SEED ?? 20240611);

// ---- manifests ------------------------------------------------------------------------------------

const SHAS = ["a", "b", "c", "d"].map((c) => c.repeat(64));

/** A small space of paths and contents, so that equal content at different paths is common. */
const manifestFile: fc.Arbitrary<ManifestFile> = fc.record({
  path: fc.constantFrom("a.py", "b.py", "c.py", "pkg/a.py", "pkg/b.py", "pkg/sub/c.py", "data/x.csv", "é.py"),
  size: fc.integer({ min: 0, max: 3 }),
  mode: fc.constantFrom(0o644, 0o755),
  sha256: fc.constantFrom(...SHAS),
});
const manifest = fc.uniqueArray(manifestFile, { selector: (f) => f.path, maxLength: 8 });

const contentKey = (f: ManifestFile) => `${f.sha256}:${f.size}:${f.mode}`;

describe("planDelta", () => {
  test("applying the plan to the base yields exactly the target, and sends nothing the base has", () => {
    fc.assert(
      fc.property(manifest, fc.option(manifest, { nil: undefined }), (target, base) => {
        const delta = planDelta(target, base);
        // What the worker does (the agent's op_prepare): base minus removed, then reused and sent files on top.
        const baseByPath = new Map((base ?? []).map((f) => [f.path, f]));
        const state = new Map(baseByPath);
        for (const path of delta.removed) {
          assert.ok(baseByPath.has(path), `removes ${path}, which the base does not have`);
          state.delete(path);
        }
        for (const r of delta.reuse) {
          const from = baseByPath.get(r.from);
          assert.ok(from, `reuses ${r.from}, which the base does not have`);
          assert.equal(contentKey(from), contentKey(r.file), `reuses ${r.from} for different content`);
          state.set(r.file.path, { ...from, path: r.file.path });
        }
        for (const f of delta.send) state.set(f.path, f);
        const sorted = (files: Iterable<ManifestFile>) =>
          [...files].sort((a, b) => (a.path < b.path ? -1 : 1)).map((f) => ({ ...f }));
        assert.deepEqual(sorted(state.values()), sorted(target));

        // Every target file is either sent or reused, once.
        const planned = [...delta.send.map((f) => f.path), ...delta.reuse.map((r) => r.file.path)].sort();
        assert.deepEqual(planned, target.map((f) => f.path).sort());
        // Nothing is sent that the base already has with the same content, at any path.
        const baseContent = new Set((base ?? []).map(contentKey));
        for (const f of delta.send) assert.ok(!baseContent.has(contentKey(f)), `sends ${f.path} again`);
        assert.equal(
          delta.bytesToSend,
          delta.send.reduce((n, f) => n + f.size, 0),
        );
        // Removed is exactly the base's paths the target lacks.
        const targetPaths = new Set(target.map((f) => f.path));
        assert.deepEqual(
          [...delta.removed].sort(),
          (base ?? [])
            .map((f) => f.path)
            .filter((p) => !targetPaths.has(p))
            .sort(),
        );
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });
});

// ---- release ids ----------------------------------------------------------------------------------

/** Paths as file names can be: any characters but NUL (which the agent refuses in a manifest anyway). */
const anyPath = fc
  .string({ minLength: 1, maxLength: 12, unit: "binary" })
  .filter((p) => !p.includes("\0") && !/[\uD800-\uDFFF]/.test(p));
const wideFile = fc.record({
  path: anyPath,
  size: fc.nat({ max: 2 ** 40 }),
  mode: fc.constantFrom(0o644, 0o755),
  sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
});
const wideManifest = fc.uniqueArray(wideFile, { selector: (f) => f.path, minLength: 1, maxLength: 10 });

describe("releaseIdOf", () => {
  test("orders paths by their UTF-8 bytes, as the agent does, beyond U+FFFF too", () => {
    // Characters past U+FFFF sort after U+E000-U+FFFF in UTF-8 but before them in UTF-16 units.
    const char = fc.constantFrom("a", "~", "\u00e9", "\ue000", "\uffee", "\u{1f600}", "\u{10000}", "/");
    const path = fc.array(char, { minLength: 1, maxLength: 6 }).map((chars) => chars.join(""));
    const file = fc.record({
      path,
      size: fc.nat({ max: 99 }),
      mode: fc.constant(0o644),
      sha256: fc.constant("0"),
    });
    const bytesOrderId = (files: readonly ManifestFile[]) => {
      const hash = createHash("sha256");
      const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
      for (const f of sorted) hash.update(`${f.path}\0${f.size}\0${f.mode.toString(8)}\0${f.sha256}\n`);
      return hash.digest("hex").slice(0, 24);
    };
    fc.assert(
      fc.property(fc.uniqueArray(file, { selector: (f) => f.path, maxLength: 12 }), (files) => {
        assert.equal(releaseIdOf(files), bytesOrderId(files));
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  test("does not depend on the order of the files", () => {
    fc.assert(
      fc.property(
        wideManifest.chain((files) =>
          fc.tuple(fc.constant(files), fc.shuffledSubarray(files, { minLength: files.length })),
        ),
        ([files, shuffled]) => {
          assert.equal(releaseIdOf(shuffled), releaseIdOf(files));
          assert.match(releaseIdOf(files), /^[0-9a-f]{24}$/);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  test("changes when any field of any file changes, or a file is added or removed", () => {
    const change = fc.constantFrom("path", "size", "mode", "sha256", "drop", "add");
    fc.assert(
      fc.property(
        wideManifest,
        fc.nat(),
        change,
        anyPath,
        fc.nat({ max: 2 ** 40 }),
        fc.stringMatching(/^[0-9a-f]{64}$/),
        (files, pick, what, newPath, newSize, newSha) => {
          const i = pick % files.length;
          const f = files[i]!;
          const changed = files.map((x) => ({ ...x }));
          switch (what) {
            case "path":
              fc.pre(!files.some((x) => x.path === newPath));
              changed[i]!.path = newPath;
              break;
            case "size":
              fc.pre(newSize !== f.size);
              changed[i]!.size = newSize;
              break;
            case "mode":
              changed[i]!.mode = f.mode === 0o644 ? 0o755 : 0o644;
              break;
            case "sha256":
              fc.pre(newSha !== f.sha256);
              changed[i]!.sha256 = newSha;
              break;
            case "drop":
              changed.splice(i, 1);
              break;
            case "add":
              fc.pre(!files.some((x) => x.path === newPath));
              changed.push({ path: newPath, size: newSize, mode: 0o644, sha256: newSha });
              break;
          }
          assert.notEqual(releaseIdOf(changed), releaseIdOf(files), `${what} of ${JSON.stringify(f.path)}`);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

// ---- the inventory loader -------------------------------------------------------------------------

const YAML_TOKENS = [
  "project:",
  "entry:",
  "root:",
  "include:",
  "exclude:",
  "name:",
  "python:",
  "defaults:",
  "user:",
  "identityFile:",
  "venv:",
  "deployDir:",
  "port:",
  "host:",
  "workers:",
  "leader:",
  "concurrency:",
  "knownHosts:",
  "keep:",
  "\n",
  "\n  ",
  "\n    ",
  "  ",
  " ",
  "- ",
  "-",
  ":",
  ": ",
  "?",
  ",",
  "[",
  "]",
  "{",
  "}",
  "'",
  '"',
  "#",
  "|",
  ">",
  "&a ",
  "*a",
  "&b ",
  "*b",
  "<<: ",
  "!!str ",
  "!!int ",
  "!!binary ",
  "!!set ",
  "!!map ",
  "!!seq ",
  "!!float ",
  "!!timestamp ",
  "!custom ",
  "---\n",
  "...\n",
  "%YAML 1.2\n",
  "%TAG ! tag:x,2000:\n",
  "~",
  "null",
  "true",
  "no",
  "1e400",
  "-1",
  "0",
  "65536",
  "22",
  "0x16",
  "0o26",
  ".inf",
  ".nan",
  "w1",
  "10.0.0.1",
  "-m workflow.main",
  "x.py",
  "~/venv",
  "/",
  "..",
  "\t",
  "\\",
  "\0",
  "\u00e9",
  "\u{1F600}",
  "\uFEFF",
  "\r\n",
  "__proto__",
  "constructor",
  "toString",
  "@",
  "`",
  "%",
];

const yamlish = fc.array(fc.constantFrom(...YAML_TOKENS), { maxLength: 60 }).map((t) => t.join(""));
const inventoryShaped = fc
  .record(
    {
      project: fc.oneof(
        fc.anything(),
        fc.record(
          { entry: fc.anything(), root: fc.anything(), include: fc.anything(), exclude: fc.anything() },
          { requiredKeys: [] },
        ),
      ),
      defaults: fc.oneof(
        fc.anything(),
        fc.dictionary(
          fc.constantFrom("user", "port", "venv", "identityFile", "deployDir", "keep", "bogus"),
          fc.anything(),
        ),
      ),
      workers: fc.oneof(
        fc.anything(),
        fc.array(
          fc.oneof(
            fc.string(),
            fc.dictionary(
              fc.constantFrom(
                "host",
                "port",
                "name",
                "user",
                "venv",
                "deployDir",
                "identityFile",
                "knownHosts",
                "bogus",
              ),
              fc.oneof(fc.string(), fc.integer(), fc.double(), fc.anything()),
            ),
          ),
          { maxLength: 4 },
        ),
      ),
      leader: fc.anything(),
      concurrency: fc.anything(),
    },
    { requiredKeys: [] },
  )
  .map((doc) => stringify(doc));
/** A valid value most of the time, anything now and then: reaches the checks behind the first ones. */
const mostly = <T>(valid: fc.Arbitrary<T>) =>
  fc.oneof(
    { arbitrary: valid, weight: 12 },
    { arbitrary: fc.anything() as fc.Arbitrary<unknown>, weight: 1 },
  );
const nodeFields = {
  port: mostly(fc.integer({ min: 1, max: 65535 })),
  user: mostly(fc.constantFrom("ubuntu", "root", "me")),
  venv: mostly(fc.constantFrom("~/venv", "/opt/venv", "venv")),
  deployDir: mostly(fc.constantFrom("~/deploy", "/srv/deploy")),
  acceptNewHostKeys: mostly(fc.boolean()),
  connectTimeout: mostly(fc.integer({ min: 1, max: 120 })),
  knownHosts: mostly(fc.constantFrom("~/.ssh/known_hosts", "/dev/null")),
  jump: mostly(
    fc.oneof(
      {
        arbitrary: fc.constantFrom("bastion", "me@gw:2222,login", "none", "w1", "[::1]:22", "%h-gw"),
        weight: 12,
      },
      { arbitrary: fc.constantFrom("a,b,a", "x:0", "a,,b", "%x"), weight: 1 },
      { arbitrary: fc.string({ maxLength: 30 }), weight: 1 },
    ),
  ),
};
const hostName = fc.constantFrom("w1", "w2", "10.0.0.11", "node-3.example.org", "::1", "h");
const nearlyValid = fc
  .record(
    {
      project: mostly(
        fc.record(
          {
            entry: mostly(fc.constantFrom("-m workflow.main", "userScript.py", "-m a.b.c")),
            root: mostly(fc.constantFrom(".", "src", "/tmp")),
            include: mostly(fc.array(fc.constantFrom("data/*.csv", "**/*.json"), { maxLength: 2 })),
            exclude: mostly(fc.array(fc.constantFrom("tests/**", "*.tmp"), { maxLength: 2 })),
            name: mostly(fc.constantFrom("my_project", "p")),
          },
          { requiredKeys: [] },
        ),
      ),
      defaults: mostly(fc.record(nodeFields, { requiredKeys: [] })),
      concurrency: mostly(fc.integer({ min: 1, max: 64 })),
      workers: mostly(
        fc.array(
          fc.oneof(
            hostName,
            fc.record({ host: mostly(hostName), ...nodeFields }, { requiredKeys: ["host"] }),
          ),
          { maxLength: 4 },
        ),
      ),
    },
    { requiredKeys: ["workers"] },
  )
  .map((doc) => stringify(doc));
const yamlText = fc.oneof(
  { arbitrary: yamlish, weight: 2 },
  { arbitrary: inventoryShaped, weight: 1 },
  { arbitrary: nearlyValid, weight: 4 },
  { arbitrary: fc.string({ maxLength: 200, unit: "binary" }), weight: 1 },
  // stringify(undefined) is undefined: write an empty file then.
  { arbitrary: fc.anything().map((v) => stringify(v) ?? ""), weight: 1 },
);

describe("loadInventory", () => {
  let dir: string;
  before(async () => {
    dir = await tempDir("fuzz-inv");
  });
  const env = {
    HOME: "/nonexistent-home",
    USER: "tester",
    SYNC_CLUSTER_SSH_CONFIG: "/nonexistent-ssh-config",
  };

  const outcomes = { loaded: 0, refused: 0 };
  async function onlyInventoryErrors(text: string): Promise<void> {
    const file = join(dir, "sync-cluster.yaml");
    await writeFile(file, text);
    try {
      await loadInventory({ explicitPath: file, env, cwd: dir });
      outcomes.loaded++;
    } catch (error) {
      outcomes.refused++;
      assert.ok(
        error instanceof InventoryError,
        `${(error as Error)?.constructor?.name}: ${(error as Error)?.message} for ${JSON.stringify(text)}`,
      );
      assert.ok(error.message.startsWith(file), error.message);
    }
  }

  test("random YAML text either loads or throws an InventoryError", async () => {
    await fc.assert(fc.asyncProperty(yamlText, onlyInventoryErrors), { seed: SEED, numRuns: 1500 });
    if (process.env.FUZZ_VERBOSE)
      console.log(`inventories loaded ${outcomes.loaded}, refused ${outcomes.refused}`);
    // Both outcomes occur, so the loader's whole path (validation included) is exercised.
    assert.ok(outcomes.loaded > 150 && outcomes.refused > 500, JSON.stringify(outcomes));
  });

  test("alias bombs and unresolved aliases are InventoryErrors too", async () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]",
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]",
      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]",
      "workers: [*d]",
      "",
    ].join("\n");
    await onlyInventoryErrors(bomb);
    await onlyInventoryErrors("workers:\n  - host: x\n    port: *nope\n");
    await onlyInventoryErrors("workers:\n  - *w\n  - &w {host: x}\n");
  });
});

// ---- path safety in the worker agent ----------------------------------------------------------------

const MANIFEST_NAME = ".sync-cluster-manifest.json";

/** The agent's rule (safe_relative, plus the reserved name and file/directory clashes), as the test expects it. */
function shouldAccept(paths: readonly string[]): boolean {
  for (const p of paths) {
    if (p === "" || p.includes("\0") || p.startsWith("/")) return false;
    const parts = p.split("/");
    if (parts.some((x) => x === "" || x === "." || x === "..")) return false;
    if (parts.includes(MANIFEST_NAME)) return false;
  }
  const set = new Set(paths);
  for (const p of paths) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) if (set.has(parts.slice(0, i).join("/"))) return false;
  }
  return true;
}

const hostileSegment = fc.constantFrom("", ".", "..", MANIFEST_NAME, "\0", "a\0b");
const oddSegment = fc.constantFrom(
  "...",
  "~",
  "-",
  "-rf",
  ".hidden",
  "current",
  "releases",
  " ",
  "\\",
  "..\\..",
  "\n",
  "$(touch x)",
  "é",
  "\u{1F600}",
  "%2e%2e",
  "．．",
  "a",
  "b.py",
);
const segment = fc.oneof(
  { arbitrary: hostileSegment, weight: 1 },
  { arbitrary: oddSegment, weight: 3 },
  {
    arbitrary: fc.string({
      minLength: 1,
      maxLength: 8,
      unit: fc.constantFrom("a", "b", ".", "\\", " ", "-", "~", "é", "\n", "*"),
    }),
    weight: 3,
  },
);
const agentPath = fc.oneof(
  { arbitrary: fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/")), weight: 6 },
  { arbitrary: fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => `/${s.join("/")}`), weight: 1 },
  {
    arbitrary: fc.string({ maxLength: 20, unit: fc.constantFrom("a", ".", "/", "\\", "\0", "~") }),
    weight: 1,
  },
);

async function tarOf(files: readonly { path: string; content: string }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on("end", () => r()));
  for (const f of files) {
    await new Promise<void>((resolve, reject) =>
      p.entry({ name: f.path, size: Buffer.byteLength(f.content), mode: 0o644 }, f.content, (e) =>
        e ? reject(e) : resolve(),
      ),
    );
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

describe("worker agent path safety (safe_relative) with random paths", () => {
  let base: string;
  let deployDir: string;
  let canary: string;
  let agent: { session: AgentSession; child: ChildProcess };
  before(async () => {
    base = await realpath(await tempDir("fuzz-agent"));
    deployDir = join(base, "deploy");
    canary = join(base, "canary");
    await mkdir(canary);
    agent = localAgent();
    await sendRequest(agent.session, { op: "hello", deployDir, project: "p", venv: "/nonexistent-venv" });
  });
  after(() => agent.child.kill("SIGKILL"));

  test("accepted paths land inside the release, refused ones are exactly the unsafe ones", async () => {
    const { session } = agent;
    const projectDir = join(deployDir, "p");
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(agentPath, { minLength: 1, maxLength: 3 }), async (paths) => {
        const files = paths.map((path, i) => ({ path, content: `content ${i} ${JSON.stringify(path)}\n` }));
        const manifest: ManifestFile[] = files.map((f) => ({
          path: f.path,
          size: Buffer.byteLength(f.content),
          mode: 0o644,
          sha256: createHash("sha256").update(f.content).digest("hex"),
        }));
        const id = releaseIdOf(manifest);
        let status: unknown;
        try {
          const prepared = await sendRequest(session, {
            op: "prepare",
            release: id,
            base: null,
            upsert: manifest.map((f) => [f.path, f.size, f.mode, f.sha256]),
            remove: [],
            reuse: [],
          });
          status = prepared.status;
        } catch (error) {
          assert.ok(error instanceof AgentError, String(error));
          assert.equal(error.code, "bad-path", error.message);
          assert.equal(
            shouldAccept(paths),
            false,
            `refused safe paths ${JSON.stringify(paths)}: ${error.message}`,
          );
          refused++;
          return;
        }
        assert.equal(shouldAccept(paths), true, `accepted unsafe paths ${JSON.stringify(paths)}`);
        if (status === "ready") {
          const published = await sendRequest(session, { op: "upload" }, await tarOf(files));
          assert.equal(published.status, "published");
        } else {
          assert.equal(status, "switched");
        }
        accepted++;
        const release = join(projectDir, "releases", id);
        for (const f of files) {
          // In the release itself, or in a directory it shares through trees/.
          const real = await realpath(join(release, f.path));
          assert.ok(
            real.startsWith(`${release}/`) || real.startsWith(`${join(projectDir, "trees")}/`),
            `${JSON.stringify(f.path)} landed at ${real}`,
          );
          assert.equal(await readFile(real, "utf8"), f.content);
        }
        assert.deepEqual(await readdir(canary), []);
        assert.deepEqual((await readdir(base)).sort(), ["canary", "deploy"]);
        assert.deepEqual((await readdir(deployDir)).sort(), ["p"]);
      }),
      { seed: SEED, numRuns: 400 },
    );
    if (process.env.FUZZ_VERBOSE) console.log(`accepted ${accepted}, refused ${refused}`);
    // The generator must exercise both sides, or the property proves little.
    assert.ok(accepted > 100 && refused > 100, `accepted ${accepted}, refused ${refused}`);
    const leftovers = (await readdir(projectDir)).filter((n) => n.startsWith(".staging"));
    assert.deepEqual(leftovers, []);
  });
});
