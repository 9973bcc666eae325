import type { Command } from "commander";
import { ExitCode, UsageError } from "../core/errors.js";
import { allNodes } from "../fleet/on-nodes.js";
import { releaseOf } from "../push/leader-release.js";
import { type NodeOutcome, type PushEvent, type PushOptions, pushAll } from "../push/push.js";
import { pushThroughTree } from "../push/tree-push.js";
import { leaderExpectations } from "../readiness/leader-expectations.js";
import { linkerFor, noDaemonOption, verboseOption } from "./node-links.js";
import { progressThinner } from "./progress-thinner.js";
import { addEntryOptions, type EntryOptions, projectFromOptions } from "./project-context.js";
import { resolveForCommand } from "./project-resolution.js";
import { PushDisplay } from "./push-display.js";
import { acceptNewOption, jobsOption, parseJobs } from "./shared-options.js";
import { formatBytes, isInteractive, printJson, printJsonLine } from "./terminal.js";
import { flatOption, throughTree } from "./tree-mode.js";

interface PushCommandOptions extends EntryOptions {
  jobs?: string;
  dryRun?: boolean;
  json?: boolean;
  ndjson?: boolean;
  acceptNew?: boolean;
  daemon?: boolean;
  verbose?: boolean;
  check?: boolean;
  replace?: boolean;
  force?: boolean;
  flat?: boolean;
}

export function registerPush(program: Command): void {
  addEntryOptions(
    program
      .command("push")
      .description("Push the workflow's module set to every worker: in parallel, incremental and atomic")
      .argument("[script]", "the workflow's main script (sibling-files scenario)"),
  )
    .addOption(jobsOption("workers handled", "the inventory's concurrency, 8"))
    .option("--root <dir>", "the directory python is started from")
    .option("--python <py>", "the leader's interpreter")
    .option("--dry-run", "say what each worker would receive, change nothing")
    .option("--no-check", "push even to nodes whose readiness check fails")
    .addOption(acceptNewOption())
    .addOption(noDaemonOption())
    .addOption(flatOption())
    .addOption(verboseOption())
    .option("--force", "push even modules that do not compile with the leader's Python")
    .option("--replace", "replace a project of the same name that another leader or root pushed to a worker")
    .option("--json", "print the outcome as one JSON document")
    .option("--ndjson", "print the push as it happens, one JSON event per line, then the outcome")
    .action(async (script: string | undefined, options: PushCommandOptions) => {
      const concurrency = parseJobs(options.jobs);
      if (options.json && options.ndjson)
        throw new UsageError("--json and --ndjson cannot be used together.");
      const project = await projectFromOptions(script, options, true);
      const inventory = project.inventory!;
      if (inventory.workers.length === 0) throw new UsageError(`${inventory.file} lists no workers.`);
      const links = linkerFor(inventory, options);
      // Resolving (here or by the daemon) and connecting overlap: every handshake runs meanwhile.
      const resolving = resolveForCommand(project.resolveOptions, links);
      const display =
        !options.json && !options.ndjson && isInteractive()
          ? new PushDisplay(
              process.stderr,
              allNodes(inventory).map((w) => w.name),
            )
          : undefined;
      const keep = options.ndjson ? progressThinner(250) : undefined;
      const nodeWarnings: string[] = [];
      const onEvent = (event: PushEvent) => {
        if (event.type === "node-warning") nodeWarnings.push(`${event.node}: ${event.message}`);
        display?.handle(event);
        if (keep?.(event)) printJsonLine({ time: new Date().toISOString(), ...event });
      };
      const tree = throughTree(inventory, options);
      const push = tree
        ? (o: PushOptions) => pushThroughTree(tree, resolving, o, allNodes(inventory))
        : (o: PushOptions) => pushAll(inventory, resolving, o);
      const outcomes = await push({
        concurrency,
        dryRun: options.dryRun ?? false,
        acceptNew: options.acceptNew ?? false,
        links,
        replace: options.replace ?? false,
        force: options.force ?? false,
        onEvent,
        leader: options.check === false ? undefined : leaderExpectations,
      }).finally(() => display?.close());
      const resolution = await resolving;
      const release = releaseOf(resolution, inventory.project.name);
      const outcome = {
        release: release.id,
        mode: resolution.mode,
        files: resolution.files.length,
        warnings: [...resolution.warnings, ...nodeWarnings],
        nodes: outcomes,
      };
      if (options.json) printJson(outcome);
      else if (options.ndjson) printJsonLine({ time: new Date().toISOString(), type: "summary", ...outcome });
      else {
        for (const w of outcome.warnings) process.stderr.write(`warning: ${w}\n`);
        process.stdout.write(pushSummary(release.id, outcomes, options.dryRun ?? false));
      }
      process.exitCode = outcomes.every((o) => o.ok) ? ExitCode.ok : ExitCode.nodesFailed;
    });
}

export function pushSummary(release: string, outcomes: readonly NodeOutcome[], dryRun: boolean): string {
  const width = Math.max(4, ...outcomes.map((o) => o.node.length));
  const lines = [`release ${release}${dryRun ? " (dry run: nothing was changed)" : ""}`];
  for (const o of outcomes) {
    const name = o.node.padEnd(width);
    if (!o.ok) {
      lines.push(`${name}  FAILED     ${o.error}`);
      continue;
    }
    const r = o.result!;
    const removed =
      r.filesRemoved > 0
        ? `, ${r.status === "would-publish" ? "would remove" : "removed"} ${r.filesRemoved}`
        : "";
    const what =
      r.status === "unchanged"
        ? "already current"
        : r.status === "switched"
          ? `${dryRun ? "would switch" : "switched"} to a release it had`
          : `${r.status === "would-publish" ? "would send" : "sent"} ${r.filesSent} file(s), ${formatBytes(r.bytesSent)}${removed}; ${r.filesLinked} reused`;
    lines.push(`${name}  ${r.status.padEnd(9)}  ${what}  (${(o.ms / 1000).toFixed(2)}s)`);
    for (const id of r.runReleases ?? [])
      lines.push(
        `${" ".repeat(width)}  + release ${id} of a workflow run in progress, which the node lacked`,
      );
    if (r.wouldChange) {
      lines.push(...listed("+", r.wouldChange.send), ...listed("-", r.wouldChange.remove));
    }
  }
  const failed = outcomes.filter((o) => !o.ok).length;
  const nodes = outcomes.some((o) => o.role === "leader") ? "node(s)" : "worker(s)";
  lines.push(
    failed > 0
      ? `${failed} of ${outcomes.length} ${nodes} failed`
      : dryRun
        ? `${outcomes.length} ${nodes} looked at; nothing was changed`
        : `${outcomes.length} ${nodes} converged`,
  );
  return `${lines.join("\n")}\n`;
}

const LISTED_PATHS = 20;

/** Up to 20 paths of a dry run, one per line; names with control characters are shown quoted. */
function listed(sign: string, paths: readonly string[]): string[] {
  const shown = paths
    .slice(0, LISTED_PATHS)
    .map((path) => `      ${sign} ${/[\x00-\x1f\x7f]|^\s|\s$/.test(path) ? JSON.stringify(path) : path}`);
  if (paths.length > LISTED_PATHS) shown.push(`      ${sign} ... and ${paths.length - LISTED_PATHS} more`);
  return shown;
}
