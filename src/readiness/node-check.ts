import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import {
  CHECK_TITLES,
  type CheckResult,
  type JobLaunch,
  judgeNode,
  type LeaderExpectations,
  type NodeCheckFacts,
  nodePasses,
} from "../core/readiness/node-checks.js";
import type { AgentSession } from "../transport/agent-session.js";
import { type CheckRequest, check, fix } from "../transport/worker-client.js";

/**
 * Runs the readiness probe of one node through its agent (one request, so one SSH command with
 * the session's hello) and judges it. `deep` really imports Toil and asks a fresh interpreter
 * where the workflow loads from; push uses the quick form.
 */

export interface NodeCheckRequest {
  leader: LeaderExpectations;
  deep: boolean;
}

export async function checkNode(
  session: AgentSession,
  node: NodeSpec,
  request: NodeCheckRequest,
): Promise<CheckResult[]> {
  return judgeNode(await nodeFacts(session, request), { ...request.leader, venv: node.venv });
}

export async function nodeFacts(session: AgentSession, request: NodeCheckRequest): Promise<NodeCheckFacts> {
  return check(session, checkFields(request));
}

/** The `check` request's fields for what the leader expects. */
export function checkFields(request: NodeCheckRequest): Omit<CheckRequest, "op"> {
  const modules = request.leader.thirdParty
    .filter((t) => t.module !== "toil")
    .map((t) => ({ module: t.module, dist: t.dist }));
  const jobs: JobLaunch | undefined = request.deep ? request.leader.jobs : undefined;
  return {
    modules,
    deep: request.deep,
    ...(request.deep ? { topLevel: request.leader.topLevel } : {}),
    ...(jobs ? { toilWorker: { command: jobs.command, path: jobs.path } } : {}),
  };
}

/**
 * The quick check before a node is written to: a node that fails it is refused with every reason,
 * and `action` ("pushed", "synced") says what did not happen. `--no-check` skips the call.
 */
export async function requireNodeReady(
  session: AgentSession,
  node: NodeSpec,
  leader: LeaderExpectations,
  action: string,
): Promise<void> {
  const refusal = notReady(node, await checkNode(session, node, { leader, deep: false }), action);
  if (refusal) throw refusal;
}

/** The error for a node whose quick check failed; undefined when it passed. */
export function notReady(
  node: NodeSpec,
  results: readonly CheckResult[],
  action: string,
): NodeError | undefined {
  if (nodePasses(results)) return undefined;
  const reasons = results.filter((r) => r.status === "fail").map((r) => `${CHECK_TITLES[r.id]}: ${r.detail}`);
  return new NodeError(
    node.name,
    `not ${action}, the node's check failed: ${reasons.join("; ")} (--no-check ${action === "pushed" ? "pushes" : "syncs"} anyway)`,
  );
}

/** Applies the safe fixes (create the venv, turn on system site-packages, write Toil's worker entry point). */
export async function fixNode(session: AgentSession): Promise<string[]> {
  return fix(session);
}
