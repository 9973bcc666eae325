import type { Command } from "commander";
import { UsageError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { foldedIfShorter } from "../core/inventory/node-set.js";
import { remoteCommand } from "../core/ssh/remote-command.js";
import { allNodes } from "../fleet/on-nodes.js";
import { runAttached } from "../transport/remote-terminal.js";
import { linkerFor, noDaemonOption, verboseOption } from "./node-links.js";
import { chooseNodes } from "./node-selection.js";
import { inventoryFor } from "./project-context.js";
import { wordsAfterDoubleDash } from "./raw-args.js";
import { acceptNewOption, inventoryOption } from "./shared-options.js";

interface SshOptions {
  inventory?: string;
  venv?: boolean;
  tty?: boolean;
  acceptNew?: boolean;
  daemon?: boolean;
  verbose?: boolean;
}

export function registerSsh(program: Command): void {
  program
    .command("ssh")
    .description("A shell (or COMMAND) on a node, in its deploy directory with its venv activated")
    .argument(
      "[node]",
      "the node: its name, or a node set, @group or glob that picks one (default: the leader, else the first worker)",
    )
    .argument(
      "[command...]",
      "after --: the command to run instead of a shell (one word: a shell command line; several: a program and its arguments, passed as they are)",
    )
    .addOption(inventoryOption())
    .option("--no-venv", "do not activate the node's venv")
    .option("-t, --tty", "ask for a terminal even when running a command")
    .addOption(acceptNewOption())
    .addOption(noDaemonOption())
    .addOption(verboseOption())
    .action(async (nodeArg: string | undefined, commandArgs: string[], options: SshOptions) => {
      // `ssh -- ls` has no NODE: the operands all came after the `--`.
      const afterDash = wordsAfterDoubleDash();
      let nodeName = nodeArg;
      let command = commandArgs;
      const operands = nodeArg === undefined ? [] : [nodeArg, ...commandArgs];
      if (afterDash && operands.length === afterDash.length) {
        nodeName = undefined;
        command = operands;
      } else if (!afterDash && commandArgs.length > 0) {
        throw new UsageError(
          `put -- before the command: sync-cluster ssh ${nodeArg} -- ${commandArgs.join(" ")}`,
        );
      }
      const inventory = (await inventoryFor(options, true))!;
      const node = await pickNode(allNodes(inventory), nodeName, inventory.file);
      const connection = await linkerFor(inventory, options).link(node, {
        acceptNew: options.acceptNew ?? false,
      });
      try {
        const line = remoteCommand({
          deployDir: node.deployDir,
          project: inventory.project.name,
          venv: node.venv,
          activateVenv: options.venv !== false,
          command,
        });
        const interactive = command.length === 0 || options.tty === true;
        process.exitCode = await runAttached(connection, line, {
          pty: interactive && Boolean(process.stdin.isTTY),
        });
      } finally {
        connection.close();
      }
    });
}

async function pickNode(nodes: NodeSpec[], name: string | undefined, file: string): Promise<NodeSpec> {
  if (name === undefined) {
    const first = nodes[0];
    if (!first) throw new UsageError(`${file} lists no nodes.`);
    return first;
  }
  const selected = await chooseNodes(nodes, name);
  if (selected.length > 1) {
    throw new UsageError(
      `\`${name}\` matches ${selected.length} nodes (${foldedIfShorter(selected.map((n) => n.name))}); ssh goes to one: use exec for many`,
    );
  }
  return selected[0]!;
}
