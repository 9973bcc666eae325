import type { Command } from "commander";
import { leaderExpectations } from "../check/leader-expectations.js";
import { ExitCode, UsageError } from "../errors.js";
import { type NodeOutcome, type PushEvent, pushAll, releaseOf } from "../push/push.js";
import { resolveWithStoredDigests } from "../resolve/cached-resolve.js";
import { addEntryOptions, type EntryOptions, projectFromOptions } from "./project-context.js";
import { PushDisplay } from "./push-display.js";
import { formatBytes, isInteractive, printJson } from "./terminal.js";

interface PushCommandOptions extends EntryOptions {
  jobs?: string;
  dryRun?: boolean;
  json?: boolean;
  acceptNew?: boolean;
  check?: boolean;
}

export function parseJobs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`-j takes a whole number of workers at once (1 or more), not ${value}.`);
  return n;
}

export function registerPush(program: Command): void {
  addEntryOptions(
    program
      .command("push")
      .description("Push the workflow's module set to every worker: in parallel, incremental and atomic")
      .argument("[script]", "the workflow's main script (sibling-files scenario)"),
  )
    .option("-j, --jobs <n>", "workers handled at once (default: the inventory's concurrency, 8)")
    .option("--root <dir>", "the directory python is started from")
    .option("--python <py>", "the leader's interpreter")
    .option("--dry-run", "say what each worker would receive, change nothing")
    .option("--no-check", "push even to nodes whose readiness check fails")
    .option("--accept-new", "accept and record host keys not yet in known_hosts")
    .option("--json", "print the outcome as one JSON document")
    .action(async (script: string | undefined, options: PushCommandOptions) => {
      const concurrency = parseJobs(options.jobs);
      const project = await projectFromOptions(script, options, true);
      const inventory = project.inventory!;
      if (inventory.workers.length === 0) throw new UsageError(`${inventory.file} lists no workers.`);
      // Resolving and connecting overlap: every worker's handshake runs while the leader hashes.
      const resolving = resolveWithStoredDigests(project.resolveOptions);
      const display =
        !options.json && isInteractive()
          ? new PushDisplay(
              process.stderr,
              inventory.workers.map((w) => w.name),
            )
          : undefined;
      const outcomes = await pushAll(inventory, resolving, {
        concurrency,
        dryRun: options.dryRun ?? false,
        acceptNew: options.acceptNew ?? false,
        onEvent: (e: PushEvent) => display?.handle(e),
        leader: options.check === false ? undefined : leaderExpectations,
      }).finally(() => display?.close());
      const resolution = await resolving;
      const release = releaseOf(resolution, inventory.project.name);
      if (options.json) {
        printJson({
          release: release.id,
          mode: resolution.mode,
          files: resolution.files.length,
          warnings: resolution.warnings,
          nodes: outcomes,
        });
      } else {
        for (const w of resolution.warnings) process.stderr.write(`warning: ${w}\n`);
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
    const what =
      r.status === "unchanged"
        ? "already current"
        : r.status === "switched"
          ? "switched to a release it had"
          : `${r.status === "would-publish" ? "would send" : "sent"} ${r.filesSent} file(s), ${formatBytes(r.bytesSent)}; ${r.filesLinked} reused`;
    lines.push(`${name}  ${r.status.padEnd(9)}  ${what}  (${(o.ms / 1000).toFixed(2)}s)`);
  }
  const failed = outcomes.filter((o) => !o.ok).length;
  lines.push(
    failed === 0
      ? `${outcomes.length} worker(s) converged`
      : `${failed} of ${outcomes.length} worker(s) failed`,
  );
  return `${lines.join("\n")}\n`;
}
