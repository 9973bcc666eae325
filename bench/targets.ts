import type { Sample } from "./tools.js";
import type { LatencyResult } from "./watch-latency.js";
import type { WorkloadSize } from "./workload.js";

/**
 * The project's performance targets, each a ratio measured within one run (absolute times on this machine vary
 * threefold from day to day): sync-cluster's time over parallel-rsync's for pushes, lsyncd's watch
 * latency over ours, and the leader's peak RSS with 64 workers. Lower is better for push ratios.
 */

export type Scenario = "cold" | "noop" | "incremental";

export interface Row {
  scenario: Scenario;
  size: WorkloadSize;
  workers: number;
  /** Round trip added in front of every worker (0: loopback). */
  rttMs: number;
  tool: string;
  samples: Sample[];
}

export interface LatencyRow {
  size: WorkloadSize;
  workers: number;
  results: LatencyResult[];
}

/** Leader peak RSS with 64 workers: while watching them, and the daemon holding them. */
export interface ScaleRss {
  workers: number;
  watchMb: number | null;
  daemonMb: number | null;
}

/** Through the daemon (a later command), and one-shot (no daemon running), at 0 and 20 ms round trip. */
const PUSH_TARGETS: Record<string, Record<Scenario, number>> = {
  "sync-cluster via daemon": { noop: 0.15, incremental: 0.3, cold: 0.35 },
  "sync-cluster": { noop: 0.25, incremental: 0.5, cold: 0.75 },
};
const WATCH_SPEEDUP = 15;
const WATCH_P95_OVER_P50 = 1.5;
/** watch's p50 at the largest worker count measured (64) over its p50 at 16. */
const WATCH_GROWTH = 1.5;
const RSS_LIMIT_MB = 150;
const ANCHOR = "parallel-rsync";
export const OUR_PUSH_TOOLS = ["sync-cluster", "sync-cluster via daemon"];

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : Number.NaN;
};
export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};

const seconds = (ms: number[]) =>
  `${(median(ms) / 1000).toFixed(2)} (${(Math.min(...ms) / 1000).toFixed(2)}-${(Math.max(...ms) / 1000).toFixed(2)})`;

/** Ratio of medians, and the lowest and highest ratio of one round (tools alternate within a round). */
function ratio(ours: number[], anchor: number[]): { median: number; min: number; max: number } {
  const rounds = ours.slice(0, anchor.length).map((x, i) => x / anchor[i]!);
  return { median: median(ours) / median(anchor), min: Math.min(...rounds), max: Math.max(...rounds) };
}

const verdict = (met: boolean) => (met ? "met" : "**not met**");

/** The targets table (markdown): the scenario, what was measured, the target, met or not. */
export function targetsTable(rows: Row[], latency: LatencyRow[], scale: ScaleRss | undefined): string[] {
  const size: WorkloadSize = rows.some((r) => r.size === "medium") ? "medium" : (rows[0]?.size ?? "medium");
  const sized = rows.filter((r) => r.size === size);
  const workers = sized.some((r) => r.workers === 16) ? 16 : Math.max(0, ...sized.map((r) => r.workers));
  const lines = [
    `## The project's targets (${size} workload, ${workers} workers, ratio to ${ANCHOR} in this run; lower is better)`,
    "",
    workers === 16 && size === "medium"
      ? "Ratio: median over median; in brackets the lowest and highest ratio of one round (tools alternate within a round)."
      : `The targets are for the medium workload at 16 workers: this run measured ${size} at ${workers}, so its ratios are indicative only.`,
    "",
    `| scenario | round trip | sync-cluster | time (s) | ${ANCHOR} (s) | ratio | target | |`,
    "|---|---|---|---|---|---|---|---|",
  ];
  const rtts = [...new Set(sized.map((r) => r.rttMs))].sort((a, b) => a - b);
  for (const rtt of rtts)
    for (const scenario of ["noop", "incremental", "cold"] as Scenario[]) {
      const at = sized.filter((r) => r.workers === workers && r.rttMs === rtt && r.scenario === scenario);
      const anchor =
        at
          .find((r) => r.tool === ANCHOR)
          ?.samples.filter((s) => s.ok)
          .map((s) => s.ms) ?? [];
      for (const tool of OUR_PUSH_TOOLS) {
        const target = PUSH_TARGETS[tool]![scenario];
        const ours = at
          .find((r) => r.tool === tool)
          ?.samples.filter((s) => s.ok)
          .map((s) => s.ms);
        if (!ours) continue;
        const name = tool === "sync-cluster" ? "one-shot (no daemon running)" : "through the daemon";
        if (!ours.length || !anchor.length) {
          lines.push(
            `| ${scenario} | ${rtt} ms | ${name} | ${ours.length ? seconds(ours) : "failed"} | ${anchor.length ? seconds(anchor) : `not measured (${ANCHOR} missing or failed)`} | - | ${target}x | not measured |`,
          );
          continue;
        }
        const r = ratio(ours, anchor);
        lines.push(
          `| ${scenario} | ${rtt} ms | ${name} | ${seconds(ours)} | ${seconds(anchor)} | ${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)}) | ${target}x | ${verdict(r.median <= target)} |`,
        );
      }
    }
  const watchOf = (l: LatencyRow | undefined) => l?.results.find((r) => r.tool === "sync-cluster watch");
  const watch = latency.find((l) => l.size === size && l.workers === workers) ?? latency.at(-1);
  const ours = watchOf(watch);
  const lsyncd = watch?.results.find((r) => r.tool === "lsyncd");
  lines.push(
    "",
    "| watch, one save to every worker | p50 (ms) | p95 (ms) | target | |",
    "|---|---|---|---|---|",
  );
  if (ours?.latenciesMs.length) {
    const p50 = median(ours.latenciesMs);
    const p95 = percentile(ours.latenciesMs, 95);
    lines.push(
      `| sync-cluster watch, ${watch!.workers} workers | ${p50.toFixed(0)} | ${p95.toFixed(0)} (${(p95 / p50).toFixed(2)}x p50) | p95 at most ${WATCH_P95_OVER_P50}x p50 | ${verdict(p95 <= WATCH_P95_OVER_P50 * p50)} |`,
    );
    const most = latency
      .filter((l) => l.size === size && l.workers > watch!.workers && watchOf(l)?.latenciesMs.length)
      .sort((a, b) => b.workers - a.workers)[0];
    if (most) {
      const many = watchOf(most)!.latenciesMs;
      const growth = median(many) / p50;
      lines.push(
        `| sync-cluster watch, ${most.workers} workers | ${median(many).toFixed(0)} | ${percentile(many, 95).toFixed(0)} | p50 at most ${WATCH_GROWTH}x its p50 at ${watch!.workers}: measured ${growth.toFixed(2)}x | ${verdict(growth <= WATCH_GROWTH)} |`,
      );
    }
    if (lsyncd?.latenciesMs.length) {
      const speedup = median(lsyncd.latenciesMs) / p50;
      lines.push(
        `| lsyncd, same workers | ${median(lsyncd.latenciesMs).toFixed(0)} | ${percentile(lsyncd.latenciesMs, 95).toFixed(0)} | sync-cluster at least ${WATCH_SPEEDUP}x faster: measured ${speedup.toFixed(1)}x | ${verdict(speedup >= WATCH_SPEEDUP)} |`,
      );
    } else
      lines.push(
        `| lsyncd | - | - | ${WATCH_SPEEDUP}x faster | not measured (${lsyncd?.error ?? "lsyncd missing"}) |`,
      );
  } else lines.push(`| sync-cluster watch | - | - | | not measured (${ours?.error ?? "no watch run"}) |`);
  lines.push("", "| leader peak RSS with 64 workers | MB | target | |", "|---|---|---|---|");
  const rss = (what: string, mb: number | null | undefined) =>
    mb == null
      ? `| ${what} | - | under ${RSS_LIMIT_MB} MB | not measured (${scale ? "no daemon in this CLI" : "run with --scale"}) |`
      : `| ${what}, ${scale!.workers} workers | ${mb.toFixed(0)} | under ${RSS_LIMIT_MB} MB | ${verdict(mb < RSS_LIMIT_MB)} |`;
  lines.push(
    rss("watching (watch and its daemon)", scale?.watchMb),
    rss("the daemon holding them", scale?.daemonMb),
  );
  return lines;
}

/** One tool at one worker count in the curve (bench/curve.ts): what the leader spent per push. */
export interface CurveSample extends Sample {
  /** Bytes the leader's processes sent toward the hops they talk to directly (counting proxies). */
  bytesLeader: number;
  /** Highest sum of RSS over the tool's process tree on the leader (the daemon's included), MB. */
  treeRssMb: number;
}

export interface CurveRow {
  scenario: Scenario;
  workers: number;
  tool: string;
  /** Gateways the tool goes through (0: flat). */
  gateways: number;
  samples: CurveSample[];
}

export interface CurveFacts {
  rows: CurveRow[];
  /** The release's pack: bytes a cold push sends to one node (its upload), from sync-cluster's report. */
  packBytes: number | null;
  /** Peak RSS of the flat daemon after the pushes at each worker count. */
  daemonRssMb: { workers: number; mb: number | null }[];
}

const CURVE_TREE_RSS_MB = 150;
const CURVE_DAEMON_RSS_MB = 300;
const CURVE_TREE_INCREMENTAL = 0.2;
const CURVE_ONE_SHOT = 0.5;
const CURVE_BIG = 256;
const CURVE_ONE_SHOT_AT = 64;

/** The leader's peak memory of a sample: the sampled sum over its processes, or its largest process if that is more. */
export const leaderRssMb = (s: CurveSample) => Math.max(s.treeRssMb, s.peakRssMb);

/** The curve's targets (markdown lines): the tree at 256 workers, one-shot pushes at 64, the daemon holding 256. */
export function curveTargetsTable(facts: CurveFacts): string[] {
  const ok = (row: CurveRow | undefined) => row?.samples.filter((s) => s.ok) ?? [];
  const find = (scenario: Scenario, workers: number, tool: string) =>
    facts.rows.find((r) => r.scenario === scenario && r.workers === workers && r.tool === tool);
  const sizes = [...new Set(facts.rows.map((r) => r.workers))];
  const big = sizes.includes(CURVE_BIG) ? CURVE_BIG : Math.max(0, ...sizes);
  const at = sizes.includes(CURVE_ONE_SHOT_AT) ? CURVE_ONE_SHOT_AT : Math.min(...sizes);
  const trees = [...new Set(facts.rows.filter((r) => r.gateways > 0).map((r) => `${r.gateways}|${r.tool}`))]
    .map((k) => ({ gateways: Number(k.split("|")[0]), tool: k.split("|")[1]! }))
    .sort((a, b) => a.gateways - b.gateways);
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  const lines = [
    `## The curve's targets (medium workload; the tree and the daemon at ${big} workers, one-shot pushes at ${at})`,
    "",
  ];
  if (big !== CURVE_BIG || at !== CURVE_ONE_SHOT_AT)
    lines.push(
      `The targets are for ${CURVE_BIG} and ${CURVE_ONE_SHOT_AT} workers: this run measured ${big} and ${at}, so its verdicts are indicative only.`,
      "",
    );
  lines.push("| target | measured | limit | |", "|---|---|---|---|");
  for (const { gateways, tool } of trees) {
    const cold = ok(find("cold", big, tool)).map((s) => s.bytesLeader);
    const limit = facts.packBytes === null ? null : (gateways + 1) * facts.packBytes;
    lines.push(
      cold.length && limit !== null
        ? `| ${tool}, ${big} workers: bytes the leader sends for a cold push | ${mb(median(cold))} MB (${mb(Math.min(...cold))}-${mb(Math.max(...cold))}) | (${gateways} + 1) x the pack's ${mb(facts.packBytes!)} MB = ${mb(limit)} MB | ${verdict(median(cold) <= limit)} |`
        : `| ${tool}, ${big} workers: bytes the leader sends for a cold push | - | (gateways + 1) x the pack | not measured |`,
    );
    const rss = (["cold", "noop", "incremental"] as Scenario[]).flatMap((s) =>
      ok(find(s, big, tool)).map(leaderRssMb),
    );
    lines.push(
      rss.length
        ? `| ${tool}, ${big} workers: the leader's peak RSS (every push) | ${Math.max(...rss).toFixed(0)} MB (median ${median(rss).toFixed(0)}) | under ${CURVE_TREE_RSS_MB} MB | ${verdict(Math.max(...rss) < CURVE_TREE_RSS_MB)} |`
        : `| ${tool}, ${big} workers: the leader's peak RSS | - | under ${CURVE_TREE_RSS_MB} MB | not measured |`,
    );
    const ours = ok(find("incremental", big, tool)).map((s) => s.ms);
    const anchor = ok(find("incremental", big, ANCHOR)).map((s) => s.ms);
    if (ours.length && anchor.length) {
      const r = ratio(ours, anchor);
      lines.push(
        `| ${tool}, ${big} workers: a 10-file change against ${ANCHOR} | ${seconds(ours)} s / ${seconds(anchor)} s = ${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)}) | ${CURVE_TREE_INCREMENTAL}x | ${verdict(r.median <= CURVE_TREE_INCREMENTAL)} |`,
      );
    } else
      lines.push(
        `| ${tool}, ${big} workers: a 10-file change against ${ANCHOR} | - | ${CURVE_TREE_INCREMENTAL}x | not measured |`,
      );
  }
  const oneShot = [
    ...new Set(facts.rows.filter((r) => !r.tool.includes("daemon") && r.tool !== ANCHOR).map((r) => r.tool)),
  ];
  for (const tool of oneShot)
    for (const scenario of ["noop", "incremental", "cold"] as Scenario[]) {
      const ours = ok(find(scenario, at, tool)).map((s) => s.ms);
      const anchor = ok(find(scenario, at, ANCHOR)).map((s) => s.ms);
      if (!ours.length || !anchor.length) {
        lines.push(
          `| ${tool} (one-shot), ${at} workers, ${scenario} against ${ANCHOR} | - | ${CURVE_ONE_SHOT}x | not measured |`,
        );
        continue;
      }
      const r = ratio(ours, anchor);
      lines.push(
        `| ${tool} (one-shot), ${at} workers, ${scenario} against ${ANCHOR} | ${seconds(ours)} s / ${seconds(anchor)} s = ${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)}) | ${CURVE_ONE_SHOT}x | ${verdict(r.median <= CURVE_ONE_SHOT)} |`,
      );
    }
  const daemon = facts.daemonRssMb.find((d) => d.workers === big);
  lines.push(
    daemon?.mb != null
      ? `| flat, the daemon holding ${big} workers: its peak RSS | ${daemon.mb.toFixed(0)} MB | under ${CURVE_DAEMON_RSS_MB} MB | ${verdict(daemon.mb < CURVE_DAEMON_RSS_MB)} |`
      : `| flat, the daemon holding ${big} workers: its peak RSS | - | under ${CURVE_DAEMON_RSS_MB} MB | not measured (no daemon in this CLI, or its push failed) |`,
  );
  return lines;
}
