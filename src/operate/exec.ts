import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import { LineSplitter } from "../core/line-splitter.js";
import { remoteCommand } from "../core/ssh/remote-command.js";
import { type NodeResult, onNodes } from "../fleet/on-nodes.js";
import type { NodeLinker } from "../transport/node-link.js";

/** `exec`: one command on many nodes, bounded like push, output kept apart per node and stream. */

export interface ExecOutcome {
  node: string;
  /** Exit status; null when the node could not be reached or the command was killed. */
  status: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  error?: string;
  ms: number;
}

type CommandResult = { status: number | null; signal?: string; stdout: string; stderr: string };

export type ExecLine = { node: string; stream: "stdout" | "stderr"; line: string };

export interface ExecOptions {
  concurrency?: number;
  acceptNew?: boolean;
  links?: NodeLinker | undefined;
  activateVenv?: boolean;
  timeoutMs?: number;
  /** Called for every complete output line as it arrives (prefixed output). */
  onLine?: (line: ExecLine) => void;
  onDone?: (outcome: ExecOutcome) => void;
}

/** The line a node's shell runs: `command` in the project's directory, the venv active unless told not. */
export function nodeCommandLine(
  inventory: Pick<Inventory, "project">,
  node: NodeSpec,
  command: readonly string[],
  options: Pick<ExecOptions, "activateVenv">,
): string {
  return remoteCommand({
    deployDir: node.deployDir,
    project: inventory.project.name,
    venv: node.venv,
    activateVenv: options.activateVenv ?? true,
    command,
  });
}

export async function execAll(
  inventory: Inventory,
  nodes: readonly NodeSpec[],
  command: readonly string[],
  options: ExecOptions = {},
): Promise<ExecOutcome[]> {
  const results = await onNodes<CommandResult>(
    nodes,
    {
      concurrency: options.concurrency ?? inventory.concurrency,
      acceptNew: options.acceptNew ?? false,
      links: options.links,
      onResult: (r) => options.onDone?.(toOutcome(r)),
    },
    async (connection): Promise<CommandResult> => {
      const node = connection.node;
      const line = nodeCommandLine(inventory, node, command, options);
      const channel = await connection.channel(line);
      return new Promise<CommandResult>((resolve, reject) => {
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        const splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
        const emit = (stream: "stdout" | "stderr", lines: string[]) => {
          for (const l of lines) options.onLine?.({ node: node.name, stream, line: l });
        };
        let status: number | null = null;
        let signal: string | undefined;
        const timer =
          options.timeoutMs !== undefined
            ? setTimeout(() => {
                channel.close();
                reject(new Error(`the command did not finish within ${options.timeoutMs! / 1000}s`));
              }, options.timeoutMs)
            : undefined;
        channel.on("data", (d: Buffer) => {
          out.push(d);
          emit("stdout", splitters.stdout.push(d));
        });
        channel.stderr.on("data", (d: Buffer) => {
          err.push(d);
          emit("stderr", splitters.stderr.push(d));
        });
        channel.on("exit", (code: number | null, sig?: string) => {
          status = code;
          signal = sig;
        });
        channel.on("close", () => {
          if (timer) clearTimeout(timer);
          emit("stdout", splitters.stdout.end());
          emit("stderr", splitters.stderr.end());
          resolve({
            status,
            ...(signal ? { signal } : {}),
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
          });
        });
        channel.on("error", (e: Error) => {
          if (timer) clearTimeout(timer);
          reject(e);
        });
        channel.end();
      });
    },
  );
  return results.map(toOutcome);
}

function toOutcome(r: NodeResult<CommandResult>): ExecOutcome {
  return r.ok
    ? { node: r.node.name, ...r.value, ms: r.ms }
    : { node: r.node.name, status: null, stdout: "", stderr: "", error: r.error, ms: r.ms };
}
