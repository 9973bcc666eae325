import { execFile, execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { type Cluster, daemonPidIn, startCluster, type WorkerHandle } from "../test/harness/cluster.js";
import { DelayProxy } from "../test/harness/tcp-delay-proxy.js";
import { daemonPeakRssMb, stopDaemon } from "./daemon-scenario.js";
import { bytesUpDuring, throughProxies } from "./proxies.js";
import { RssSampler } from "./rss-sampler.js";
import { lineChart, type Series } from "./svg-chart.js";
import {
  type CurveFacts,
  type CurveRow,
  type CurveSample,
  curveTargetsTable,
  leaderRssMb,
  median,
  type Scenario,
} from "./targets.js";
import {
  type Context,
  clearSyncCluster,
  emptyCleared,
  parallelRsync,
  pushWithSyncCluster,
  type Sample,
  type SyncClusterTarget,
} from "./tools.js";
import { generateWorkload } from "./workload.js";

/**
 * `npm run bench -- --curve`: what a push costs the leader from 16 to 256 workers, flat and through
 * ClusterShell's gateway tree, on the medium workload. For each worker count, a cold push, a
 * 10-file change and a no-op push by: sync-cluster flat one-shot (`push --flat --no-daemon`), flat
 * through its daemon (kept running, its CPU and memory counted with the command's), through the
 * tree with each `--curve-gateways` count, and parallel-rsync; tools alternate round by round.
 * Per push: wall time, the leader's CPU (user + system of the command and every process it
 * starts, from /usr/bin/time), its peak memory (the RSS summed over its process tree, sampled
 * every 100 ms: bench/rss-sampler.ts) and the bytes it sent toward the hops it talks to directly
 * (a DelayProxy with no delay in front of each: every worker for flat pushes and parallel-rsync, the gateways
 * for the tree; bench/proxies.ts). The gateways are extra sshd workers of the same harness, not
 * counted among the workers; a worker's venv per tool keeps each tool's project apart.
 */

const run = promisify(execFile);

export interface CurveOptions {
  sizes: number[];
  gateways: number[];
  /** Timed rounds at each size (same order as sizes). */
  runs: number[];
  user: string;
  tmp: string;
  out: string;
  bin: string;
  withDaemon: boolean;
  withAnchor: boolean;
  machine: string;
  command: string;
  log: (line: string) => void;
  /**
   * Sizes measured by an earlier run on the same machine (its curve-rows.json, `--curve-merge`),
   * reported with this run's: a long curve can be finished in parts.
   */
  earlier?: { from: string; rows: CurveRow[]; daemonRssMb: CurveFacts["daemonRssMb"] };
  /** Only these tools (by name) and scenarios, e.g. to measure again one that failed (with `earlier`). */
  tools?: string[];
  scenarios?: Scenario[];
}

interface CurveTool {
  name: string;
  gateways: number;
  /** The proxies in front of the hops the leader talks to directly, with `n` workers. */
  hops(n: number): DelayProxy[];
  clear(ctx: Context): Promise<void>;
  /** Untimed, once a size before its first push (the daemon started and connected). */
  prepare?(ctx: Context): Promise<void>;
  push(ctx: Context): Promise<Sample>;
  /** Processes outside the command that work for it (the daemon): counted in its CPU and memory. */
  helpers?(): number[];
}

const SCENARIOS: Scenario[] = ["cold", "noop", "incremental"];
export const FLAT = "flat one-shot";
export const FLAT_DAEMON = "flat via daemon";
export const ANCHOR = "parallel-rsync";
export const treeName = (gateways: number) => `tree, ${gateways} gateways`;

/** utime + stime of a process, seconds (0 when it is gone). */
function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * The ssh_config every hop of the tree reads (`tree.sshOptions: -F FILE`), as the harness's
 * treeLayout writes it, but with the gateways' names on their counting proxies (only the leader
 * talks to a gateway) and the login user the flat pushes use, with a copy of the key it can read.
 */
function treeSshConfig(
  cluster: Cluster,
  gateways: WorkerHandle[],
  gatewayProxies: DelayProxy[],
  workers: WorkerHandle[],
  user: string,
): string {
  const key = join(cluster.dir, "tree_client_key");
  execFileSync("cp", [cluster.identityFile, key]);
  execFileSync("chmod", ["600", key]);
  if (user !== "root" && process.getuid?.() === 0) execFileSync("chown", [user, key]);
  const file = join(cluster.dir, "curve_ssh_config");
  const host = (w: WorkerHandle, port: number) =>
    [
      `Host ${w.name}`,
      "  HostName 127.0.0.1",
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${key}`,
      `  UserKnownHostsFile ${cluster.knownHosts}`,
      `  HostKeyAlias [127.0.0.1]:${w.port}`,
      "  StrictHostKeyChecking yes",
      "",
    ].join("\n");
  writeFileSync(
    file,
    [
      ...gateways.map((g, i) => host(g, gatewayProxies[i]!.port)),
      ...workers.map((w) => host(w, w.port)),
    ].join(""),
  );
  return file;
}

/** The inventory's `tree:` section: the first `count` gateways, the workers dealt among them in turn. */
function treeSection(gateways: WorkerHandle[], workers: WorkerHandle[], sshConfig: string) {
  const routes: Record<string, string[]> = Object.fromEntries(gateways.map((g) => [g.name, [] as string[]]));
  for (const [i, w] of workers.entries()) routes[gateways[i % gateways.length]!.name]!.push(w.name);
  return {
    root: "leader",
    sshOptions: `-F ${sshConfig}`,
    gateways: Object.fromEntries(Object.entries(routes).map(([g, names]) => [g, names.join(",")])),
  };
}

const ms = (xs: number[]) =>
  `${(median(xs) / 1000).toFixed(2)} (${(Math.min(...xs) / 1000).toFixed(2)}-${(Math.max(...xs) / 1000).toFixed(2)})`;
const spread = (xs: number[], digits: number, scale = 1) =>
  xs.length > 1
    ? `${(median(xs) / scale).toFixed(digits)} (${(Math.min(...xs) / scale).toFixed(digits)}-${(Math.max(...xs) / scale).toFixed(digits)})`
    : (median(xs) / scale).toFixed(digits);

/** Least squares y = a + b * n through the medians at each worker count. */
export function fitLine(points: { n: number; y: number }[]): { a: number; b: number } | null {
  if (points.length < 2) return null;
  const mx = points.reduce((s, p) => s + p.n, 0) / points.length;
  const my = points.reduce((s, p) => s + p.y, 0) / points.length;
  const sxx = points.reduce((s, p) => s + (p.n - mx) ** 2, 0);
  if (sxx === 0) return null;
  const b = points.reduce((s, p) => s + (p.n - mx) * (p.y - my), 0) / sxx;
  return { a: my - b * mx, b };
}

interface Metric {
  key: string;
  title: string;
  unit: string;
  of(s: CurveSample): number;
  digits: number;
  log?: boolean;
}

const METRICS: Metric[] = [
  { key: "wall", title: "wall time", unit: "s", of: (s) => s.ms / 1000, digits: 2 },
  { key: "cpu", title: "leader CPU (user + system)", unit: "s", of: (s) => s.cpuSeconds, digits: 2 },
  { key: "rss", title: "leader peak RSS (process tree)", unit: "MB", of: leaderRssMb, digits: 0 },
  {
    key: "bytes",
    title: "bytes the leader sent",
    unit: "MB",
    of: (s) => s.bytesLeader / 1e6,
    digits: 1,
    log: true,
  },
];

const SCENARIO_NAME: Record<Scenario, string> = {
  cold: "cold push",
  noop: "no-op push",
  incremental: "10-file change",
};

export async function curveRun(
  o: CurveOptions,
): Promise<{ markdown: string; facts: CurveFacts; charts: string[] }> {
  const maxGateways = Math.max(...o.gateways);
  const maxWorkers = Math.max(...o.sizes);
  o.log(`\ncurve: starting ${maxGateways} gateways and ${maxWorkers} workers (sshd each)`);
  const started = Date.now();
  const cluster = await startCluster({ workers: maxGateways + maxWorkers, user: o.user });
  const proxies: DelayProxy[] = [];
  const sampler = new RssSampler(100);
  const rows: CurveRow[] = [];
  const daemonRssMb: CurveFacts["daemonRssMb"] = [];
  const daemonDir = join(o.tmp, "curve-daemon");
  mkdirSync(daemonDir, { recursive: true, mode: 0o700 });
  const daemonCtx = { bin: o.bin } as Context;
  try {
    const gatewayPool = cluster.workers.slice(0, maxGateways);
    const workerPool = cluster.workers.slice(maxGateways);
    // Each sync-cluster tool pushes its own project into its own venv (in one venv the first
    // project's .pth would win, and push refuses that): copies of the harness's venv.
    const venvs = ["daemon", ...o.gateways.map((g) => `tree${g}`)];
    execFileSync("sh", [
      "-c",
      `for d in ${workerPool.map((w) => `'${w.dir}'`).join(" ")}; do for v in ${venvs.join(" ")}; do cp -a "$d/venv" "$d/venv-$v"; done; done`,
    ]);
    const workerProxies = await Promise.all(workerPool.map((w) => new DelayProxy(w.port, 0).start()));
    const gatewayProxies = await Promise.all(gatewayPool.map((g) => new DelayProxy(g.port, 0).start()));
    proxies.push(...workerProxies, ...gatewayProxies);
    const reached = throughProxies(cluster, workerPool, workerProxies);
    const sshConfig = treeSshConfig(cluster, gatewayPool, gatewayProxies, workerPool, o.user);
    o.log(`curve: ${cluster.workers.length} sshd up in ${((Date.now() - started) / 1000).toFixed(0)} s`);

    const workload = await generateWorkload(join(o.tmp, "curve", "bench"), "medium");
    const resolved = JSON.parse(
      execFileSync(o.bin, ["resolve", "--json", "-m", "workflow.main", "--python", "/usr/bin/python3"], {
        cwd: workload.root,
        env: { ...process.env, PYTHONPATH: "" },
        maxBuffer: 1 << 28,
      }).toString(),
    ) as { files: { path: string; size: number }[] };
    const fileList = join(o.tmp, "curve-files.txt");
    await writeFile(fileList, `${resolved.files.map((f) => f.path).join("\n")}\n`);
    o.log(
      `curve: medium workload, ${resolved.files.length} files, ${(resolved.files.reduce((s, f) => s + f.size, 0) / 1048576).toFixed(1)} MiB shipped`,
    );

    const project = (name: string) => ({
      root: workload.root,
      entry: "-m workflow.main",
      name,
      python: "/usr/bin/python3",
      batchSystem: "single_machine",
    });
    const defaults = { user: o.user, identityFile: cluster.identityFile, knownHosts: cluster.knownHosts };
    const flatInventory = (n: number, name: string, venvSuffix: string, daemon: number | "off") => {
      const path = join(o.tmp, `curve-${name}-${n}.yaml`);
      writeFileSync(
        path,
        stringify({
          project: project(name),
          defaults,
          daemon,
          workers: reached.slice(0, n).map((w) => ({
            name: w.name,
            host: "127.0.0.1",
            port: w.port,
            venv: w.venv + venvSuffix,
            deployDir: w.deployDir,
          })),
        }),
      );
      return path;
    };
    // Every node of the tree has the same venv and deploy directory (under its HOME): their
    // batches are the same, so nodes share one ClusterShell run (the release leaves once per gateway).
    const treeInventory = (n: number, gateways: number) => {
      const path = join(o.tmp, `curve-tree${gateways}-${n}.yaml`);
      writeFileSync(
        path,
        stringify({
          project: project(`curve-tree${gateways}`),
          defaults: { ...defaults, venv: `~/venv-tree${gateways}`, deployDir: "~/deploy" },
          daemon: "off",
          workers: workerPool.slice(0, n).map((w) => ({ name: w.name, host: "127.0.0.1", port: w.port })),
          tree: treeSection(gatewayPool.slice(0, gateways), workerPool.slice(0, n), sshConfig),
        }),
      );
      return path;
    };

    const syncTool = (
      name: string,
      gateways: number,
      target: (ctx: Context) => SyncClusterTarget,
    ): CurveTool => ({
      name,
      gateways,
      hops: (n) => (gateways > 0 ? gatewayProxies.slice(0, gateways) : workerProxies.slice(0, n)),
      clear: (ctx) => clearSyncCluster(ctx, target(ctx)),
      push: (ctx) => pushWithSyncCluster(ctx, target(ctx)),
    });
    const noDaemon = join(o.tmp, "curve-no-daemon");
    mkdirSync(noDaemon, { recursive: true, mode: 0o700 });
    const tools: CurveTool[] = [
      syncTool(FLAT, 0, (ctx) => ({
        inventory: flatInventory(ctx.workers.length, "curve-flat", "", "off"),
        project: "curve-flat",
        cache: "cache-curve-flat",
        env: { SYNC_CLUSTER_DAEMON_DIR: noDaemon },
        args: ["--flat", "--no-daemon"],
      })),
    ];
    if (o.withDaemon) {
      const target = (ctx: Context): SyncClusterTarget => ({
        inventory: flatInventory(ctx.workers.length, "curve-daemon", "-daemon", 600),
        project: "curve-daemon",
        cache: "cache-curve-daemon",
        env: { SYNC_CLUSTER_DAEMON_DIR: daemonDir },
      });
      tools.push({
        ...syncTool(FLAT_DAEMON, 0, target),
        async prepare(ctx) {
          // A fresh daemon for each size, connected to every worker before the first timed push.
          await stopDaemon(daemonCtx, daemonDir);
          const t = target(ctx);
          // `status` goes through the daemon (starting it) to every worker; it exits non-zero while
          // a worker lacks the project, which is no failure here: only a daemon that did not start is.
          const said = await run(o.bin, ["status", "-i", t.inventory], {
            env: { ...process.env, PYTHONPATH: "", XDG_CACHE_HOME: join(o.tmp, t.cache), ...t.env },
            maxBuffer: 1 << 26,
          }).then(
            () => "",
            (error: Error & { stderr?: string }) => error.stderr ?? error.message,
          );
          if (!daemonPidIn(daemonDir)) o.log(`  the daemon did not start: ${said.slice(-400)}`);
        },
        helpers: () => {
          const pid = daemonPidIn(daemonDir);
          return pid ? [pid] : [];
        },
      });
    }
    for (const g of [...o.gateways].sort((a, b) => a - b))
      tools.push(
        syncTool(treeName(g), g, (ctx) => ({
          inventory: treeInventory(ctx.workers.length, g),
          project: `curve-tree${g}`,
          cache: `cache-curve-tree${g}`,
          env: { SYNC_CLUSTER_DAEMON_DIR: noDaemon },
        })),
      );
    if (o.withAnchor)
      tools.push({
        name: ANCHOR,
        gateways: 0,
        hops: (n) => workerProxies.slice(0, n),
        clear: (ctx) => parallelRsync.clear(ctx),
        push: (ctx) => parallelRsync.push(ctx),
      });

    if (o.tools) {
      const unknown = o.tools.filter((name) => !tools.some((t) => t.name === name));
      if (unknown.length)
        throw new Error(
          `--curve-tools: no tool ${unknown.join(", ")} (${tools.map((t) => t.name).join(", ")})`,
        );
      tools.splice(0, tools.length, ...tools.filter((t) => o.tools!.includes(t.name)));
    }
    const scenarios = o.scenarios ?? SCENARIOS;
    const measure = async (tool: CurveTool, ctx: Context): Promise<CurveSample> => {
      const helpers = tool.helpers?.() ?? [];
      const cpuBefore = helpers.reduce((s, pid) => s + cpuSecondsOf(pid), 0);
      let sampling = false;
      const observed: Context = {
        ...ctx,
        onSpawn: (pid) => {
          sampling = true;
          sampler.begin([pid, ...helpers], [pid]);
        },
      };
      const { value, bytes } = await bytesUpDuring(tool.hops(ctx.workers.length), () => tool.push(observed));
      const memory = sampling ? await sampler.end() : { peakSumMb: 0 };
      const helperCpu = helpers.reduce((s, pid) => s + cpuSecondsOf(pid), 0) - cpuBefore;
      return {
        ...value,
        cpuSeconds: value.cpuSeconds + helperCpu,
        bytesLeader: bytes,
        treeRssMb: memory.peakSumMb,
      };
    };

    let edits = 0;
    for (const [sizeIndex, n] of o.sizes.entries()) {
      const runs = o.runs[sizeIndex] ?? 1;
      const ctx: Context = {
        cluster,
        workers: reached.slice(0, n),
        root: workload.root,
        inventory: "",
        fileList,
        user: o.user,
        bin: o.bin,
        tmp: o.tmp,
        oneWayMs: 0,
      };
      const sizeStarted = Date.now();
      o.log(`\ncurve: ${n} workers, ${runs} round(s) of each scenario`);
      for (const tool of tools) await tool.prepare?.(ctx);
      // One untimed round before the first size's timed ones: the leader's caches, the disk
      // (not when this run completes an earlier one).
      if (sizeIndex === 0 && !o.earlier)
        for (const tool of tools) {
          await tool.clear(ctx);
          const s = await measure(tool, ctx);
          if (!s.ok) o.log(`  warm-up ${tool.name} FAILED: ${s.error}`);
        }
      for (const scenario of scenarios) {
        const samples = new Map<string, CurveSample[]>(tools.map((t) => [t.name, []]));
        for (let round = 0; round < runs; round++) {
          if (scenario === "incremental") {
            for (let i = 0; i < 10; i++)
              appendFileSync(
                join(workload.root, workload.modules[(edits * 10 + i) % workload.modules.length]!),
                `# edit ${edits}.${i}\n`,
              );
            edits++;
          }
          // The order rotates round by round and size by size, so no tool always goes first.
          const order = tools.map((_, i) => tools[(i + round + sizeIndex) % tools.length]!);
          for (const tool of order) {
            if (scenario === "cold") await tool.clear(ctx);
            const s = await measure(tool, ctx);
            samples.get(tool.name)!.push(s);
            o.log(
              `  ${scenario.padEnd(11)} ${String(n).padStart(3)} workers  ${tool.name.padEnd(18)} ${s.ok ? `${(s.ms / 1000).toFixed(2)} s, CPU ${s.cpuSeconds.toFixed(2)} s, RSS ${leaderRssMb(s).toFixed(0)} MB (largest process ${s.peakRssMb.toFixed(0)}), sent ${(s.bytesLeader / 1e6).toFixed(2)} MB` : `FAILED: ${s.error}`}`,
            );
          }
        }
        if (scenario === "cold") await emptyCleared(ctx);
        for (const tool of tools)
          rows.push({
            scenario,
            workers: n,
            tool: tool.name,
            gateways: tool.gateways,
            samples: samples.get(tool.name)!,
          });
      }
      if (tools.some((t) => t.name === FLAT_DAEMON)) {
        const mb = daemonPeakRssMb(daemonDir);
        daemonRssMb.push({ workers: n, mb });
        o.log(`  the daemon holding ${n} workers: peak RSS ${mb?.toFixed(0) ?? "?"} MB`);
      }
      // Kept as they come, so a run stopped later still leaves what it measured.
      writeFileSync(join(o.out, "curve-rows.json"), JSON.stringify({ rows, daemonRssMb }, null, 1));
      o.log(`curve: ${n} workers took ${((Date.now() - sizeStarted) / 1000).toFixed(0)} s`);
    }
  } finally {
    await stopDaemon(daemonCtx, daemonDir).catch(() => undefined);
    await sampler.close();
    await Promise.all(proxies.map((p) => p.stop()));
    await cluster.stop();
  }
  if (o.earlier) {
    // The earlier run's rows, but for those this run measured again.
    const key = (r: CurveRow) => `${r.workers}|${r.scenario}|${r.tool}`;
    const measured = new Set(rows.map(key));
    rows.unshift(...o.earlier.rows.filter((r) => !measured.has(key(r))));
    const daemonMeasured = new Set(daemonRssMb.map((d) => d.workers));
    daemonRssMb.unshift(...o.earlier.daemonRssMb.filter((d) => !daemonMeasured.has(d.workers)));
    const rank = (tool: string) =>
      tool === FLAT
        ? 0
        : tool === FLAT_DAEMON
          ? 1
          : tool === ANCHOR
            ? 1e6
            : 2 + Number(/\d+/.exec(tool)?.[0] ?? 0);
    rows.sort(
      (a, b) =>
        a.workers - b.workers ||
        SCENARIOS.indexOf(a.scenario) - SCENARIOS.indexOf(b.scenario) ||
        rank(a.tool) - rank(b.tool),
    );
    daemonRssMb.sort((a, b) => a.workers - b.workers);
  }
  const seconds = (Date.now() - started) / 1000;
  const header = [
    `Run on ${o.machine}, \`${o.command}\`, ${(seconds / 60).toFixed(1)} minutes in all.`,
    ...(o.earlier
      ? [
          `Completed in two parts on the same machine: this run measured ${o.tools ? o.tools.join(", ") : "every tool"} (${(o.scenarios ?? SCENARIOS).join(", ")}) at ${o.sizes.join(", ")} workers; every other row is from the earlier run (${o.earlier.from}).`,
        ]
      : []),
  ];
  return curveResults(rows, daemonRssMb, o.out, header);
}

/** The tables, extrapolation, targets and charts of measured rows (also `--curve-report`, from a saved curve). */
export async function curveResults(
  rows: CurveRow[],
  daemonRssMb: CurveFacts["daemonRssMb"],
  out: string,
  header: string[],
): Promise<{ markdown: string; facts: CurveFacts; charts: string[] }> {
  const packs = rows
    .filter((r) => r.scenario === "cold" && r.gateways > 0)
    .flatMap((r) => r.samples.filter((s) => s.ok && s.bytesPerWorker).map((s) => s.bytesPerWorker!));
  const packBytes = packs.length ? median(packs) : null;
  const facts: CurveFacts = { rows, packBytes, daemonRssMb };
  const charts = await curveCharts(rows, out);
  const markdown = curveMarkdown(facts, header, charts);
  return { markdown, facts, charts };
}

async function curveCharts(rows: CurveRow[], out: string): Promise<string[]> {
  const written: string[] = [];
  const tools = [...new Set(rows.map((r) => r.tool))];
  for (const scenario of SCENARIOS)
    for (const metric of METRICS) {
      const series: Series[] = tools.map((tool) => ({
        name: tool,
        points: rows
          .filter((r) => r.scenario === scenario && r.tool === tool)
          .map((r) => ({ x: r.workers, ok: r.samples.filter((s) => s.ok) }))
          .filter((p) => p.ok.length > 0)
          .map((p) => ({ x: p.x, y: median(p.ok.map(metric.of)) })),
      }));
      if (!series.some((s) => s.points.length > 1)) continue;
      const file = `curve-${metric.key}-${scenario}.svg`;
      await writeFile(
        join(out, file),
        lineChart({
          title: `${SCENARIO_NAME[scenario]}, medium: ${metric.title}`,
          xLabel: "workers",
          yLabel: `${metric.unit} (median${metric.log ? ", log scale" : ""})`,
          series,
          ...(metric.log
            ? { yLog: true, yFormat: (y: number) => (y >= 1 ? String(y) : y.toPrecision(1)) }
            : {}),
        }),
      );
      written.push(file);
    }
  return written;
}

function curveMarkdown(facts: CurveFacts, header: string[], charts: string[]): string {
  const { rows } = facts;
  const lines = [
    "# sync-cluster: the cost curve, flat and through the tree",
    "",
    ...header.flatMap((paragraph) => [paragraph, ""]),
    "The leader, the gateways and every worker share this machine (its CPU also shared with other engineers' tests). Medium workload; median (min-max) where a size had several rounds.",
    "",
    "Per push: wall time; the leader's CPU (user + system of the command and every process it starts, from /usr/bin/time; through the daemon, the daemon's CPU during the push added); the leader's peak RSS: the highest sum of VmRSS over the command's process tree (the daemon included) sampled every 100 ms, or the largest single process's peak (/usr/bin/time) if that is more; bytes the leader sent: counted by a proxy in front of each hop it talks to directly (every worker, flat and parallel-rsync; the gateways, tree), SSH included.",
    "",
  ];
  const sizes = [...new Set(rows.map((r) => r.workers))].sort((a, b) => a - b);
  for (const n of sizes) {
    lines.push(
      `## ${n} workers`,
      "",
      "| scenario | tool | wall (s) | / parallel-rsync | leader CPU (s) | leader peak RSS (MB) | sent by the leader (MB) | per worker (KB) |",
      "|---|---|---|---|---|---|---|---|",
    );
    for (const scenario of SCENARIOS) {
      const at = rows.filter((r) => r.workers === n && r.scenario === scenario);
      const anchor = at.find((r) => r.tool === ANCHOR)?.samples.filter((s) => s.ok) ?? [];
      for (const r of at) {
        const ok = r.samples.filter((s) => s.ok);
        if (!ok.length) {
          lines.push(
            `| ${SCENARIO_NAME[scenario]} | ${r.tool} | failed: ${r.samples[0]?.error?.slice(0, 200).replaceAll("|", "/").replaceAll("\n", " ") ?? "no run"} | | | | | |`,
          );
          continue;
        }
        const wall = ok.map((s) => s.ms);
        const ratio =
          r.tool !== ANCHOR && anchor.length
            ? `${(median(wall) / median(anchor.map((s) => s.ms))).toFixed(2)}x`
            : "";
        const bytes = ok.map((s) => s.bytesLeader);
        lines.push(
          `| ${SCENARIO_NAME[scenario]} | ${r.tool} | ${ok.length > 1 ? ms(wall) : (median(wall) / 1000).toFixed(2)} | ${ratio} | ${spread(
            ok.map((s) => s.cpuSeconds),
            2,
          )} | ${spread(ok.map(leaderRssMb), 0)} | ${spread(bytes, 1, 1e6)} | ${(median(bytes) / n / 1e3).toFixed(0)} |`,
        );
      }
    }
    const daemon = facts.daemonRssMb.find((d) => d.workers === n);
    if (daemon)
      lines.push(
        "",
        `The flat daemon holding ${n} workers after these pushes: peak RSS ${daemon.mb?.toFixed(0) ?? "?"} MB.`,
      );
    lines.push("");
  }
  if (facts.packBytes !== null)
    lines.push(
      `The pack (what a cold push uploads to one node, as sync-cluster reports it): ${(facts.packBytes / 1e6).toFixed(2)} MB.`,
      "",
    );
  lines.push(...extrapolation(rows), "", ...curveTargetsTable(facts), "");
  lines.push(...charts.map((f) => `![${f}](${f})`), "");
  return lines.join("\n");
}

/** fixed + per node x nodes through the medians, and what it says for 1,000 and 10,000 nodes. */
function extrapolation(rows: CurveRow[]): string[] {
  const sizes = [...new Set(rows.map((r) => r.workers))];
  if (sizes.length < 2) return ["(one worker count: no line to extrapolate from)"];
  const lines = [
    "## Extrapolation on paper: 1,000 and 10,000 nodes",
    "",
    `EXTRAPOLATED, not measured: a least-squares line (fixed + per node x nodes) through the medians at ${sizes.sort((a, b) => a - b).join(", ")} workers, read at 1,000 and 10,000; a line that falls is read as flat (its mean). Every tool runs on all nodes at once (push -j and parallel-rsync -p = nodes), as measured. The tree keeps its gateway count (each gateway then serves 250 or 2,500 nodes, ClusterShell's fanout 64 at a time). Wall time here includes every worker's work on the same two cores, so its line is this machine's, not a cluster's, where each node works on its own CPU.`,
    "",
    "| scenario | tool | wall: fixed + per node | 1,000 | 10,000 | CPU: fixed + per node | 1,000 | 10,000 | RSS: fixed + per node | 1,000 | 10,000 | sent: fixed + per node | 1,000 | 10,000 |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  const tools = [...new Set(rows.map((r) => r.tool))];
  for (const scenario of SCENARIOS)
    for (const tool of tools) {
      const cells: string[] = [];
      for (const metric of METRICS) {
        const points = rows
          .filter((r) => r.scenario === scenario && r.tool === tool)
          .map((r) => ({ n: r.workers, ok: r.samples.filter((s) => s.ok) }))
          .filter((p) => p.ok.length > 0)
          .map((p) => ({ n: p.n, y: median(p.ok.map(metric.of)) }));
        const line = fitLine(points);
        if (!line) {
          cells.push("-", "-", "-");
          continue;
        }
        // A line that falls (noise, or a cost that does not grow with nodes) is read as flat: the mean.
        const flat = line.b < 0;
        const fit = flat ? { a: points.reduce((t, p) => t + p.y, 0) / points.length, b: 0 } : line;
        const perNode = flat
          ? "0 (no growth measured)"
          : metric.unit === "MB"
            ? `${(fit.b * 1000).toFixed(1)} KB`
            : `${(fit.b * 1000).toFixed(1)} ms`;
        const at = (n: number) => Math.max(0, fit.a + fit.b * n);
        const fmt = (v: number) =>
          metric.unit === "MB" && v >= 1000
            ? `${(v / 1000).toFixed(2)} GB`
            : `${v.toFixed(metric.digits === 0 ? 0 : 1)} ${metric.unit}`;
        cells.push(
          `${fit.a.toFixed(metric.digits)} ${metric.unit} + ${perNode}`,
          fmt(at(1000)),
          fmt(at(10000)),
        );
      }
      lines.push(`| ${SCENARIO_NAME[scenario]} | ${tool} | ${cells.join(" | ")} |`);
    }
  return lines;
}
