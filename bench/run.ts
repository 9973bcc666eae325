import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse, stringify } from "yaml";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../test/harness/cluster.js";
import { DelayProxy } from "../test/harness/tcp-delay-proxy.js";
import { whyClusterShellUnavailable } from "../test/harness/tree-cluster.js";
import { curveResults, curveRun } from "./curve.js";
import {
  asFirstPushes,
  daemonAvailable,
  daemonPeakRssMb,
  heldDaemonDir,
  stopDaemon,
  syncClusterViaDaemon,
} from "./daemon-scenario.js";
import { describeMachine, machineLine } from "./machine.js";
import { throughProxies } from "./proxies.js";
import { lineChart, type Series } from "./svg-chart.js";
import {
  type CurveRow,
  curveTargetsTable,
  type LatencyRow,
  median,
  percentile,
  type Row,
  type ScaleRss,
  type Scenario,
  targetsTable,
} from "./targets.js";
import {
  type Context,
  emptyCleared,
  FIRST_PUSH_DAEMON,
  PUSH_TOOLS,
  parallelRsync,
  type Sample,
  syncCluster,
  type Tool,
} from "./tools.js";
import { lsyncdLatency, syncClusterLatency } from "./watch-latency.js";
import { generateWorkload, type WorkloadSize } from "./workload.js";

/**
 * `npm run bench`: sync-cluster against parallel-rsync, an `rsync` loop under `xargs -P`,
 * `tar | ssh` and lsyncd, on the same workloads and the same local sshd workers, alternating
 * tools run by run, at every round trip of `--rtt` (a DelayProxy in front of each worker, for
 * sync-cluster and the anchors alike). Prints medians with min and max, the leader's CPU per push,
 * the machine, and the target ratios of bench/targets.ts; writes bench/results/{results.json,results.md} and
 * SVG charts. `--scale` adds a run with 64 workers. Pushes through the daemon are measured when
 * the CLI has one (bench/daemon-scenario.ts). `--curve` runs only the cost curve from 16 to 256
 * workers, flat and through ClusterShell's tree (bench/curve.ts).
 */

const USAGE = `Usage: npm run bench -- [options]
  --sizes LIST          workloads among small,medium,large (default small,medium,large)
  --workers LIST        worker counts (default 4,16)
  --runs N              timed runs per tool (default 3), after a warm-up
  --watch-samples N     saves timed per watch measurement (default 25)
  --watch-workers LIST  more worker counts at which watch alone is measured (medium, loopback;
                        default 64; "" for none)
  --rtt LIST            round trips in ms through a delay proxy (default 0,20)
  --scale               add 8 to 64 workers and the leader's RSS with 64
  --scale-workers LIST  worker counts of --scale (default 8,16,32,64)
  --curve               only the cost curve (bench/curve.ts): medium workload, flat one-shot,
                        flat through the daemon, through ClusterShell's tree and parallel-rsync,
                        wall time, leader CPU, peak RSS and bytes sent, by worker count
  --curve-sizes LIST    worker counts of --curve (default 16,64,128,256)
  --curve-gateways LIST gateway counts of the tree in --curve (default 4,16)
  --curve-runs LIST     timed rounds at each of --curve-sizes (default 3 up to 16 workers, 2 up to 64, then 1)
  --curve-merge FILE    report an earlier run's curve-rows.json with this run's rows (which replace its own)
  --curve-tools LIST    only these tools of --curve, separated by ";" (e.g. "flat one-shot;tree, 4 gateways")
  --curve-scenarios LIST only these of cold,noop,incremental
  --curve-report FILE   write the results of a saved curve again, measuring nothing
  --out DIR             where results.md, results.json and the charts go (default bench/results)`;

const OPTIONS = {
  help: { type: "boolean", default: false },
  sizes: { type: "string", default: "small,medium,large" },
  workers: { type: "string", default: "4,16" },
  runs: { type: "string", default: "3" },
  "watch-samples": { type: "string", default: "25" },
  "watch-workers": { type: "string", default: "64" },
  scale: { type: "boolean", default: false },
  "scale-workers": { type: "string", default: "8,16,32,64" },
  rtt: { type: "string", default: "0,20" },
  curve: { type: "boolean", default: false },
  "curve-sizes": { type: "string", default: "16,64,128,256" },
  "curve-gateways": { type: "string", default: "4,16" },
  "curve-runs": { type: "string" },
  "curve-merge": { type: "string" },
  "curve-tools": { type: "string" },
  "curve-scenarios": { type: "string" },
  "curve-report": { type: "string" },
  /** Where results.md, results.json and the charts go (a quick trial run can keep bench/results). */
  out: { type: "string", default: "bench/results" },
} as const;

function parsedArgs() {
  try {
    return parseArgs({ options: OPTIONS }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

const args = parsedArgs();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

const BIN = join(process.cwd(), "bin", "sync-cluster");
const RESULTS = resolve(args.out!);
const USER = "scbench";
/** The anchors' commands and the Debian packages that bring them (bench/install-anchors installs them all). */
const ANCHORS: Record<string, string> = { "parallel-rsync": "pssh", rsync: "rsync", lsyncd: "lsyncd" };

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The anchors missing on this machine, each said with the way to install it; none is skipped silently. */
function missingAnchors(): string[] {
  const missing = Object.keys(ANCHORS).filter((command) => !onPath(command));
  if (missing.length)
    log(
      `MISSING anchors, not measured: ${missing.map((c) => `${c} (Debian package ${ANCHORS[c]})`).join(", ")}.\n` +
        "Install them with: sudo bench/install-anchors   (or: sudo apt-get install " +
        `${[...new Set(missing.map((c) => ANCHORS[c]))].join(" ")})`,
    );
  return missing;
}

/** Workers log in as a plain /bin/sh user, as on a cluster node (root's shell here runs pyenv on every login). */
function ensureUser(): string {
  if (process.getuid?.() !== 0) return process.env.USER ?? "root";
  try {
    execFileSync("id", [USER], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["-m", "-s", "/bin/sh", USER]);
  }
  execFileSync("usermod", ["-p", "*", USER]);
  return USER;
}

async function editFiles(root: string, modules: string[], count: number, round: number): Promise<void> {
  const { appendFile } = await import("node:fs/promises");
  for (let i = 0; i < count; i++)
    await appendFile(join(root, modules[(round * count + i) % modules.length]!), `# edit ${round}.${i}\n`);
}

/**
 * The workers as reached through a DelayProxy each (10 ms each way for a 20 ms round trip): the
 * same sshd, host key and directories on another port, which known_hosts learns, so sync-cluster
 * and the anchors' ssh alike connect through the proxy.
 */
async function delayedWorkers(
  cluster: Cluster,
  rttMs: number,
): Promise<{ workers: WorkerHandle[]; proxies: DelayProxy[] }> {
  if (rttMs === 0) return { workers: cluster.workers, proxies: [] };
  const proxies = await Promise.all(cluster.workers.map((w) => new DelayProxy(w.port, rttMs / 2).start()));
  const workers = throughProxies(cluster, cluster.workers, proxies);
  return { workers, proxies };
}

function contextFor(
  cluster: Cluster,
  workers: WorkerHandle[],
  root: string,
  tmp: string,
  user: string,
  fileList: string,
  rttMs: number,
): Context {
  // Both let pushes go through a daemon, as a user's do: the plain rows stop theirs before each
  // push, so each is a first push; "via daemon" keeps its own (bench/daemon-scenario.ts). Its
  // project has the same top-level names as the plain rows' one, so it gets a venv of its own on
  // each worker: in one venv the first project's .pth would win, and push refuses that.
  const inventoryOf = (name: string, venvSuffix: string) => {
    const path = join(tmp, `inventory-${name}-${workers.length}-${rttMs}ms.yaml`);
    cluster.writeInventory({
      workers,
      project: { root, entry: "-m workflow.main", name, python: "/usr/bin/python3" },
      extra: { daemon: 600 },
    });
    const doc = parse(readFileSync(cluster.inventoryPath, "utf8")) as { workers: { venv: string }[] };
    for (const worker of doc.workers) {
      worker.venv += venvSuffix;
      if (venvSuffix && !existsSync(worker.venv)) {
        execFileSync("/usr/bin/python3", [
          "-m",
          "venv",
          "--system-site-packages",
          "--without-pip",
          worker.venv,
        ]);
        execFileSync("chown", ["-R", `${user}:`, worker.venv]);
      }
    }
    writeFileSync(path, stringify(doc));
    return path;
  };
  return {
    cluster,
    workers,
    root,
    inventory: inventoryOf("bench", ""),
    daemonInventory: inventoryOf("bench-daemon", "-daemon"),
    fileList,
    user,
    bin: BIN,
    tmp,
    oneWayMs: rttMs / 2,
  };
}

async function runScenario(
  ctx: Context,
  scenario: Scenario,
  tools: Tool[],
  runs: number,
  edit: (round: number) => Promise<void>,
): Promise<Map<string, Sample[]>> {
  const out = new Map<string, Sample[]>(tools.map((t) => [t.name, []]));
  for (let round = -1; round < runs; round++) {
    // Round -1 is the warm-up; the tool order rotates so none always goes first.
    if (scenario === "incremental") await edit(round + 1);
    const order = tools.map((_, i) => tools[(i + Math.max(0, round)) % tools.length]!);
    for (const tool of order) {
      if (scenario === "cold") await tool.clear(ctx);
      await tool.before?.(ctx);
      const sample = await tool.push(ctx);
      if (!sample.ok) log(`  ${tool.name} FAILED: ${sample.error}`);
      if (round >= 0) out.get(tool.name)!.push(sample);
    }
  }
  if (scenario === "cold") await emptyCleared(ctx);
  return out;
}

function summarize(rows: Row[], latency: LatencyRow[], machine: string): string {
  const lines = [
    "# sync-cluster benchmark",
    "",
    `Run on ${machine}. The leader and every worker share this machine. Times in seconds: median (min-max); leader CPU: user + system seconds of the tool and every process it starts (ssh clients included), per push.`,
    "",
  ];
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${r.scenario} | ${r.size} | ${r.workers} | ${r.rttMs}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  lines.push(
    "| scenario | workload | workers | round trip | tool | time (s) | sync-cluster / tool | leader CPU per push (s) | peak RSS (MB) | bytes/worker |",
    "|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const [, group] of groups) {
    const ours = median(group.find((r) => r.tool === "sync-cluster")?.samples.map((s) => s.ms) ?? []);
    for (const r of group) {
      const ms = r.samples.map((s) => s.ms);
      const m = median(ms);
      const ratio = r.tool === "sync-cluster" ? "" : (ours / m).toFixed(2);
      const bytes = median(r.samples.map((s) => s.bytesPerWorker ?? Number.NaN));
      const cpu = r.samples.map((s) => s.cpuSeconds);
      lines.push(
        `| ${r.scenario} | ${r.size} | ${r.workers} | ${r.rttMs} ms | ${r.tool} | ${(m / 1000).toFixed(2)} (${(Math.min(...ms) / 1000).toFixed(2)}-${(Math.max(...ms) / 1000).toFixed(2)}) | ${ratio} | ${median(cpu).toFixed(2)} (${Math.min(...cpu).toFixed(2)}-${Math.max(...cpu).toFixed(2)}) | ${median(r.samples.map((s) => s.peakRssMb)).toFixed(0)} | ${Number.isNaN(bytes) ? "-" : Math.round(bytes)} |`,
      );
    }
  }
  if (latency.length) {
    lines.push(
      "",
      "## Watch latency (file written on the leader to content on every worker), ms",
      "",
      "| workload | workers | tool | samples | p50 | p95 | min | max | leader peak RSS (MB) |",
      "|---|---|---|---|---|---|---|---|---|",
    );
    for (const l of latency) {
      const ours = l.results.find((r) => r.tool === "sync-cluster watch");
      for (const r of l.results) {
        const x = r.latenciesMs;
        const ratio =
          r !== ours && ours && x.length
            ? ` (${(median(x) / median(ours.latenciesMs)).toFixed(1)}x slower)`
            : "";
        lines.push(
          x.length
            ? `| ${l.size} | ${l.workers} | ${r.tool} | ${x.length} | ${median(x).toFixed(0)}${ratio} | ${percentile(x, 95).toFixed(0)} | ${Math.min(...x).toFixed(0)} | ${Math.max(...x).toFixed(0)} | ${r.peakRssMb?.toFixed(0) ?? "-"} |`
            : `| ${l.size} | ${l.workers} | ${r.tool} | 0 | failed: ${r.error} | | | | |`,
        );
      }
    }
  }
  return `${lines.join("\n")}\n`;
}

async function charts(allRows: Row[], latency: LatencyRow[]): Promise<string[]> {
  const written: string[] = [];
  // The charts show loopback; the delayed runs are in the tables.
  const rows = allRows.filter((r) => r.rttMs === 0);
  const sizes: WorkloadSize[] = ["small", "medium", "large"];
  for (const scenario of ["cold", "noop", "incremental"] as Scenario[]) {
    const medium = rows.filter((r) => r.scenario === scenario && r.size === "medium");
    if (new Set(medium.map((r) => r.workers)).size > 1) {
      const series: Series[] = [...new Set(medium.map((r) => r.tool))].map((tool) => ({
        name: tool,
        points: medium
          .filter((r) => r.tool === tool)
          .map((r) => ({ x: r.workers, y: median(r.samples.map((s) => s.ms)) / 1000 })),
      }));
      const file = `${scenario}-by-workers.svg`;
      await writeFile(
        join(RESULTS, file),
        lineChart({
          title: `${scenario} push, medium workload`,
          xLabel: "workers",
          yLabel: "seconds (median)",
          series,
        }),
      );
      written.push(file);
    }
    const bySize = rows.filter((r) => r.scenario === scenario && r.workers === 16);
    if (new Set(bySize.map((r) => r.size)).size > 1) {
      const series: Series[] = [...new Set(bySize.map((r) => r.tool))].map((tool) => ({
        name: tool,
        points: bySize
          .filter((r) => r.tool === tool)
          .map((r) => ({ x: sizes.indexOf(r.size), y: median(r.samples.map((s) => s.ms)) / 1000 })),
      }));
      const file = `${scenario}-by-size.svg`;
      await writeFile(
        join(RESULTS, file),
        lineChart({
          title: `${scenario} push, 16 workers`,
          xLabel: "workload",
          yLabel: "seconds (median)",
          series,
          xTicks: sizes.map((s, i) => ({ x: i, label: s })),
        }),
      );
      written.push(file);
    }
  }
  if (latency.length > 1) {
    const tools = [...new Set(latency.flatMap((l) => l.results.map((r) => r.tool)))];
    const series = tools.map((tool) => ({
      name: tool,
      points: latency.flatMap((l) =>
        l.results
          .filter((r) => r.tool === tool && r.latenciesMs.length)
          .map((r) => ({ x: l.workers, y: median(r.latenciesMs) })),
      ),
    }));
    await writeFile(
      join(RESULTS, "watch-latency.svg"),
      lineChart({ title: "watch latency (p50), medium workload", xLabel: "workers", yLabel: "ms", series }),
    );
    written.push("watch-latency.svg");
  }
  return written;
}

async function scaleRun(
  user: string,
  tmp: string,
  workerCounts: number[],
  runs: number,
  withDaemon: boolean,
): Promise<{ markdown: string; rss: ScaleRss }> {
  const max = Math.max(...workerCounts);
  log(`\nscale: starting ${max} workers`);
  const cluster = await startCluster({ workers: max, user });
  const lines = [
    "",
    "## Scale (medium workload, concurrency 16)",
    "",
    "| workers | tool | cold (s) | incremental (s) |",
    "|---|---|---|---|",
  ];
  const points: { n: number; cold: number; incr: number }[] = [];
  const rss: ScaleRss = { workers: max, watchMb: null, daemonMb: null };
  try {
    const workload = await generateWorkload(join(tmp, "scale", "bench"), "medium");
    const fileList = join(tmp, "scale-files.txt");
    const resolved = JSON.parse(
      execFileSync(BIN, ["resolve", "--json", "-m", "workflow.main", "--python", "/usr/bin/python3"], {
        cwd: workload.root,
        env: { ...process.env, PYTHONPATH: "" },
        maxBuffer: 1 << 28,
      }).toString(),
    ) as { files: { path: string }[] };
    await writeFile(fileList, resolved.files.map((f) => f.path).join("\n") + "\n");
    for (const n of workerCounts) {
      // Fixed concurrency, so the time shows how the per-worker cost adds up.
      const ctx = {
        ...contextFor(cluster, cluster.workers.slice(0, n), workload.root, tmp, user, fileList, 0),
        concurrency: 16,
      };
      // One-shot pushes, as in the main table: the daemon a push starts is stopped before the next.
      const tools = [withDaemon ? asFirstPushes(syncCluster) : syncCluster, parallelRsync];
      const cold = await runScenario(ctx, "cold", tools, runs, async () => {});
      const incr = await runScenario(ctx, "incremental", tools, runs, (round) =>
        editFiles(workload.root, workload.modules, 10, 1000 + n * 10 + round),
      );
      for (const t of tools) {
        const c = median(cold.get(t.name)!.map((s) => s.ms)) / 1000;
        const i = median(incr.get(t.name)!.map((s) => s.ms)) / 1000;
        lines.push(`| ${n} | ${t.name} | ${c.toFixed(2)} | ${i.toFixed(2)} |`);
        log(`  ${n} workers ${t.name}: cold ${c.toFixed(2)} s, incremental ${i.toFixed(2)} s`);
        if (t.name === "sync-cluster") points.push({ n, cold: c, incr: i });
      }
    }
    const ctx = contextFor(cluster, cluster.workers, workload.root, tmp, user, fileList, 0);
    const watch = await syncClusterLatency(ctx, workload.modules[0]!, 5);
    rss.watchMb = watch.peakRssMb;
    if (withDaemon) {
      // The daemon holding every worker: one push through it to all of them, then its peak RSS.
      const pushed = await syncClusterViaDaemon.push(ctx);
      rss.daemonMb = pushed.ok ? daemonPeakRssMb(heldDaemonDir(ctx)) : null;
      await stopDaemon(ctx, heldDaemonDir(ctx));
      await stopDaemon(ctx, join(ctx.tmp, FIRST_PUSH_DAEMON));
      lines.push(
        "",
        `Peak RSS of the daemon holding ${max} workers: ${rss.daemonMb?.toFixed(0) ?? `not measured (${pushed.error})`} MB.`,
      );
    }
    lines.push(
      "",
      `Leader peak RSS while watching ${max} workers (watch and its daemon): ${watch.peakRssMb?.toFixed(0) ?? "?"} MB (p50 latency ${median(watch.latenciesMs).toFixed(0)} ms).`,
    );
    log(
      `  watch with ${max} workers: peak RSS ${watch.peakRssMb?.toFixed(0)} MB, p50 ${median(watch.latenciesMs).toFixed(0)} ms`,
    );
    // Least squares t = a + b*n, from the measured points, extrapolated to 1,000 workers.
    const fit = (ys: number[]) => {
      const xs = points.map((p) => p.n);
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
      const my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const b =
        xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
      return { a: my - b * mx, b };
    };
    if (points.length > 1) {
      const c = fit(points.map((p) => p.cold));
      const i = fit(points.map((p) => p.incr));
      lines.push(
        "",
        `Estimate for 1,000 workers from these points (t = a + b * workers, all on this one 2-core machine, so the workers' CPU is counted too): cold ${(c.a + c.b * 1000).toFixed(0)} s (${(c.b * 1000).toFixed(0)} ms per worker), incremental ${(i.a + i.b * 1000).toFixed(0)} s (${(i.b * 1000).toFixed(0)} ms per worker). On real nodes each worker's share runs on its own machine and the leader's per-worker cost (SSH handshake, one archive write) is what remains.`,
      );
    }
    const series: Series[] = [
      { name: "cold", points: points.map((p) => ({ x: p.n, y: p.cold })) },
      { name: "incremental", points: points.map((p) => ({ x: p.n, y: p.incr })) },
    ];
    await writeFile(
      join(RESULTS, "scale.svg"),
      lineChart({
        title: "sync-cluster push time vs workers (concurrency 16)",
        xLabel: "workers",
        yLabel: "seconds",
        series,
      }),
    );
  } finally {
    await cluster.stop();
  }
  return { markdown: lines.join("\n"), rss };
}

/** Cold, no-op and 10-file incremental pushes at one size, worker count and round trip. */
async function pushScenarios(
  ctx: Context,
  tools: Tool[],
  at: { size: WorkloadSize; rttMs: number },
  runs: number,
  edit: () => Promise<void>,
): Promise<Row[]> {
  const rows: Row[] = [];
  const n = ctx.workers.length;
  for (const scenario of ["cold", "noop", "incremental"] as Scenario[]) {
    const results = await runScenario(ctx, scenario, tools, runs, edit);
    const ours = median(results.get("sync-cluster")!.map((s) => s.ms));
    for (const [tool, samples] of results) {
      rows.push({ scenario, size: at.size, workers: n, rttMs: at.rttMs, tool, samples });
      const m = median(samples.map((s) => s.ms));
      const cpu = median(samples.map((s) => s.cpuSeconds));
      log(
        `  ${scenario.padEnd(11)} ${String(n).padStart(2)} workers ${String(at.rttMs).padStart(3)} ms  ${tool.padEnd(23)} ${(m / 1000).toFixed(2)} s (${(Math.min(...samples.map((s) => s.ms)) / 1000).toFixed(2)}-${(Math.max(...samples.map((s) => s.ms)) / 1000).toFixed(2)}), leader CPU ${cpu.toFixed(2)} s${tool === "sync-cluster" ? "" : `  (sync-cluster / ${tool} = ${(ours / m).toFixed(2)})`}`,
      );
    }
  }
  return rows;
}

async function watchLatency(ctx: Context, rel: string, missing: string[]): Promise<LatencyRow["results"]> {
  const results = [await syncClusterLatency(ctx, rel, Number(args["watch-samples"]))];
  if (!missing.includes("lsyncd"))
    results.push(await lsyncdLatency(ctx, rel, Math.min(10, Number(args["watch-samples"]))));
  for (const r of results) {
    log(
      r.latenciesMs.length
        ? `  watch       ${String(ctx.workers.length).padStart(2)} workers  ${r.tool.padEnd(18)} p50 ${median(r.latenciesMs).toFixed(0)} ms, p95 ${percentile(r.latenciesMs, 95).toFixed(0)} ms`
        : `  watch ${r.tool} FAILED: ${r.error}`,
    );
  }
  return results;
}

/**
 * `--curve-report FILE`: the results of a saved curve ({machine, parts, rows, daemonRssMb}, e.g.
 * two parts' curve-rows.json joined), written again without measuring.
 */
async function curveReport(file: string): Promise<void> {
  const saved = JSON.parse(readFileSync(file, "utf8")) as {
    machine: string;
    parts?: string[];
    rows: CurveRow[];
    daemonRssMb: { workers: number; mb: number | null }[];
  };
  await mkdir(RESULTS, { recursive: true });
  const curve = await curveResults(saved.rows, saved.daemonRssMb, RESULTS, [
    `Run on ${saved.machine}.`,
    ...(saved.parts ?? []),
    `Report: \`npm run bench -- --curve-report ${file}\`.`,
  ]);
  log(curve.markdown);
  await writeFile(join(RESULTS, "results.md"), curve.markdown);
  await writeFile(
    join(RESULTS, "results.json"),
    JSON.stringify({ machine: saved.machine, parts: saved.parts, ...curve.facts }, null, 1),
  );
}

/** `--curve`: the cost curve alone (bench/curve.ts), its results in --out. */
async function curveMain(machine: string, missing: string[], user: string): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), "sc-curve-"));
  await mkdir(RESULTS, { recursive: true });
  if (user !== "root") execFileSync("chmod", ["755", tmp]);
  const why = whyClusterShellUnavailable();
  if (why) throw new Error(`--curve measures the tree: ${why}`);
  const sizes = args["curve-sizes"]!.split(",").map(Number);
  const runs = args["curve-runs"]
    ? args["curve-runs"].split(",").map(Number)
    : sizes.map((n) => (n <= 16 ? 3 : n <= 64 ? 2 : 1));
  const withDaemon = daemonAvailable(BIN);
  if (!withDaemon) log("this sync-cluster has no `daemon` command: pushes through a daemon are not measured");
  const curve = await curveRun({
    sizes,
    gateways: args["curve-gateways"]!.split(",").map(Number),
    runs,
    user,
    tmp,
    out: RESULTS,
    bin: BIN,
    withDaemon,
    withAnchor: !missing.includes("parallel-rsync"),
    machine,
    command: `npm run bench -- ${process.argv
      .slice(2)
      .map((a) => (/\s/.test(a) ? `"${a}"` : a))
      .join(" ")}`,
    log,
    ...(args["curve-tools"] ? { tools: args["curve-tools"].split(";") } : {}),
    ...(args["curve-scenarios"] ? { scenarios: args["curve-scenarios"].split(",") as Scenario[] } : {}),
    ...(args["curve-merge"]
      ? { earlier: { from: args["curve-merge"], ...JSON.parse(readFileSync(args["curve-merge"], "utf8")) } }
      : {}),
  });
  log(`\n${curveTargetsTable(curve.facts).join("\n")}`);
  await writeFile(join(RESULTS, "results.md"), curve.markdown);
  await writeFile(
    join(RESULTS, "results.json"),
    JSON.stringify({ machine: describeMachine(), ...curve.facts }, null, 1),
  );
  await rm(tmp, { recursive: true, force: true });
  log(`\nwrote ${args.out}/results.md, results.json and ${curve.charts.length} chart(s)`);
}

async function main(): Promise<void> {
  if (args["curve-report"]) return curveReport(args["curve-report"]);
  if (!sshdAvailable()) throw new Error("the benchmark needs sshd: run .ci/install-deps");
  const machine = machineLine(describeMachine());
  log(`sync-cluster benchmark, ${machine}`);
  const missing = missingAnchors();
  const user = ensureUser();
  if (args.curve) return curveMain(machine, missing, user);
  const sizes = args.sizes!.split(",") as WorkloadSize[];
  const workerCounts = args.workers!.split(",").map(Number);
  const rtts = args.rtt!.split(",").map(Number);
  const runs = Number(args.runs);
  // watch's growth with the cluster: measured alone beyond the push rows' worker counts.
  const watchOnly =
    sizes.includes("medium") && rtts.includes(0)
      ? args["watch-workers"]!.split(",")
          .filter(Boolean)
          .map(Number)
          .filter((n) => !workerCounts.includes(n))
      : [];
  const tmp = await mkdtemp(join(tmpdir(), "sc-bench-"));
  await mkdir(RESULTS, { recursive: true });
  if (user !== "root") execFileSync("chmod", ["755", tmp]);
  const withDaemon = daemonAvailable(BIN);
  log(
    withDaemon
      ? "this sync-cluster has a daemon: measuring first pushes (none running) and later pushes through it"
      : "this sync-cluster has no `daemon` command: pushes through a daemon are not measured",
  );
  const cluster = await startCluster({ workers: Math.max(...workerCounts, ...watchOnly), user });
  const rows: Row[] = [];
  const latency: LatencyRow[] = [];
  const pushTools = PUSH_TOOLS.filter((t) => !missing.includes(t.name));
  const tools = withDaemon
    ? [...pushTools.map((t) => (t === syncCluster ? asFirstPushes(t) : t)), syncClusterViaDaemon]
    : pushTools;
  const proxies: DelayProxy[] = [];
  try {
    const reached = new Map<number, WorkerHandle[]>();
    for (const rtt of rtts) {
      const delayed = await delayedWorkers(cluster, rtt);
      proxies.push(...delayed.proxies);
      reached.set(rtt, delayed.workers);
    }
    for (const size of sizes) {
      const workload = await generateWorkload(join(tmp, size, "bench"), size);
      const resolved = JSON.parse(
        execFileSync(BIN, ["resolve", "--json", "-m", "workflow.main", "--python", "/usr/bin/python3"], {
          cwd: workload.root,
          env: { ...process.env, PYTHONPATH: "" },
          maxBuffer: 1 << 28,
        }).toString(),
      ) as { files: { path: string; size: number }[] };
      const fileList = join(tmp, `${size}-files.txt`);
      await writeFile(fileList, resolved.files.map((f) => f.path).join("\n") + "\n");
      const bytes = resolved.files.reduce((s, f) => s + f.size, 0);
      log(
        `\n${size}: ${resolved.files.length} files, ${(bytes / 1048576).toFixed(1)} MiB shipped (of a tree with .git, a venv and data)`,
      );
      let round = 0;
      const edit = () => editFiles(workload.root, workload.modules, 10, round++);
      for (const rtt of rtts)
        for (const n of workerCounts) {
          if (size === "large" && n !== Math.max(...workerCounts)) continue;
          const workers = reached.get(rtt)!.slice(0, n);
          const ctx = contextFor(cluster, workers, workload.root, tmp, user, fileList, rtt);
          rows.push(...(await pushScenarios(ctx, tools, { size, rttMs: rtt }, runs, edit)));
          // Neither the daemon of the later pushes nor the one the last first push started outlives its rows.
          if (withDaemon) {
            await stopDaemon(ctx, heldDaemonDir(ctx));
            await stopDaemon(ctx, join(ctx.tmp, FIRST_PUSH_DAEMON));
          }
          // Watch is measured on loopback (its target is at delay 0).
          if (size === "medium" && rtt === 0)
            latency.push({
              size,
              workers: n,
              results: await watchLatency(ctx, workload.modules[1]!, missing),
            });
        }
      if (size === "medium")
        for (const n of watchOnly) {
          const ctx = contextFor(cluster, reached.get(0)!.slice(0, n), workload.root, tmp, user, fileList, 0);
          const results = await watchLatency(ctx, workload.modules[1]!, [...missing, "lsyncd"]);
          latency.push({ size, workers: n, results });
        }
    }
  } finally {
    await Promise.all(proxies.map((p) => p.stop()));
    await cluster.stop();
  }
  let markdown = summarize(rows, latency, machine);
  let scale: ScaleRss | undefined;
  if (args.scale) {
    const run = await scaleRun(
      user,
      tmp,
      args["scale-workers"]!.split(",").map(Number),
      Math.max(1, runs - 1),
      withDaemon,
    );
    markdown += run.markdown;
    scale = run.rss;
  }
  const targets = targetsTable(rows, latency, scale);
  log(`\n${targets.join("\n")}`);
  markdown += `\n${targets.join("\n")}\n`;
  const images = await charts(rows, latency);
  markdown += `\n${images.map((f) => `![${f}](${f})`).join("\n")}\n`;
  await writeFile(join(RESULTS, "results.md"), markdown);
  await writeFile(
    join(RESULTS, "results.json"),
    JSON.stringify({ machine: describeMachine(), rows, latency, scale }, null, 1),
  );
  await rm(tmp, { recursive: true, force: true });
  log(`\nwrote ${args.out}/results.md, results.json and ${images.length} chart(s)`);
}

await main();
