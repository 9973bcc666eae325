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

const PUSH_TARGETS: Record<Scenario, number> = { noop: 0.25, incremental: 0.5, cold: 0.75 };
const WATCH_SPEEDUP = 12;
const WATCH_P95_OVER_P50 = 1.5;
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
        const ours = at
          .find((r) => r.tool === tool)
          ?.samples.filter((s) => s.ok)
          .map((s) => s.ms);
        if (!ours) continue;
        const name = tool === "sync-cluster" ? "one-shot (no daemon running)" : "through the daemon";
        if (!ours.length || !anchor.length) {
          lines.push(
            `| ${scenario} | ${rtt} ms | ${name} | ${ours.length ? seconds(ours) : "failed"} | ${anchor.length ? seconds(anchor) : `not measured (${ANCHOR} missing or failed)`} | - | ${PUSH_TARGETS[scenario]}x | not measured |`,
          );
          continue;
        }
        const r = ratio(ours, anchor);
        lines.push(
          `| ${scenario} | ${rtt} ms | ${name} | ${seconds(ours)} | ${seconds(anchor)} | ${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)}) | ${PUSH_TARGETS[scenario]}x | ${verdict(r.median <= PUSH_TARGETS[scenario])} |`,
        );
      }
    }
  const watch = latency.find((l) => l.size === size && l.workers === workers) ?? latency.at(-1);
  const ours = watch?.results.find((r) => r.tool === "sync-cluster watch");
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
      `| sync-cluster watch, ${watch!.workers} workers | ${p50.toFixed(0)} | ${p95.toFixed(0)} (${(p95 / p50).toFixed(2)}x p50) | p95 under ${WATCH_P95_OVER_P50}x p50 | ${verdict(p95 < WATCH_P95_OVER_P50 * p50)} |`,
    );
    if (lsyncd?.latenciesMs.length) {
      const speedup = median(lsyncd.latenciesMs) / p50;
      lines.push(
        `| lsyncd, same workers | ${median(lsyncd.latenciesMs).toFixed(0)} | ${percentile(lsyncd.latenciesMs, 95).toFixed(0)} | sync-cluster ${WATCH_SPEEDUP}x faster: measured ${speedup.toFixed(1)}x | ${verdict(speedup >= WATCH_SPEEDUP)} |`,
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
