import { hostname } from "node:os";
import pLimit from "p-limit";
import { checkNode } from "../check/node-check.js";
import { NodeError, ResolutionError } from "../core/errors.js";
import { releaseIdOf } from "../core/manifest.js";
import { topLevelNamesOf } from "../core/module-set.js";
import { CHECK_TITLES, type LeaderExpectations, nodePasses } from "../core/node-checks.js";
import { allNodes } from "../fleet/on-nodes.js";
import type { Inventory, NodeSpec } from "../inventory/types.js";
import type { Resolution } from "../resolve/resolver.js";
import { AgentSession } from "../transport/agent-session.js";
import { connect, type NodeConnection } from "../transport/connection.js";
import { hello } from "../transport/worker-client.js";
import { ArchiveCache } from "./archive.js";
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
  | { type: "node-failed"; node: string; error: string; ms: number };

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

export function releaseOf(resolution: Resolution, project: string): Release {
  return {
    id: releaseIdOf(resolution.release),
    files: resolution.release,
    project,
    origin: { host: hostname(), root: resolution.root },
  };
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
  connection: NodeConnection,
  project: string,
  plan: Promise<PushPlan>,
  options: PushOptions,
  leaderPinned: LeaderPins,
): Promise<NodePushResult> {
  const session = await AgentSession.start(connection);
  try {
    const keep = options.keep ?? 3;
    // The handshake and the worker's state are fetched while the leader is still resolving.
    const state = await hello(session, connection.node, project, keep);
    if (connection.node.role === "leader") leaderPinned.known(state.pinned ?? []);
    const { release, archives, leader, topLevel } = await plan;
    const onProgress = (progress: NodeProgress) =>
      options.onEvent?.({ type: "node-progress", node: connection.node.name, ...progress });
    if (leader) {
      onProgress({ phase: "checking" });
      const results = await checkNode(session, connection.node, { leader, deep: false });
      if (!nodePasses(results)) {
        const reasons = results
          .filter((r) => r.status === "fail")
          .map((r) => `${CHECK_TITLES[r.id]}: ${r.detail}`);
        throw new NodeError(
          connection.node.name,
          `not pushed, the node's check failed: ${reasons.join("; ")} (--no-check pushes anyway)`,
        );
      }
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
  } finally {
    session.close();
  }
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
    const release = releaseOf(r, inventory.project.name);
    options.onEvent?.({
      type: "release",
      release: release.id,
      files: release.files.length,
      bytes: r.files.reduce((s, f) => s + f.size, 0),
    });
    const leader = typeof options.leader === "function" ? options.leader(r) : options.leader;
    return {
      release,
      archives: new ArchiveCache(r.roots),
      leader,
      topLevel: [...topLevelNamesOf(r.files)].sort(),
    };
  });
  const planned = plan.catch((error: unknown) => {
    throw new ResolutionAborted((error as Error).message);
  });
  planned.catch(() => {});
  const limit = pLimit(Math.max(1, options.concurrency ?? inventory.concurrency));
  const outcomes = Promise.all(
    nodes.map((node) =>
      limit(async (): Promise<NodeOutcome> => {
        const started = performance.now();
        if (options.signal?.aborted) {
          return {
            node: node.name,
            role: node.role,
            ok: false,
            error: "interrupted before it started",
            ms: 0,
          };
        }
        let connection: NodeConnection | undefined;
        try {
          options.onEvent?.({ type: "node-start", node: node.name });
          connection = await connect(node, { acceptNew: options.acceptNew ?? false });
          const result = await pushOverConnection(
            connection,
            inventory.project.name,
            planned,
            options,
            leaderPinned,
          );
          const ms = performance.now() - started;
          options.onEvent?.({ type: "node-done", node: node.name, result, ms });
          return { node: node.name, role: node.role, ok: true, result, ms };
        } catch (error) {
          if (node.role === "leader") leaderPinned.known([]);
          const ms = performance.now() - started;
          const message = (error as Error).message;
          if (!(error instanceof ResolutionAborted))
            options.onEvent?.({ type: "node-failed", node: node.name, error: message, ms });
          return { node: node.name, role: node.role, ok: false, error: message, ms };
        } finally {
          connection?.close();
        }
      }),
    ),
  );
  // A resolution error is the whole command's error (exit 2): nothing was changed on any node.
  const [all] = await Promise.all([outcomes, plan]);
  return all;
}
