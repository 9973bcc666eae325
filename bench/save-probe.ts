import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { releaseIdOf } from "../src/core/release/manifest.js";
import { buildArchive } from "../src/push/archive.js";
import { localAgent, manifestOf, prepareAndUpload, wire } from "../test/fixtures/local-agent.js";
import { makeVenv, tempDir, writeTree } from "../test/fixtures/projects.js";
import { agentSourceAt } from "./agent-at.js";
import { spread } from "./spread.js";

/**
 * `node dist/bench/save-probe.js`: what one save costs the workers, without SSH and without the
 * leader's resolving. Starts `--agents` local agents (the same code and protocol as over SSH) on
 * the local disk, publishes a 630-file project to each, then `--rounds` times publishes the
 * same one-file change to all of them at once, as watch does, and prints the time until the last
 * one has published (median, min, max). Variants run alternately, round by round:
 *   `--against REV`           the agent of git revision REV;
 *   `--durable-each-max N`    this agent with DURABLE_EACH_MAX set to N (0: a syncfs for every
 *                             push, however small).
 */

const { values: args } = parseArgs({
  options: {
    agents: { type: "string", default: "16" },
    rounds: { type: "string", default: "20" },
    against: { type: "string" },
    "durable-each-max": { type: "string" },
  },
});

const agentSource = readFileSync(join(process.cwd(), "dist", "src", "worker", "agent.py"), "utf8");
const variants: Record<string, string> = { "this agent": agentSource };
if (args.against) {
  variants[`agent of ${args.against}`] = agentSourceAt(args.against);
}
if (args["durable-each-max"] !== undefined) {
  const n = Number(args["durable-each-max"]);
  if (!Number.isInteger(n) || n < 0) throw new Error("--durable-each-max takes a whole number");
  const patched = agentSource.replace(/^DURABLE_EACH_MAX = \d+$/m, `DURABLE_EACH_MAX = ${n}`);
  if (patched === agentSource) throw new Error("this agent has no DURABLE_EACH_MAX line to change");
  variants[`DURABLE_EACH_MAX = ${n}`] = patched;
}

const agentCount = Number(args.agents);
const rounds = Number(args.rounds);
const base = await tempDir("save-probe");
const venv = join(base, "venv");
const python = await makeVenv(venv);

const project: Record<string, string> = {};
for (let p = 0; p < 30; p++) {
  project[`pkg${p}/__init__.py`] = "";
  for (let m = 0; m < 20; m++) project[`pkg${p}/sub/m${m}.py`] = `X = ${m}\n`;
}

interface Group {
  name: string;
  agents: ReturnType<typeof localAgent>[];
  content: Record<string, string>;
  release: string | null;
  ms: number[];
}

const groups: Group[] = [];
for (const [name, code] of Object.entries(variants)) {
  const group: Group = { name, agents: [], content: { ...project }, release: null, ms: [] };
  for (let i = 0; i < agentCount; i++) {
    const agent = localAgent(python, {}, code);
    await agent.session.request({
      op: "hello",
      deployDir: join(base, `deploy-${groups.length}-${i}`),
      project: "probe",
      venv,
      keep: 3,
    });
    group.agents.push(agent);
  }
  groups.push(group);
}

/** Publishes round `n`'s change (round 0: the whole project) to every agent of the group at once. */
async function publishRound(group: Group, n: number): Promise<number> {
  const changed = `pkg${n % 30}/sub/m${n % 20}.py`;
  if (group.release) group.content[changed] = `X = ${n}  # round ${n}\n`;
  const src = await tempDir("save-probe-src");
  await writeTree(src, group.content);
  const files = manifestOf(group.content);
  const release = releaseIdOf(files);
  const upsert = group.release ? files.filter((f) => f.path === changed) : files;
  const archive = await buildArchive(src, upsert);
  const started = performance.now();
  await Promise.all(
    group.agents.map(({ session }) =>
      prepareAndUpload(
        session,
        { release, base: group.release, upsert: wire(upsert), remove: [], reuse: [] },
        archive,
      ),
    ),
  );
  const ms = performance.now() - started;
  group.release = release;
  await rm(src, { recursive: true, force: true });
  return ms;
}

for (const group of groups) await publishRound(group, 0);
for (let n = 1; n <= rounds; n++) {
  // Each round starts with another variant, so that none always runs on the warmest cache.
  const order = groups.map((_, i) => groups[(i + n) % groups.length]!);
  for (const group of order) group.ms.push(await publishRound(group, n));
}

console.log(`${agentCount} agents, one-file change to all at once, ${rounds} rounds:`);
for (const g of groups) console.log(`  ${g.name.padEnd(28)} ${spread(g.ms)}`);
for (const g of groups) for (const a of g.agents) a.child.kill();
await rm(base, { recursive: true, force: true });
