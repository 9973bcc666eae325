import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { compareByPath, type ManifestFile, releaseIdOf } from "../src/core/manifest.js";
import { buildArchive } from "../src/push/archive.js";
import { agentCode } from "../src/transport/agent-session.js";
import { localAgent, wire } from "../test/fixtures/local-agent.js";
import { generateWorkload, type WorkloadSize } from "./workload.js";

/**
 * `node dist/bench/agent-profile.js`: where a worker spends a cold push. Runs the agent as a local
 * process (the same code and protocol as over SSH, without SSH) and publishes a workload's module
 * set into an empty deploy directory, several times; prints the agent's time for prepare + upload
 * (median, min, max), the same archive unpacked by the system's `tar` into an empty directory for
 * comparison, and cProfile's top functions of one more push (SYNC_CLUSTER_AGENT_PROFILE).
 * `--against REV` also runs the agent of git revision REV, alternating, for a before/after.
 */

const { values: args } = parseArgs({
  options: {
    size: { type: "string", default: "medium" },
    runs: { type: "string", default: "7" },
    top: { type: "string", default: "18" },
    against: { type: "string" },
  },
});

const SKIP = new Set([".git", "venv", "data", "__pycache__"]);

async function moduleSet(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await moduleSet(root, full)));
    else if (e.isFile()) out.push(relative(root, full));
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const spread = (xs: number[]) =>
  `${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

/** One cold push into `deployDir`; returns the milliseconds of prepare + upload. */
async function coldPush(
  deployDir: string,
  files: ManifestFile[],
  archive: Buffer,
  env: NodeJS.ProcessEnv = {},
  code: string = agentCode(),
): Promise<number> {
  const { session, child } = localAgent(undefined, env, code);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    const hello = await session.request({
      op: "hello",
      deployDir,
      project: "bench",
      venv: join(deployDir, "venv"),
    });
    if (!hello.ok) throw new Error(`hello: ${hello.message}`);
    const started = performance.now();
    const prepared = await session.request({
      op: "prepare",
      release: releaseIdOf(files),
      base: null,
      upsert: wire(files),
      remove: [],
      reuse: [],
    });
    if (prepared.status !== "ready") throw new Error(`prepare: ${JSON.stringify(prepared)}`);
    const published = await session.request({ op: "upload" }, archive);
    if (published.status !== "published") throw new Error(`upload: ${JSON.stringify(published)}`);
    return performance.now() - started;
  } finally {
    child.stdin?.end();
    await exited;
  }
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), "sc-agent-profile-"));
  try {
    const workload = await generateWorkload(join(tmp, "project"), args.size as WorkloadSize);
    const paths = await moduleSet(workload.root);
    const files: ManifestFile[] = [];
    for (const path of paths) {
      const content = await readFile(join(workload.root, path));
      const sha256 = createHash("sha256").update(content).digest("hex");
      files.push({ path, size: content.length, mode: 0o644, sha256 });
    }
    files.sort(compareByPath);
    const archive = await buildArchive(workload.root, files);
    const archivePath = join(tmp, "archive.tar");
    await writeFile(archivePath, archive);
    const bytes = files.reduce((s, f) => s + f.size, 0);
    process.stdout.write(
      `${args.size}: ${files.length} files, ${(bytes / 1048576).toFixed(1)} MiB, archive ${(archive.length / 1048576).toFixed(1)} MiB\n`,
    );
    const agent: number[] = [];
    const tar: number[] = [];
    const before: number[] = [];
    const oldCode = args.against
      ? execFileSync("git", ["show", `${args.against}:src/worker/agent.py`]).toString()
      : undefined;
    // Alternating, after one warm-up each, so the page cache and the CPU's other load hit both alike.
    for (let i = -1; i < Number(args.runs); i++) {
      const deploy = join(tmp, `deploy-${i + 1}`);
      const ms = await coldPush(deploy, files, archive);
      const into = join(tmp, `tar-${i + 1}`);
      const started = performance.now();
      execFileSync("sh", ["-c", `mkdir "$1" && tar -C "$1" -xf "$2"`, "sh", into, archivePath]);
      const tarMs = performance.now() - started;
      const oldMs = oldCode ? await coldPush(join(tmp, `old-${i + 1}`), files, archive, {}, oldCode) : 0;
      if (i >= 0) {
        agent.push(ms);
        tar.push(tarMs);
        if (oldCode) before.push(oldMs);
      }
      await rm(join(tmp, `old-${i + 1}`), { recursive: true, force: true });
      await rm(deploy, { recursive: true, force: true });
      await rm(into, { recursive: true, force: true });
    }
    process.stdout.write(`agent, prepare + upload into an empty deploy directory: ${spread(agent)}\n`);
    if (oldCode)
      process.stdout.write(
        `agent of ${args.against}, the same: ${spread(before)}; this one / that one = ${(median(agent) / median(before)).toFixed(2)}\n`,
      );
    process.stdout.write(`system tar -x of the same archive (no hashing, no checks): ${spread(tar)}\n`);
    const stats = join(tmp, "agent.prof");
    await coldPush(join(tmp, "deploy-profiled"), files, archive, { SYNC_CLUSTER_AGENT_PROFILE: stats });
    process.stdout.write(
      execFileSync("python3", [
        "-c",
        "import pstats, sys; pstats.Stats(sys.argv[1]).sort_stats('tottime').print_stats(int(sys.argv[2]))",
        stats,
        args.top!,
      ])
        .toString()
        .split("\n")
        .filter((l) => l.trim() && !l.includes("agent.prof"))
        .join("\n") + "\n",
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
