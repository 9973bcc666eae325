import { createHash } from "node:crypto";
import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import { loginOutputWarning, type PreambleSummary } from "../core/protocol/agent-announcement.js";
import { requestFrame } from "../core/protocol/agent-frames.js";
import type { WorkerRequest } from "../core/protocol/worker-protocol-types.js";
import { readAgentLines } from "../core/tree/agent-lines.js";
import { describeEnd, type NodeRun } from "../core/tree/relay-events.js";
import { agentCommand, agentSourceMessage, agentStartTimeoutMs } from "../transport/agent-bootstrap.js";
import type { AgentReply } from "../transport/agent-session.js";
import { PROTOCOL_VERSION } from "../transport/worker-client.js";
import { runOnTree, type TreeRun } from "./tree-relay.js";

/**
 * A batch: the requests one node's agent answers in one command through the tree, all sent at
 * once (they never depend on an earlier reply of the same batch). Nodes given the same batch
 * share one run, so its bytes cross the leader's link once per gateway.
 */

export interface BatchRequest {
  request: WorkerRequest;
  payload?: Buffer;
}

export interface NodeBatch {
  node: NodeSpec;
  requests: readonly BatchRequest[];
}

/**
 * A batch's first request: the node's state, without its manifest (the leader knows the
 * manifests of the releases it built, known-manifests.ts), so the reply stays one short line.
 */
export function treeHello(node: NodeSpec, project: string): BatchRequest {
  return {
    request: {
      op: "hello",
      protocol: PROTOCOL_VERSION,
      deployDir: node.deployDir,
      project,
      venv: node.venv,
      keep: node.keep,
      withManifest: false,
    },
  };
}

export type BatchOutcome =
  | { node: NodeSpec; ok: true; replies: AgentReply[]; loginOutput?: PreambleSummary; via: string | null }
  | { node: NodeSpec; ok: false; error: NodeError; via: string | null };

/** The agent's command through the tree: replies on lines, since ClusterShell carries lines. */
export function agentTreeCommand(node: Pick<NodeSpec, "venv">): string {
  return `SYNC_CLUSTER_AGENT_REPLIES=lines; export SYNC_CLUSTER_AGENT_REPLIES; ${agentCommand(node)}`;
}

/** A number for each object that identity alone names (payloads, long arrays). */
const sharedIds = new WeakMap<object, number>();
let nextSharedId = 0;
function sharedId(value: object): number {
  let id = sharedIds.get(value);
  if (id === undefined) {
    id = nextSharedId++;
    sharedIds.set(value, id);
  }
  return id;
}

/**
 * Long arrays (a prepare's thousand files) count by identity too: every node on one base gets
 * the same plan's arrays, and serializing them again for each of a thousand nodes would cost the
 * leader a hundred MB of strings. Equal arrays that are not the same one only share less.
 */
const LONG_ARRAY = 16;
const byIdentity = (_key: string, value: unknown) =>
  Array.isArray(value) && value.length > LONG_ARRAY ? `\0array ${sharedId(value)}` : value;

/**
 * Nodes share a run when their command and requests are the same and their payloads are the same
 * buffers (one archive per base release): keyed without copying or hashing the payloads, so a
 * thousand nodes cost one stdin, built once.
 */
export function batchKey(command: string, requests: readonly BatchRequest[]): string {
  const hash = createHash("sha256").update(command);
  for (const { request, payload } of requests) {
    hash.update("\0").update(JSON.stringify(request, byIdentity));
    if (payload) hash.update(`\0payload ${sharedId(payload)}`);
  }
  return hash.digest("hex");
}

export function batchInput(requests: readonly BatchRequest[]): Buffer {
  const parts = [agentSourceMessage()];
  for (const { request, payload } of requests) {
    parts.push(requestFrame(request, payload?.length));
    if (payload) parts.push(payload);
  }
  return Buffer.concat(parts);
}

/** Seconds a batch may take on one node: the agent's start, then each request's own time. */
function batchTimeoutSeconds(node: NodeSpec, requests: readonly BatchRequest[], lockTimeout: number): number {
  let ms = agentStartTimeoutMs(node);
  for (const { request, payload } of requests) {
    if (request.op === "prepare" || request.op === "activate") ms += (lockTimeout + 120) * 1000;
    else if (request.op === "upload") ms += 120_000 + Math.ceil((payload?.length ?? 0) / (256 * 1024)) * 1000;
    else if (request.op === "check") ms += 180_000;
    else ms += 60_000;
  }
  return Math.ceil(ms / 1000);
}

export interface BatchOptions {
  lockTimeoutSeconds?: number;
  signal?: AbortSignal;
  onNodeDone?: (outcome: BatchOutcome) => void;
}

/**
 * Runs every node's batch through the tree, nodes with the same batch together, and reads each
 * node's replies. A node whose agent did not answer every request fails with what it printed.
 */
export async function runBatches(
  tree: TreeSettings,
  batches: readonly NodeBatch[],
  options: BatchOptions = {},
): Promise<BatchOutcome[]> {
  const groups = new Map<string, { run: TreeRun; nodes: NodeSpec[]; requests: readonly BatchRequest[] }>();
  for (const batch of batches) {
    const command = agentTreeCommand(batch.node);
    const key = batchKey(command, batch.requests);
    const timeout = batchTimeoutSeconds(batch.node, batch.requests, options.lockTimeoutSeconds ?? 60);
    const group = groups.get(key);
    if (group) {
      group.nodes.push(batch.node);
      group.run.timeoutSeconds = Math.max(group.run.timeoutSeconds, timeout);
      (group.run.nodes as string[]).push(batch.node.name);
    } else {
      groups.set(key, {
        run: {
          id: `b${groups.size}`,
          nodes: [batch.node.name],
          command,
          stdin: batchInput(batch.requests),
          timeoutSeconds: timeout,
        },
        nodes: [batch.node],
        requests: batch.requests,
      });
    }
  }
  const byRun = new Map([...groups.values()].map((g) => [g.run.id, g]));
  const outcomes: BatchOutcome[] = [];
  const read = (runId: string, run: NodeRun) => {
    const group = byRun.get(runId)!;
    const node = group.nodes.find((n) => n.name === run.node);
    if (!node) return;
    const outcome = batchOutcome(node, group.requests.length, run, group.run.timeoutSeconds);
    outcomes.push(outcome);
    options.onNodeDone?.(outcome);
  };
  await runOnTree(
    tree,
    [...groups.values()].map((g) => g.run),
    { onNodeDone: read, ...(options.signal ? { signal: options.signal } : {}) },
  );
  return outcomes;
}

function batchOutcome(node: NodeSpec, expected: number, run: NodeRun, timeoutSeconds: number): BatchOutcome {
  const fail = (message: string): BatchOutcome => ({
    node,
    ok: false,
    error: new NodeError(node.name, message),
    via: run.via,
  });
  const ended = describeEnd(run, timeoutSeconds);
  const lines = readAgentLines(run.out);
  const stderr = run.err
    .filter((l) => l.trim())
    .slice(-3)
    .join(" / ");
  if (lines.kind === "no-agent") {
    if (ended) return fail(ended);
    const printed = lines.loginOutput ? `; its login shell ${loginOutputWarning(lines.loginOutput)}` : "";
    return fail(`the sync-cluster agent did not start${stderr ? `: ${stderr}` : ""}${printed}`);
  }
  if (lines.kind === "garbled")
    return fail(`the agent's output cannot be followed: ${lines.line.slice(0, 120)}`);
  if (lines.replies.length < expected) {
    const why =
      ended ??
      (stderr ? `it said: ${stderr}` : `its command ended with status ${"rc" in run.end ? run.end.rc : "?"}`);
    return fail(`the agent answered ${lines.replies.length} of ${expected} requests; ${why}`);
  }
  return {
    node,
    ok: true,
    replies: lines.replies as AgentReply[],
    ...(lines.loginOutput ? { loginOutput: lines.loginOutput } : {}),
    via: run.via,
  };
}
