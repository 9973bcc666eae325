import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Cluster, sshdAvailable, startCluster } from "../test/harness/cluster.js";
import { lineChart, type Series } from "./svg-chart.js";
import { type Context, PUSH_TOOLS, parallelRsync, type Sample, syncCluster, type Tool } from "./tools.js";
import { type LatencyResult, lsyncdLatency, syncClusterLatency } from "./watch-latency.js";
import { generateWorkload, type WorkloadSize } from "./workload.js";

/**
 * `npm run bench`: sync-cluster against parallel-rsync, an `rsync` loop under `xargs -P`,
 * `tar | ssh` and lsyncd, on the same workloads and the same local sshd workers, alternating
 * tools run by run. Prints medians and ratios; writes bench/results/{results.json,results.md}
 * and SVG charts. `--scale` adds a run with 64 workers.
 */

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "small,medium,large" },
    workers: { type: "string", default: "4,16" },
    runs: { type: "string", default: "3" },
    "watch-samples": { type: "string", default: "25" },
    scale: { type: "boolean", default: false },
    "scale-workers": { type: "string", default: "8,16,32,64" },
  },
});

const BIN = join(process.cwd(), "bin", "sync-cluster");
const RESULTS = join(process.cwd(), "bench", "results");
const USER = "scbench";
const ANCHORS: Record<string, string> = { "parallel-rsync": "pssh", rsync: "rsync", lsyncd: "lsyncd" };

type Scenario = "cold" | "noop" | "incremental";

interface Row {
  scenario: Scenario;
  size: WorkloadSize;
  workers: number;
  tool: string;
  samples: Sample[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : Number.NaN;
};
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Installs the anchors with apt when we may; a missing one is reported, never skipped silently. */
function ensureAnchors(): string[] {
  const missing = Object.entries(ANCHORS).filter(([cmd]) => !existsSync(`/usr/bin/${cmd}`));
  if (missing.length && process.getuid?.() === 0) {
    log(`installing anchors: ${missing.map(([, pkg]) => pkg).join(" ")}`);
    execFileSync(
      "apt-get",
      ["install", "-y", "-q", "--no-install-recommends", ...missing.map(([, p]) => p)],
      {
        stdio: "inherit",
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      },
    );
  }
  return Object.keys(ANCHORS).filter((cmd) => !existsSync(`/usr/bin/${cmd}`));
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

function contextFor(
  cluster: Cluster,
  workers: number,
  root: string,
  tmp: string,
  user: string,
  fileList: string,
): Context {
  const slice = cluster.workers.slice(0, workers);
  const inventory = join(tmp, `inventory-${workers}.yaml`);
  cluster.writeInventory({
    workers: slice,
    project: { root, entry: "-m workflow.main", name: "bench", python: "/usr/bin/python3" },
  });
  execFileSync("cp", [cluster.inventoryPath, inventory]);
  return { cluster, workers: slice, root, inventory, fileList, user, bin: BIN, tmp };
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
      const sample = await tool.push(ctx);
      if (!sample.ok) log(`  ${tool.name} FAILED: ${sample.error}`);
      if (round >= 0) out.get(tool.name)!.push(sample);
    }
  }
  return out;
}

function summarize(
  rows: Row[],
  latency: { size: WorkloadSize; workers: number; results: LatencyResult[] }[],
): string {
  const lines = [
    "# sync-cluster benchmark",
    "",
    `Run on ${new Date().toISOString()}, ${process.platform}, 2 cores; times in seconds (median, min-max).`,
    "",
  ];
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${r.scenario} | ${r.size} | ${r.workers}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  lines.push(
    "| scenario | workload | workers | tool | time (s) | sync-cluster / tool | leader CPU (s) | peak RSS (MB) | bytes/worker |",
    "|---|---|---|---|---|---|---|---|---|",
  );
  for (const [, group] of groups) {
    const ours = median(group.find((r) => r.tool === "sync-cluster")?.samples.map((s) => s.ms) ?? []);
    for (const r of group) {
      const ms = r.samples.map((s) => s.ms);
      const m = median(ms);
      const ratio = r.tool === "sync-cluster" ? "" : (ours / m).toFixed(2);
      const bytes = median(r.samples.map((s) => s.bytesPerWorker ?? Number.NaN));
      lines.push(
        `| ${r.scenario} | ${r.size} | ${r.workers} | ${r.tool} | ${(m / 1000).toFixed(2)} (${(Math.min(...ms) / 1000).toFixed(2)}-${(Math.max(...ms) / 1000).toFixed(2)}) | ${ratio} | ${median(r.samples.map((s) => s.cpuSeconds)).toFixed(2)} | ${median(r.samples.map((s) => s.peakRssMb)).toFixed(0)} | ${Number.isNaN(bytes) ? "-" : Math.round(bytes)} |`,
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

async function charts(
  rows: Row[],
  latency: { size: WorkloadSize; workers: number; results: LatencyResult[] }[],
): Promise<string[]> {
  const written: string[] = [];
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

async function scaleRun(user: string, tmp: string, workerCounts: number[], runs: number): Promise<string> {
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
      const ctx = { ...contextFor(cluster, n, workload.root, tmp, user, fileList), concurrency: 16 };
      const tools = [syncCluster, parallelRsync];
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
    const ctx = contextFor(cluster, max, workload.root, tmp, user, fileList);
    const watch = await syncClusterLatency(ctx, workload.modules[0]!, 5);
    lines.push(
      "",
      `Leader peak RSS while watching ${max} workers: ${watch.peakRssMb?.toFixed(0) ?? "?"} MB (p50 latency ${median(watch.latenciesMs).toFixed(0)} ms).`,
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
  return lines.join("\n");
}

async function main(): Promise<void> {
  if (!sshdAvailable()) throw new Error("the benchmark needs sshd: run .ci/install-deps");
  const missing = ensureAnchors();
  if (missing.length) log(`MISSING anchors (not measured): ${missing.join(", ")}`);
  const user = ensureUser();
  const sizes = args.sizes!.split(",") as WorkloadSize[];
  const workerCounts = args.workers!.split(",").map(Number);
  const runs = Number(args.runs);
  const tmp = await mkdtemp(join(tmpdir(), "sc-bench-"));
  await mkdir(RESULTS, { recursive: true });
  if (user !== "root") execFileSync("chmod", ["755", tmp]);
  const cluster = await startCluster({ workers: Math.max(...workerCounts), user });
  const rows: Row[] = [];
  const latency: { size: WorkloadSize; workers: number; results: LatencyResult[] }[] = [];
  const tools = PUSH_TOOLS.filter(
    (t) => !(t.name === "parallel-rsync" && missing.includes("parallel-rsync")),
  );
  try {
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
      for (const n of workerCounts) {
        if (size === "large" && n !== Math.max(...workerCounts)) continue;
        const ctx = contextFor(cluster, n, workload.root, tmp, user, fileList);
        let round = 0;
        for (const scenario of ["cold", "noop", "incremental"] as Scenario[]) {
          const results = await runScenario(ctx, scenario, tools, runs, () =>
            editFiles(workload.root, workload.modules, 10, round++),
          );
          const ours = median(results.get("sync-cluster")!.map((s) => s.ms));
          for (const [tool, samples] of results) {
            rows.push({ scenario, size, workers: n, tool, samples });
            const m = median(samples.map((s) => s.ms));
            log(
              `  ${scenario.padEnd(11)} ${String(n).padStart(2)} workers  ${tool.padEnd(14)} ${(m / 1000).toFixed(2)} s${tool === "sync-cluster" ? "" : `  (sync-cluster / ${tool} = ${(ours / m).toFixed(2)})`}`,
            );
          }
        }
        if (size === "medium") {
          const rel = workload.modules[1]!;
          const results = [await syncClusterLatency(ctx, rel, Number(args["watch-samples"]))];
          if (!missing.includes("lsyncd"))
            results.push(await lsyncdLatency(ctx, rel, Math.min(10, Number(args["watch-samples"]))));
          latency.push({ size, workers: n, results });
          for (const r of results) {
            log(
              r.latenciesMs.length
                ? `  watch       ${String(n).padStart(2)} workers  ${r.tool.padEnd(18)} p50 ${median(r.latenciesMs).toFixed(0)} ms, p95 ${percentile(r.latenciesMs, 95).toFixed(0)} ms`
                : `  watch ${r.tool} FAILED: ${r.error}`,
            );
          }
        }
      }
    }
  } finally {
    await cluster.stop();
  }
  let markdown = summarize(rows, latency);
  if (args.scale)
    markdown += await scaleRun(
      user,
      tmp,
      args["scale-workers"]!.split(",").map(Number),
      Math.max(1, runs - 1),
    );
  const images = await charts(rows, latency);
  markdown += `\n${images.map((f) => `![${f}](${f})`).join("\n")}\n`;
  await writeFile(join(RESULTS, "results.md"), markdown);
  await writeFile(
    join(RESULTS, "results.json"),
    JSON.stringify({ date: new Date().toISOString(), rows, latency }, null, 1),
  );
  await rm(tmp, { recursive: true, force: true });
  log(`\nwrote bench/results/results.md, results.json and ${images.length} chart(s)`);
}

await main();
