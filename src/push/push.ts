import { requireNodeReady } from "../check/node-check.js";
import { loginOutputWarning } from "../core/agent-announcement.js";
import { ResolutionError } from "../core/errors.js";
import type { Inventory, NodeSpec } from "../core/inventory-types.js";
import type { LeaderExpectations } from "../core/node-checks.js";
import { allNodes, onNodes, withAgent } from "../fleet/on-nodes.js";
import type { Resolution } from "../resolve/resolver.js";
import type { NodeLink, NodeLinker } from "../transport/node-link.js";
import type { ArchiveCache } from "./archive.js";
import { leaderReleaseOf } from "./leader-release.js";
import {
  type NodeProgress,
  type NodePushResult,
  pushToNode,
  type Release,
  verifyEntry,
} from "./node-push.js";

/**
 * `push`: every worker brought to the resolved release, a bounded number at a time. One node
 * failing never stops the others; each outcome is reported.
 */

export type PushEvent =
  | { type: "release"; release: string; files: number; bytes: number }
  | { type: "node-start"; node: string }
  | ({ type: "node-progress"; node: string } & NodeProgress)
  | { type: "node-done"; node: string; result: NodePushResult; ms: number }
  | { type: "node-failed"; node: string; error: string; ms: number }
  /** Something the user should know about a node that did not stop it (its login shell printed). */
  | { type: "node-warning"; node: string; message: string };

export interface NodeOutcome {
  node: string;
  role: NodeSpec["role"];
  ok: boolean;
  result?: NodePushResult;
  error?: string;
  ms: number;
}

export interface PushOptions {
  concurrency?: number;
  dryRun?: boolean;
  acceptNew?: boolean;
  /** How nodes are reached (fleet/on-nodes.ts); directly by default. */
  links?: NodeLinker | undefined;
  keep?: number;
  lockTimeoutSeconds?: number;
  /** Replace a project of the same name pushed from another leader or root (--replace). */
  replace?: boolean;
  /** Push modules that do not compile with the leader's Python (--force). */
  force?: boolean;
  onEvent?: (event: PushEvent) => void;
  /** When given, each node is checked first (quick form) and not pushed to if a check fails (no --no-check). */
  leader?: LeaderExpectations | ((resolution: Resolution) => LeaderExpectations);
  /** Stops starting new nodes (SIGINT); nodes already under way finish or fail on their own. */
  signal?: AbortSignal;
}

/** A release and what it needs, shared by every node of one push. */
interface PushPlan {
  release: Release;
  archives: ArchiveCache;
  leader: LeaderExpectations | undefined;
  /** The set's top-level names, each verified to load from the release after publishing. */
  topLevel: string[];
}

async function pushOverConnection(
  connection: NodeLink,
  project: string,
  plan: Promise<PushPlan>,
  options: PushOptions,
  leaderPinned: LeaderPins,
): Promise<NodePushResult> {
  const keep = options.keep ?? 3;
  // The handshake and the worker's state are fetched while the leader is still resolving.
  return withAgent(connection, { project, keep }, async (session, state) => {
    if (session.loginOutput)
      options.onEvent?.({
        type: "node-warning",
        node: connection.node.name,
        message: loginOutputWarning(session.loginOutput),
      });
    if (connection.node.role === "leader") leaderPinned.known(state.pinned ?? []);
    const { release, archives, leader, topLevel } = await plan;
    const onProgress = (progress: NodeProgress) =>
      options.onEvent?.({ type: "node-progress", node: connection.node.name, ...progress });
    if (leader) {
      onProgress({ phase: "checking" });
      await requireNodeReady(session, connection.node, leader, "pushed");
    }
    const result = await pushToNode(session, connection.node, state, release, archives, {
      keep,
      lockTimeoutSeconds: options.lockTimeoutSeconds ?? 60,
      dryRun: options.dryRun ?? false,
      replace: options.replace ?? false,
      onProgress,
      protect: connection.node.role === "leader" ? [] : await leaderPinned.pinned,
    });
    // Whatever --no-check says: a node that would import anything but the release is not converged.
    if (!options.dryRun) await verifyEntry(session, connection.node, topLevel);
    return result;
  });
}

/** The releases workflow runs on the leader use: workers must not collect them. */
class LeaderPins {
  known: (ids: string[]) => void = () => {};
  readonly pinned: Promise<string[]>;
  constructor(hasLeader: boolean) {
    this.pinned = hasLeader
      ? new Promise((resolve) => {
          this.known = resolve;
        })
      : Promise.resolve([]);
  }
}

/** A module that does not compile would fail every job that imports it: refused before any node changes. */
export function brokenModulesError(r: Resolution): ResolutionError {
  const listed = r.syntaxErrors.map((e) => `  ${e.file}:${e.line}: ${e.message}`).join("\n");
  return new ResolutionError(
    `Not pushed: ${r.syntaxErrors.length} module(s) do not compile with the leader's Python ${r.python.version}, so every job importing them would fail on the workers:\n${listed}\nFix them, or push anyway with --force.`,
  );
}

/** Marks a node's task that stopped because the leader's resolution failed: not a node failure. */
class ResolutionAborted extends Error {}

export async function pushAll(
  inventory: Inventory,
  resolution: Resolution | Promise<Resolution>,
  options: PushOptions = {},
  // The leader too: the first interpreter of a workflow run pins the release its node's `current`
  // names (agent.py, SELECTOR), and the batch system carries that pin to every job.
  nodes: readonly NodeSpec[] = allNodes(inventory),
): Promise<NodeOutcome[]> {
  const leaderPinned = new LeaderPins(nodes.some((n) => n.role === "leader"));
  const resolved = Promise.resolve(resolution);
  const plan = resolved.then((r): PushPlan => {
    if (r.syntaxErrors.length > 0 && !options.force) throw brokenModulesError(r);
    const { release, archives, topLevel } = leaderReleaseOf(r, inventory.project.name);
    options.onEvent?.({
      type: "release",
      release: release.id,
      files: release.files.length,
      bytes: r.files.reduce((s, f) => s + f.size, 0),
    });
    const leader = typeof options.leader === "function" ? options.leader(r) : options.leader;
    return { release, archives, leader, topLevel };
  });
  const planned = plan.catch((error: unknown) => {
    throw new ResolutionAborted((error as Error).message);
  });
  planned.catch(() => {});
  const fanOut = onNodes<NodePushResult>(
    nodes,
    {
      concurrency: options.concurrency ?? inventory.concurrency,
      acceptNew: options.acceptNew ?? false,
      links: options.links,
      ...(options.signal ? { signal: options.signal } : {}),
      onStart: (node) => options.onEvent?.({ type: "node-start", node: node.name }),
      onResult: (r) => {
        if (r.ok) {
          options.onEvent?.({ type: "node-done", node: r.node.name, result: r.value, ms: r.ms });
          return;
        }
        if (r.node.role === "leader") leaderPinned.known([]);
        if (!(r.cause instanceof ResolutionAborted))
          options.onEvent?.({ type: "node-failed", node: r.node.name, error: r.error, ms: r.ms });
      },
    },
    (connection) => pushOverConnection(connection, inventory.project.name, planned, options, leaderPinned),
  );
  // A resolution error is the whole command's error (exit 2): nothing was changed on any node, and
  // it is thrown without waiting for the nodes.
  const [results] = await Promise.all([fanOut, plan]);
  return results.map(
    (r): NodeOutcome =>
      r.ok
        ? { node: r.node.name, role: r.node.role, ok: true, result: r.value, ms: r.ms }
        : { node: r.node.name, role: r.node.role, ok: false, error: r.error, ms: r.ms },
  );
}
