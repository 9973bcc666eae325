import type { PseudoTtyOptions } from "ssh2";
import type { PreambleSummary } from "../core/agent-announcement.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";

/**
 * What a client asks the daemon in the first frame of a socket (core/stream-mux.ts), and what the
 * daemon answers before the stream's bytes follow.
 */

/** Bumped whenever the framing or these requests change: a client never talks to an older daemon. */
export const DAEMON_PROTOCOL = 1;

interface NodeRequest {
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
