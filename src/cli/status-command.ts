import type { Command } from "commander";
import { ExitCode, ResolutionError, UsageError } from "../core/errors.js";
import { foldedIfShorter } from "../core/inventory/node-set.js";
import type { RunStatus } from "../core/release/live-runs.js";
import { formatAge } from "../core/release/node-status.js";
import { everyNodeInSync, type LeaderSet, type NodeStatus, statusAll } from "../operate/status.js";
import { statusThroughTree } from "../operate/tree-status.js";
import { leaderReleaseOf } from "../push/leader-release.js";
import { resolveWithStoredDigests } from "../resolve/cached-resolve.js";
import { linkerFor, noDaemonOption, verboseOption } from "./node-links.js";
import { projectFromOptions } from "./project-context.js";
import { acceptNewOption, inventoryOption, jobsOption, parseJobs } from "./shared-options.js";
import { isInteractive, printJson } from "./terminal.js";
import { flatOption, throughTree } from "./tree-mode.js";

interface StatusOptions {
  inventory?: string;
  jobs?: string;
  json?: boolean;
  acceptNew?: boolean;
  daemon?: boolean;
  verbose?: boolean;
  flat?: boolean;
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description(
      "Show what every node runs: reachable, current release and its age, in sync with the leader, venv",
    )
    .addOption(inventoryOption())
    .addOption(jobsOption("nodes asked"))
    .addOption(acceptNewOption())
    .addOption(noDaemonOption())
    .addOption(flatOption())
    .addOption(verboseOption())
    .option("--json", "print the status as one JSON document")
    .action(async (options: StatusOptions) => {
      const concurrency = parseJobs(options.jobs);
      const project = await projectFromOptions(
        undefined,
        { ...(options.inventory ? { inventory: options.inventory } : {}) },
        true,
      );
      const inventory = project.inventory!;
      if (inventory.workers.length === 0 && !inventory.leader)
        throw new UsageError(`${inventory.file} lists no nodes.`);
      // A broken working tree must not hide what the nodes run: report it and show the rest.
      let leader: LeaderSet | undefined;
      let leaderProblem: string | undefined;
      try {
        const resolution = await resolveWithStoredDigests(project.resolveOptions);
        const { release, expectations } = leaderReleaseOf(resolution, inventory.project.name);
        leader = { id: release.id, files: release.files, expectations };
      } catch (error) {
        if (!(error instanceof ResolutionError || error instanceof UsageError)) throw error;
        leaderProblem = error.message;
      }
      const tree = throughTree(inventory, options);
      const settings = {
        ...(concurrency ? { concurrency } : {}),
        acceptNew: options.acceptNew ?? false,
        links: linkerFor(inventory, options),
      };
      const { nodes: statuses, runs } = tree
        ? await statusThroughTree(tree, leader, settings)
        : await statusAll(inventory, leader, settings);
      if (options.json) {
        printJson({
          leaderRelease: leader?.id ?? null,
          leaderProblem: leaderProblem ?? null,
          nodes: statuses,
          runs: runs ?? null,
        });
      } else {
        process.stdout.write(statusTable(leader?.id, leaderProblem, statuses, isInteractive(process.stdout)));
        process.stdout.write(runsTable(runs, Date.now() / 1000));
      }
      process.exitCode = leader && everyNodeInSync(statuses) ? ExitCode.ok : ExitCode.nodesFailed;
    });
}

export function statusTable(
  leaderRelease: string | undefined,
  leaderProblem: string | undefined,
  statuses: readonly NodeStatus[],
  _color: boolean,
): string {
  const header = ["node", "state", "release", "age", "in sync", "venv", "kept"];
  const rows = statuses.map((s): string[] => {
    if (!s.reachable) return [s.node, "unreachable", "-", "-", "-", "-", "-"];
    const r = s.release!;
    const inSync =
      r.inSync === null ? "?" : r.inSync ? "yes" : `no (${r.filesDiffering ?? "?"} file(s) differ)`;
    const venv = s.checks ? (s.checks.ok ? (s.checks.warnings.length ? "warn" : "ok") : "FAIL") : "?";
    return [s.node, "up", r.current ?? "none", formatAge(r.ageSeconds), inSync, venv, String(r.releasesKept)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const lines = [
    leaderRelease
      ? `leader's module set: ${leaderRelease}`
      : `leader's module set: unknown (${leaderProblem})`,
    format(header),
    ...rows.map(format),
  ];
  const notes: string[] = [];
  for (const s of statuses) {
    if (!s.reachable) notes.push(`${s.node}: ${s.error}`);
    for (const f of s.checks?.failed ?? []) notes.push(`${s.node}: ${f}`);
  }
  if (notes.length) lines.push("", ...notes);
  return `${lines.join("\n")}\n`;
}

/** The workflow runs in progress on the leader, each with the nodes that lack its release. */
export function runsTable(runs: readonly RunStatus[] | undefined, now: number): string {
  if (runs === undefined) return "\nworkflow runs: unknown (the leader could not be asked)\n";
  if (runs.length === 0) return "";
  const lines = runs.map((r) => {
    const where =
      r.lacking.length > 0
        ? `lacking on ${foldedIfShorter(r.lacking)} (the next push or watch sends it)`
        : "on every node asked";
    const unknown = r.unknown.length > 0 ? `; not asked: ${foldedIfShorter(r.unknown)}` : "";
    return `  release ${r.release} since ${formatAge(Math.max(0, now - r.since))} ago (leader pid ${r.pid}): ${where}${unknown}`;
  });
  return `\nworkflow runs in progress on the leader:\n${lines.join("\n")}\n`;
}
