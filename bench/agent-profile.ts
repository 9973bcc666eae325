import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { compareByPath, type ManifestFile, releaseIdOf } from "../src/core/release/manifest.js";
import { buildArchive } from "../src/push/archive.js";
import { localAgent, prepareAndUpload, wire } from "../test/fixtures/local-agent.js";
import { agentSourceAt } from "./agent-at.js";
import { lowerMedian, spread } from "./spread.js";
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

/** CPU time (user + system, ms) a process has used: wall time on a shared, loaded machine is noise. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One cold push into `deployDir`: wall and agent CPU milliseconds of prepare + upload. */
async function coldPush(
  deployDir: string,
  files: ManifestFile[],
  archive: Buffer,
  env: NodeJS.ProcessEnv = {},
  code?: string,
): Promise<{ wall: number; cpu: number }> {
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
    const cpuBefore = cpuMs(child.pid!);
    await prepareAndUpload(
      session,
      { release: releaseIdOf(files), base: null, upsert: wire(files), remove: [], reuse: [] },
      archive,
    );
    return { wall: performance.now() - started, cpu: cpuMs(child.pid!) - cpuBefore };
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
    const agent = { wall: [] as number[], cpu: [] as number[] };
    const before = { wall: [] as number[], cpu: [] as number[] };
    const tar = { wall: [] as number[], cpu: [] as number[] };
    const oldCode = args.against ? agentSourceAt(args.against) : undefined;
    const keep = (into: typeof agent, m: { wall: number; cpu: number }, i: number) => {
      if (i < 0) return;
      into.wall.push(m.wall);
      into.cpu.push(m.cpu);
    };
    // Alternating, after one warm-up each, so the page cache and the CPU's other load hit all alike.
    for (let i = -1; i < Number(args.runs); i++) {
      keep(agent, await coldPush(join(tmp, `deploy-${i + 1}`), files, archive), i);
      if (oldCode) keep(before, await coldPush(join(tmp, `old-${i + 1}`), files, archive, {}, oldCode), i);
      const into = join(tmp, `tar-${i + 1}`);
      const started = performance.now();
      const timesFile = join(tmp, "tar-times.txt");
      execFileSync("/usr/bin/time", [
        "-f",
        "%U %S",
        "-o",
        timesFile,
        "sh",
        "-c",
        `mkdir "$1" && tar -C "$1" -xf "$2"`,
        "sh",
        into,
        archivePath,
      ]);
      const [user, system] = readFileSync(timesFile, "utf8")
        .trim()
        .split("\n")
        .at(-1)!
        .split(" ")
        .map(Number);
      keep(tar, { wall: performance.now() - started, cpu: (user! + system!) * 1000 }, i);
      for (const d of [`deploy-${i + 1}`, `old-${i + 1}`, `tar-${i + 1}`])
        await rm(join(tmp, d), { recursive: true, force: true });
    }
    const line = (what: string, m: typeof agent) => `${what}: CPU ${spread(m.cpu)}; wall ${spread(m.wall)}\n`;
    process.stdout.write(line("agent, prepare + upload into an empty deploy directory", agent));
    if (oldCode)
      process.stdout.write(
        line(`agent of ${args.against}, the same`, before) +
          `this agent / that one: CPU ${(lowerMedian(agent.cpu) / lowerMedian(before.cpu)).toFixed(2)}, wall ${(lowerMedian(agent.wall) / lowerMedian(before.wall)).toFixed(2)}\n`,
      );
    process.stdout.write(line("system tar -x of the same archive (no hashing, no checks)", tar));
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
