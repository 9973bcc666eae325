import {
  type CheckResult,
  judgeNode,
  type LeaderExpectations,
  type NodeCheckFacts,
} from "../core/node-checks.js";
import type { NodeSpec } from "../inventory/types.js";
import type { AgentSession } from "../transport/agent-session.js";

/**
 * Runs the readiness probe of one node through its agent (one request, so one SSH command with
 * the session's hello) and judges it. `deep` really imports Toil; push uses the quick form.
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
  const modules = request.leader.thirdParty
    .filter((t) => t.module !== "toil")
    .map((t) => ({ module: t.module, dist: t.dist }));
  const facts = (await session.request(
    { op: "check", modules, deep: request.deep },
    undefined,
    180_000,
  )) as unknown as NodeCheckFacts;
  return judgeNode(facts, { ...request.leader, venv: node.venv });
}

/** Applies the safe fixes (create the venv, turn on system site-packages); returns what was done. */
export async function fixNode(session: AgentSession): Promise<string[]> {
  const reply = await session.request({ op: "fix" }, undefined, 600_000);
  return (reply.done as string[] | undefined) ?? [];
}
