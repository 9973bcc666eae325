import { ResolutionError } from "../core/errors.js";
import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import { loginOutputWarning } from "../core/protocol/agent-announcement.js";
import type { LeaderExpectations } from "../core/readiness/node-checks.js";
import { type LeaderRuns, protectedReleases, runReleasesLacking } from "../core/release/live-runs.js";
import { pushStep } from "../core/release/push-decisions.js";
import { allNodes, onNodes, withAgent } from "../fleet/on-nodes.js";
import { requireNodeReady } from "../readiness/node-check.js";
import type { Resolution } from "../resolve/resolver.js";
import type { NodeLink, NodeLinker } from "../transport/node-link.js";
import { TIMEOUTS } from "../transport/worker-client.js";
import type { ReleaseArchives } from "./archive.js";
import { leaderReleaseOf } from "./leader-release.js";
import {
  type NodeProgress,
  type NodePushResult,
  planAhead,
  pushToNode,
  quiet,
  type Release,
  stateAfterPublish,
  verifyEntry,
} from "./node-push.js";
import { LeaderRunSource } from "./run-releases.js";

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
  lockTimeoutSeconds?: number;
  /** Replace a project of the same name pushed from another leader or root (--replace). */
  replace?: boolean;
  /** Push modules that do not compile with the leader's Python (--force). */
  force?: boolean;
  onEvent?: (event: PushEvent) => void;
  /** When given, each node is checked first (quick form) and not pushed to if a check fails (no --no-check). */
  leader?: LeaderExpectations | ((resolution: Resolution, releaseId: string) => LeaderExpectations);
  /** Stops starting new nodes (SIGINT); nodes already under way finish or fail on their own. */
  signal?: AbortSignal;
}

/** A release and what it needs, shared by every node of one push. */
interface PushPlan {
  release: Release;
  archives: ReleaseArchives;
  leader: LeaderExpectations | undefined;
  /** The set's top-level names, each verified to load from the release after publishing. */
  topLevel: string[];
}

async function pushOverConnection(
  connection: NodeLink,
  project: string,
  plan: Promise<PushPlan>,
  options: PushOptions,
  leader: LeaderState,
): Promise<NodePushResult> {
  const node = connection.node;
  // The handshake and the worker's state are fetched while the leader is still resolving.
  return withAgent(connection, { project, keep: node.keep, withManifest: false }, async (session, state) => {
    if (session.loginOutput)
      options.onEvent?.({
        type: "node-warning",
        node: node.name,
        message: loginOutputWarning(session.loginOutput),
      });
    if (node.role === "leader") leader.known({ pinned: state.pinned, runs: state.runs });
    const { release, archives, leader: expectations, topLevel } = await plan;
    const onProgress = (progress: NodeProgress) =>
      options.onEvent?.({ type: "node-progress", node: node.name, ...progress });
    // Whatever --no-check says: a node that would import anything but the release is not converged.
    const verify = (extraTimeoutMs: number) =>
      verifyEntry(session, node, topLevel, undefined, extraTimeoutMs);
    let verifyOnRelease = verify;
    if (expectations) {
      if (!options.dryRun) planAhead(session, state, release, archives);
      onProgress({ phase: "checking" });
      // A node already on the release is verified in the same round trip as its readiness check.
      if (!options.dryRun && pushStep(state, release.id, true) === "nothing") {
        const verified = quiet(verify(TIMEOUTS.check));
        verifyOnRelease = () => verified;
      }
      await requireNodeReady(session, node, expectations, "pushed");
    }
    // The leader keeps what its own runs use by itself; a worker is told, or collects nothing.
    const runs = node.role === "leader" ? { pinned: [], runs: [] } : await leader.runs;
    const settings = {
      keep: node.keep,
      lockTimeoutSeconds: options.lockTimeoutSeconds ?? 60,
      dryRun: options.dryRun ?? false,
      replace: options.replace ?? false,
      onProgress,
      ...(runs ? { protect: protectedReleases(runs) } : { collect: false }),
    };
    const result = await pushToNode(session, node, state, release, archives, {
      ...settings,
      verify: verifyOnRelease,
    });
    if (options.dryRun || !runs || !leader.source) return result;
    // A node that was down when a live run's release was published gets it now, beside `current`.
    let after = stateAfterPublish(state, release, true);
    const installed: string[] = [];
    for (const id of runReleasesLacking(runs.runs, after.releases, release.id)) {
      const run = await leader.source.release(id);
      await pushToNode(session, node, after, run.release, run.archives, {
        ...settings,
        activate: false,
        verify: (extraTimeoutMs) => verifyEntry(session, node, run.topLevel, id, extraTimeoutMs),
      });
      after = stateAfterPublish(after, run.release, false);
      installed.push(id);
    }
    return installed.length > 0 ? { ...result, runReleases: installed } : result;
  });
}

/**
 * What the leader says of its workflow runs, for every worker of one push: its pins and live runs
 * from its handshake (undefined when the leader could not be reached: then no worker collects
 * anything), and where their releases are read from for the workers that lack them.
 */
class LeaderState {
  known: (runs: LeaderRuns | undefined) => void = () => {};
  readonly runs: Promise<LeaderRuns | undefined>;
  /** `pushedTo`: the leader is one of the push's nodes, and its handshake tells. */
  constructor(
    readonly source: LeaderRunSource | undefined,
    pushedTo: boolean,
  ) {
    if (!source) this.runs = Promise.resolve({ pinned: [], runs: [] });
    else if (!pushedTo) this.runs = source.runs().catch(() => undefined);
    else
      this.runs = new Promise((resolve) => {
        this.known = resolve;
      });
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
  // names (the agent's selector.py), and the batch system carries that pin to every job.
  nodes: readonly NodeSpec[] = allNodes(inventory),
): Promise<NodeOutcome[]> {
  const leaderNode = inventory.leader;
  const leader = new LeaderState(
    leaderNode &&
      new LeaderRunSource(leaderNode, inventory.project.name, {
        links: options.links,
        acceptNew: options.acceptNew ?? false,
      }),
    nodes.some((n) => n.role === "leader"),
  );
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
    const leader = typeof options.leader === "function" ? options.leader(r, release.id) : options.leader;
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
        if (r.node.role === "leader") leader.known(undefined);
        if (!(r.cause instanceof ResolutionAborted))
          options.onEvent?.({ type: "node-failed", node: r.node.name, error: r.error, ms: r.ms });
      },
    },
    (connection) => pushOverConnection(connection, inventory.project.name, planned, options, leader),
  );
  // A resolution error is the whole command's error (exit 2): nothing was changed on any node, and
  // it is thrown without waiting for the nodes.
  const [results] = await Promise.all([fanOut, plan]).finally(() => leader.source?.close());
  return results.map(
    (r): NodeOutcome =>
      r.ok
        ? { node: r.node.name, role: r.node.role, ok: true, result: r.value, ms: r.ms }
        : { node: r.node.name, role: r.node.role, ok: false, error: r.error, ms: r.ms },
  );
}
