import type { PseudoTtyOptions } from "ssh2";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import type { PreambleSummary } from "../core/protocol/agent-announcement.js";

/**
 * What a client asks the daemon in the first frame of a socket (core/stream-mux.ts), and what the
 * daemon answers before the stream's bytes follow.
 */

/** Bumped whenever the framing or these requests change: a client never talks to an older daemon. */
export const DAEMON_PROTOCOL = 1;

export interface NodeRequest {
  node: NodeSpec;
  acceptNew: boolean;
  /** The client's ssh-agent socket, used when the daemon has to dial. */
  agentSocket?: string | undefined;
  /** How long the daemon should stay up unused, from the client's inventory. */
  idleSeconds: number;
  /** The client's build (DAEMON_PROTOCOL and the agent's source): a daemon of another refuses. */
  build: string;
}

export type DaemonRequest =
  | (NodeRequest & { op: "channel"; command: string; pty?: PseudoTtyOptions })
  | (NodeRequest & { op: "agent" })
  | { op: "status" }
  | { op: "stop" };

export type DaemonAnswer =
  | {
      ok: true;
      dialed?: boolean;
      reusedAgent?: boolean;
      /** What the node's login shell printed before an agent started for this command announced itself. */
      loginOutput?: PreambleSummary;
    }
  | {
      ok: false;
      message: string;
      /** build: another version of sync-cluster; fallback: the client should connect itself (why is in message). */
      code?: "build" | "fallback" | "node" | "bad-request";
    };

export interface HeldNodeStatus {
  host: string;
  port: number;
  user: string;
  /** Names this connection was asked for under. */
  names: string[];
  connectedAt: string | null;
  lastUsedAt: string | null;
  agentsHeld: number;
  agentsLent: number;
  dials: number;
}

export interface DaemonStatus {
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  socket: string;
  idleSeconds: number;
  build: string;
  nodes: HeldNodeStatus[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Why a node request's fields are not what a client of this build sends, or undefined. */
function nodeRequestProblem(request: Record<string, unknown>): string | undefined {
  if (!isRecord(request.node) || typeof request.node.name !== "string") return "it names no node";
  if (typeof request.build !== "string") return "it names no build";
  if (typeof request.acceptNew !== "boolean" || typeof request.idleSeconds !== "number")
    return "its connection options are missing";
  if (request.agentSocket !== undefined && typeof request.agentSocket !== "string")
    return "its agent socket is not a path";
  if (request.op === "channel" && typeof request.command !== "string") return "it names no command";
  return undefined;
}

/** The client's first frame as a request, or why it is none. */
export function parseDaemonRequest(body: Buffer): DaemonRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    return "the request is not JSON";
  }
  if (!isRecord(value)) return "the request is not a JSON object";
  if (value.op === "status" || value.op === "stop") return { op: value.op };
  if (value.op !== "channel" && value.op !== "agent")
    return `the daemon has no operation ${JSON.stringify(value.op)}`;
  const problem = nodeRequestProblem(value);
  if (problem) return `the ${value.op} request is malformed: ${problem}`;
  const fields: NodeRequest = {
    // The client's own inventory entry, which it loaded and checked: sent as it is.
    node: value.node as unknown as NodeSpec,
    acceptNew: value.acceptNew as boolean,
    agentSocket: value.agentSocket as string | undefined,
    idleSeconds: value.idleSeconds as number,
    build: value.build as string,
  };
  if (value.op === "agent") return { ...fields, op: "agent" };
  const pty = isRecord(value.pty) ? { pty: value.pty as PseudoTtyOptions } : {};
  return { ...fields, op: "channel", command: value.command as string, ...pty };
}
