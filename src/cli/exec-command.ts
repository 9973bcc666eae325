import type { Command } from "commander";
import { ExitCode, UsageError } from "../core/errors.js";
import { allNodes } from "../fleet/on-nodes.js";
import { type ExecOptions as ExecAllOptions, type ExecOutcome, execAll } from "../operate/exec.js";
import { execThroughTree } from "../operate/tree-exec.js";
import { linkerFor, noDaemonOption, verboseOption } from "./node-links.js";
import { chooseNodes, SELECTOR_HELP } from "./node-selection.js";
import { inventoryFor } from "./project-context.js";
import { acceptNewOption, inventoryOption, jobsOption, parseJobs } from "./shared-options.js";
import { printJson } from "./terminal.js";
import { flatOption, throughTree } from "./tree-mode.js";

interface ExecOptions {
  inventory?: string;
  nodes?: string;
  jobs?: string;
  group?: boolean;
  json?: boolean;
  venv?: boolean;
  timeout?: string;
  acceptNew?: boolean;
  flat?: boolean;
  daemon?: boolean;
  verbose?: boolean;
}

export function registerExec(program: Command): void {
  program
    .command("exec")
    .description("Run a command on many nodes at once, in the deploy directory with the venv activated")
    .argument(
      "<command...>",
      "after --: one word is a shell command line ('cmd | grep x'); several are a program and its arguments, passed as they are",
    )
    .addOption(inventoryOption())
    .option("-n, --nodes <selector>", SELECTOR_HELP, "all")
    .addOption(jobsOption("nodes"))
    .option("--group", "print each node's output together when it finishes, instead of prefixed lines")
    .option("--no-venv", "do not activate the venv")
    .option("--timeout <seconds>", "give up on a node whose command runs longer")
    .addOption(acceptNewOption())
    .addOption(noDaemonOption())
    .addOption(flatOption())
    .addOption(verboseOption())
    .option("--json", "collect stdout, stderr and status per node into one JSON document")
    .action(async (command: string[], options: ExecOptions) => {
      const concurrency = parseJobs(options.jobs);
      const timeout = options.timeout === undefined ? undefined : Number(options.timeout);
      if (timeout !== undefined && !(timeout > 0))
        throw new UsageError(`--timeout takes seconds (a positive number), not ${options.timeout}`);
      const inventory = (await inventoryFor(options, true))!;
      const nodes = await chooseNodes(allNodes(inventory), options.nodes ?? "all");
      const width = Math.max(...nodes.map((n) => n.name.length));
      const prefixed = !options.json && !options.group;
      const tree = throughTree(inventory, options);
      const exec = tree
        ? (o: ExecAllOptions) => execThroughTree(tree, nodes, command, o)
        : (o: ExecAllOptions) => execAll(inventory, nodes, command, o);
      const outcomes = await exec({
        ...(concurrency ? { concurrency } : {}),
        ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
        acceptNew: options.acceptNew ?? false,
        links: linkerFor(inventory, options),
        activateVenv: options.venv !== false,
        onLine: prefixed
          ? (l) =>
              (l.stream === "stdout" ? process.stdout : process.stderr).write(
                `${l.node.padEnd(width)} | ${l.line}\n`,
              )
          : undefined,
        onDone: options.group && !options.json ? (o) => process.stdout.write(groupedOutput(o)) : undefined,
      });
      if (options.json) printJson({ nodes: outcomes });
      else process.stderr.write(execSummary(outcomes));
      process.exitCode = outcomes.every((o) => o.status === 0) ? ExitCode.ok : ExitCode.nodesFailed;
    });
}

export function groupedOutput(o: ExecOutcome): string {
  const head = `--- ${o.node} (${o.error ? "unreachable" : `exit ${o.status ?? o.signal ?? "?"}`})`;
  const body = [o.stdout, o.stderr].filter((s) => s.length > 0).map((s) => (s.endsWith("\n") ? s : `${s}\n`));
  return `${head}\n${body.join("")}`;
}

export function execSummary(outcomes: readonly ExecOutcome[]): string {
  const failed = outcomes.filter((o) => o.status !== 0);
  if (failed.length === 0) return "";
  const lines = failed.map((o) =>
    o.error ? `${o.node}: ${o.error}` : `${o.node}: exit ${o.status ?? `by signal ${o.signal ?? "?"}`}`,
  );
  return `${failed.length} of ${outcomes.length} node(s) failed:\n${lines.map((l) => `  ${l}`).join("\n")}\n`;
}
