import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import { describeEnd, type NodeRun } from "../core/tree/relay-events.js";
import { runOnTree, type TreeRun } from "../tree/tree-relay.js";
import { type ExecOptions, type ExecOutcome, execAll, nodeCommandLine } from "./exec.js";

/**
 * `exec` through ClusterShell's tree: nodes whose command line is the same (the same venv and
 * deploy directory) share one run; every node's lines and exit status come back apart.
 */
export async function execThroughTree(
  inventory: Inventory & { tree: TreeSettings },
  nodes: readonly NodeSpec[],
  command: readonly string[],
  options: ExecOptions = {},
): Promise<ExecOutcome[]> {
  const started = Date.now();
  // The leader is no gateway's node: reached directly.
  const direct = nodes.filter((n) => n.role === "leader");
  const directly = direct.length > 0 ? execAll(inventory, direct, command, options) : Promise.resolve([]);
  const runs = new Map<string, TreeRun>();
  for (const node of nodes.filter((n) => n.role !== "leader")) {
    const line = nodeCommandLine(inventory, node, command, options);
    const run = runs.get(line);
    if (run) (run.nodes as string[]).push(node.name);
    else
      runs.set(line, {
        id: `e${runs.size}`,
        nodes: [node.name],
        command: line,
        stdin: Buffer.alloc(0),
        // ClusterShell needs a bound to report a hung node; a day stands for none.
        timeoutSeconds: options.timeoutMs !== undefined ? options.timeoutMs / 1000 : 86_400,
      });
  }
  const outcomes = new Map<string, ExecOutcome>();
  await runOnTree(inventory.tree, [...runs.values()], {
    onLine: (_run, node, stream, line) =>
      options.onLine?.({ node, stream: stream === "out" ? "stdout" : "stderr", line }),
    onNodeDone: (runId, run) => {
      const timeout = [...runs.values()].find((r) => r.id === runId)?.timeoutSeconds ?? 0;
      const outcome = execOutcome(run, timeout, Date.now() - started);
      outcomes.set(run.node, outcome);
      options.onDone?.(outcome);
    },
  });
  for (const outcome of await directly) outcomes.set(outcome.node, outcome);
  return nodes.map(
    (n) =>
      outcomes.get(n.name) ?? {
        node: n.name,
        status: null,
        stdout: "",
        stderr: "",
        error: "no answer",
        ms: 0,
      },
  );
}

function joined(lines: readonly string[]): string {
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

function execOutcome(run: NodeRun, timeoutSeconds: number, ms: number): ExecOutcome {
  const base = { node: run.node, stdout: joined(run.out), stderr: joined(run.err), ms };
  if ("rc" in run.end) return { ...base, status: run.end.rc };
  return { ...base, status: null, error: describeEnd(run, timeoutSeconds) ?? "no answer" };
}
