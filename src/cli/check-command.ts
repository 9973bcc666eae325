import type { Command } from "commander";
import { checkAll, type NodeCheckOutcome } from "../check/check.js";
import { checkThroughTree } from "../check/tree-check.js";
import { ExitCode, UsageError } from "../core/errors.js";
import { CHECK_TITLES, type CheckId, type CheckStatus } from "../core/readiness/node-checks.js";
import { leaderExpectations, localLeaderVenv } from "../readiness/leader-expectations.js";
import { resolveWithStoredDigests } from "../resolve/cached-resolve.js";
import { linkerFor, noDaemonOption, verboseOption } from "./node-links.js";
import { projectFromOptions } from "./project-context.js";
import { acceptNewOption, inventoryOption, jobsOption, parseJobs } from "./shared-options.js";
import { isInteractive, printJson } from "./terminal.js";
import { flatOption, throughTree } from "./tree-mode.js";

interface CheckCommandOptions {
  inventory?: string;
  fix?: boolean;
  json?: boolean;
  jobs?: string;
  acceptNew?: boolean;
  daemon?: boolean;
  verbose?: boolean;
  flat?: boolean;
}

export function registerCheck(program: Command): void {
  program
    .command("check")
    .description(
      "Check every node's virtualenv and readiness (system site-packages, Python, Toil, imports, deploy dir)",
    )
    .addOption(inventoryOption())
    .addOption(jobsOption("nodes checked"))
    .option(
      "--fix",
      "create a missing venv, turn on system site-packages in an existing one, give it Toil's worker entry point (never installs packages)",
    )
    .addOption(acceptNewOption())
    .addOption(noDaemonOption())
    .addOption(flatOption())
    .addOption(verboseOption())
    .option("--json", "print the results as one JSON document")
    .action(async (options: CheckCommandOptions) => {
      const concurrency = parseJobs(options.jobs);
      const project = await projectFromOptions(undefined, { inventory: options.inventory }, true);
      const inventory = project.inventory!;
      if (inventory.workers.length === 0 && !inventory.leader)
        throw new UsageError(`${inventory.file} lists no nodes.`);
      const resolution = await resolveWithStoredDigests(project.resolveOptions);
      const tree = throughTree(inventory, options);
      const settings = {
        concurrency,
        fix: options.fix ?? false,
        acceptNew: options.acceptNew ?? false,
        links: linkerFor(inventory, options),
      };
      const side = { localVenv: localLeaderVenv(resolution) };
      const expectations = leaderExpectations(resolution);
      const outcomes = tree
        ? await checkThroughTree(tree, expectations, settings, side)
        : await checkAll(inventory, expectations, settings, side);
      if (options.json) printJson({ nodes: outcomes });
      else process.stdout.write(checkTable(outcomes, isInteractive(process.stdout)));
      process.exitCode = outcomes.every((o) => o.ok) ? ExitCode.ok : ExitCode.nodesFailed;
    });
}

const MARK: Record<CheckStatus, string> = { pass: "ok", warn: "warn", fail: "FAIL", skip: "-" };

export function checkTable(outcomes: readonly NodeCheckOutcome[], _color: boolean): string {
  const ids = Object.keys(CHECK_TITLES) as CheckId[];
  const nameWidth = Math.max(4, ...outcomes.map((o) => o.node.length));
  const widths = ids.map((id) => Math.max(CHECK_TITLES[id].length, 4));
  const row = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(nameWidth) : c.padEnd(widths[i - 1]!)))
      .join("  ")
      .trimEnd();
  const lines = [row(["node", ...ids.map((id) => CHECK_TITLES[id])])];
  const reasons: string[] = [];
  for (const o of outcomes) {
    if (!o.reachable) {
      lines.push(row([o.node, "unreachable"]));
      reasons.push(`${o.node}: ${o.error}`);
      continue;
    }
    const byId = new Map(o.results.map((r) => [r.id, r]));
    lines.push(row([o.node, ...ids.map((id) => MARK[byId.get(id)?.status ?? "skip"])]));
    for (const f of o.fixed) reasons.push(`${o.node}: fixed: ${f}`);
    for (const w of o.warnings) reasons.push(`${o.node}: warning: ${w}`);
    for (const r of o.results) {
      if (r.status === "fail" || r.status === "warn")
        reasons.push(`${o.node}: ${CHECK_TITLES[r.id]}: ${r.detail}`);
    }
  }
  const failed = outcomes.filter((o) => !o.ok).length;
  const summary =
    failed === 0 ? `${outcomes.length} node(s) ready` : `${failed} of ${outcomes.length} node(s) not ready`;
  return `${[...lines, "", ...reasons, ...(reasons.length ? [""] : []), summary].join("\n")}\n`;
}
