import type { Command } from "commander";
import { ExitCode, UsageError } from "../core/errors.js";
import { type RollbackOutcome, rollbackAll } from "../operate/rollback.js";
import { linkerFor, noDaemonOption, verboseOption } from "./node-links.js";
import { inventoryFor } from "./project-context.js";
import { acceptNewOption, inventoryOption, jobsOption, parseJobs } from "./shared-options.js";
import { printJson } from "./terminal.js";

interface RollbackOptions {
  inventory?: string;
  to?: string;
  jobs?: string;
  json?: boolean;
  dryRun?: boolean;
  acceptNew?: boolean;
  daemon?: boolean;
  verbose?: boolean;
}

export function registerRollback(program: Command): void {
  program
    .command("rollback")
    .description("Switch every worker back to the release it ran before (or --to RELEASE), atomically")
    .addOption(inventoryOption())
    .option("--to <release>", "the release to go back to (full id or a unique prefix, see `status`)")
    .addOption(jobsOption("workers handled"))
    .option("--dry-run", "say what each worker would switch to, change nothing")
    .addOption(acceptNewOption())
    .addOption(noDaemonOption())
    .addOption(verboseOption())
    .option("--json", "print the outcome as one JSON document")
    .action(async (options: RollbackOptions) => {
      const concurrency = parseJobs(options.jobs);
      const inventory = (await inventoryFor(options, true))!;
      if (inventory.workers.length === 0) throw new UsageError(`${inventory.file} lists no workers.`);
      const outcomes = await rollbackAll(inventory, {
        ...(options.to !== undefined ? { to: options.to } : {}),
        ...(concurrency ? { concurrency } : {}),
        acceptNew: options.acceptNew ?? false,
        links: linkerFor(inventory, options),
        dryRun: options.dryRun ?? false,
      });
      if (options.json) printJson({ nodes: outcomes });
      else process.stdout.write(rollbackSummary(outcomes, options.dryRun ?? false));
      process.exitCode = outcomes.every((o) => o.ok) ? ExitCode.ok : ExitCode.nodesFailed;
    });
}

export function rollbackSummary(outcomes: readonly RollbackOutcome[], dryRun: boolean): string {
  const width = Math.max(4, ...outcomes.map((o) => o.node.length));
  const lines = outcomes.map((o) => {
    const name = o.node.padEnd(width);
    if (!o.ok) return `${name}  FAILED    ${o.error}`;
    if (o.kind === "already") return `${name}  unchanged already on ${o.release}`;
    return `${name}  ${dryRun ? "would switch" : "switched"}  ${o.from} -> ${o.release}`;
  });
  const failed = outcomes.filter((o) => !o.ok).length;
  lines.push(
    failed === 0
      ? `${outcomes.length} node(s) rolled back`
      : `${failed} of ${outcomes.length} node(s) not rolled back`,
  );
  return `${lines.join("\n")}\n`;
}
