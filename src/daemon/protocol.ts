import type { PseudoTtyOptions } from "ssh2";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import type { Entry } from "../core/module-set/entry-rules.js";
import type { PreambleSummary } from "../core/protocol/agent-announcement.js";
import { PATH_SHAPING_VARIABLES } from "../core/python/path-environment.js";
import type { Resolution } from "../resolve/resolver.js";

/**
 * What a client asks the daemon in the first frame of a socket (core/stream-mux.ts), and what the
 * daemon answers before the stream's bytes follow.
 */

/** Bumped whenever the framing or these requests change: a client never talks to an older daemon. */
export const DAEMON_PROTOCOL = 2;

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

/** The project a command resolves, as its command line, inventory and environment give it. */
export interface ProjectRequest {
  entry: Entry;
  /** Absolute. */
  startDir: string;
  python?: string;
  include: string[];
  exclude: string[];
  /** The client's variables that shape sys.path (core/python/path-environment.ts), set ones only. */
  env: Record<string, string>;
}

export interface ResolveRequest {
  op: "resolve";
  project: ProjectRequest;
  idleSeconds: number;
  build: string;
}

export type DaemonRequest =
  | (NodeRequest & { op: "channel"; command: string; pty?: PseudoTtyOptions })
  | (NodeRequest & { op: "agent" })
  | ResolveRequest
  | { op: "status" }
  | { op: "stop" };

/** The daemon's resolution of a project: kept warm, or made now (and why). */
export interface DaemonResolution {
  resolution: Resolution;
  /** True when nothing the resolution read had changed since it was made. */
  warm: boolean;
  /** Why it was made again, or that it was kept. */
  reason: string;
}

export type DaemonAnswer =
  | {
      ok: true;
      dialed?: boolean;
      reusedAgent?: boolean;
      /** What the node's login shell printed before an agent started for this command announced itself. */
      loginOutput?: PreambleSummary;
      /** The answer to a resolve request. */
      resolved?: DaemonResolution;
    }
  | {
      ok: false;
      message: string;
      /** build: another version of sync-cluster; fallback: the client should connect itself (why is in message). */
      code?: "build" | "fallback" | "node" | "bad-request" | "resolution";
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

/** A project whose resolution the daemon keeps. */
export interface WarmProjectStatus {
  startDir: string;
  entry: string;
  /** Directories watched for changes to what the resolution read. */
  watchedDirectories: number;
  /** Answers given from the kept resolution, and resolutions made. */
  warmAnswers: number;
  resolutions: number;
  /** Why the resolution is made afresh for every command, when it is. */
  unwatchable: string | null;
  lastUsedAt: string;
}

export interface DaemonStatus {
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  socket: string;
  idleSeconds: number;
  build: string;
  nodes: HeldNodeStatus[];
  projects: WarmProjectStatus[];
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

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

const SHAPING_NAMES = new Set<string>([...PATH_SHAPING_VARIABLES, "PATH"]);

/** Why a project's fields are not what a client of this build sends, or undefined. */
function projectProblem(project: unknown): string | undefined {
  if (!isRecord(project)) return "it names no project";
  const entry = project.entry;
  if (
    !isRecord(entry) ||
    !(
      (entry.kind === "module" && typeof entry.name === "string") ||
      (entry.kind === "script" && typeof entry.path === "string")
    )
  )
    return "its entry is neither a module nor a script";
  if (typeof project.startDir !== "string" || !project.startDir.startsWith("/"))
    return "its start directory is not an absolute path";
  if (project.python !== undefined && typeof project.python !== "string") return "its python is not a path";
  if (!isStringList(project.include) || !isStringList(project.exclude))
    return "its include and exclude are not lists of globs";
  if (!isRecord(project.env)) return "it has no environment";
  for (const [name, value] of Object.entries(project.env)) {
    if (!SHAPING_NAMES.has(name) || typeof value !== "string")
      return `its environment holds ${name}, which does not shape sys.path`;
  }
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
  if (value.op === "resolve") {
    const problem =
      typeof value.build !== "string" || typeof value.idleSeconds !== "number"
        ? "it names no build or idle time"
        : projectProblem(value.project);
    if (problem) return `the resolve request is malformed: ${problem}`;
    return {
      op: "resolve",
      project: value.project as unknown as ProjectRequest,
      idleSeconds: value.idleSeconds as number,
      build: value.build as string,
    };
  }
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
