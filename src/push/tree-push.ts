import { NodeError } from "../core/errors.js";
import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import { loginOutputWarning } from "../core/protocol/agent-announcement.js";
import { entryVerdict, judgeNode, type LeaderExpectations } from "../core/readiness/node-checks.js";
import { type LeaderRuns, protectedReleases, runReleasesLacking } from "../core/release/live-runs.js";
import { type PublishPlan, planPublish } from "../core/release/publish-plan.js";
import { pushStep } from "../core/release/push-decisions.js";
import { checkFields, notReady } from "../readiness/node-check.js";
import type { Resolution } from "../resolve/resolver.js";
import type { AgentReply } from "../transport/agent-session.js";
import { readReply, type WorkerState } from "../transport/worker-client.js";
import {
  type BatchOutcome,
  type BatchRequest,
  type NodeBatch,
  runBatches,
  treeHello,
} from "../tree/agent-batch.js";
import { knownManifest, rememberManifest } from "../tree/known-manifests.js";
import type { ReleaseArchives } from "./archive.js";
import { leaderReleaseOf } from "./leader-release.js";
import { type NodePushResult, type Release, stateAfterPublish, unchangedUnlessRefused } from "./node-push.js";
import { brokenModulesError, type NodeOutcome, type PushOptions, pushAll } from "./push.js";
import { LeaderRunSource, type RunRelease } from "./run-releases.js";

/**
 * `push` through ClusterShell's gateway tree (the inventory's `tree:`). Two batches a node, each
 * one command through the tree: the first reads every node's state, checks it and verifies what it
 * imports now; the second brings the nodes that need it to the release. Nodes given the same
 * second batch (the same base release, the same step) share one run, so the release's bytes leave
 * the leader once per gateway. The leader itself, not behind any gateway, is pushed directly.
 */

type TreeInventory = Inventory & { tree: TreeSettings };

/** The release of one push and what each node is checked and verified against. */
export interface TreeRelease {
  release: Release;
  archives: ReleaseArchives;
  expectations: LeaderExpectations | undefined;
  topLevel: string[];
}

/** What a node's survey said: its state, and whether what it imports now is the release's. */
interface Survey {
  state: WorkerState;
  verified: NodeError | undefined;
}

/** One request of a batch and how its reply is read into the node's result. */
interface Step extends BatchRequest {
  read(reply: AgentReply, result: NodePushResult): NodePushResult | "retry-whole";
}

export async function pushThroughTree(
  inventory: TreeInventory,
  resolution: Resolution | Promise<Resolution>,
  options: PushOptions,
  nodes: readonly NodeSpec[],
): Promise<NodeOutcome[]> {
  const direct = nodes.filter((n) => n.role === "leader");
  const throughTree = nodes.filter((n) => n.role !== "leader");
  const directly = direct.length > 0 ? pushAll(inventory, resolution, options, direct) : Promise.resolve([]);
  const [flat, tree] = await Promise.all([
    directly,
    pushWorkers(inventory, resolution, options, throughTree),
  ]);
  return [...flat, ...tree];
}

async function pushWorkers(
  inventory: TreeInventory,
  resolution: Resolution | Promise<Resolution>,
  options: PushOptions,
  nodes: readonly NodeSpec[],
): Promise<NodeOutcome[]> {
  if (nodes.length === 0) return [];
  const project = inventory.project.name;
  const r = await resolution;
  if (r.syntaxErrors.length > 0 && !options.force) throw brokenModulesError(r);
  const { release, archives, topLevel } = leaderReleaseOf(r, project);
  const bytes = r.files.reduce((s, f) => s + f.size, 0);
  options.onEvent?.({ type: "release", release: release.id, files: release.files.length, bytes });
  const expectations = typeof options.leader === "function" ? options.leader(r, release.id) : options.leader;
  const source = inventory.leader
    ? new LeaderRunSource(inventory.leader, project, {
        links: options.links,
        acceptNew: options.acceptNew ?? false,
      })
    : undefined;
  try {
    const { outcomes } = await pushReleaseThroughTree(inventory, {
      release: { release, archives, expectations, topLevel },
      nodes,
      source,
      leaderRuns: () =>
        source ? source.runs().catch(() => undefined) : Promise.resolve({ pinned: [], runs: [] }),
      options,
    });
    return outcomes;
  } finally {
    source?.close();
  }
}

/** One release to bring nodes to through the tree, and what the caller knows of them. */
export interface TreePush {
  release: TreeRelease;
  nodes: readonly NodeSpec[];
  /** Each node's state as the previous push through the tree left it: such a node is not surveyed. */
  known?: ReadonlyMap<string, WorkerState>;
  /** Where the releases of live workflow runs are read from (the leader), owned by the caller. */
  source: LeaderRunSource | undefined;
  leaderRuns: () => Promise<LeaderRuns | undefined>;
  options: PushOptions;
}

/**
 * Brings `nodes` to the release: the nodes not known are surveyed first (one batch), then each
 * node that needs it gets its second batch. Returns every node's outcome, and the state of each
 * node that succeeded, for the next push (watch).
 */
export async function pushReleaseThroughTree(
  inventory: TreeInventory,
  push: TreePush,
): Promise<{ outcomes: NodeOutcome[]; states: Map<string, WorkerState> }> {
  const { release: plan, nodes, options, source } = push;
  const started = Date.now();
  const project = inventory.project.name;
  const outcomes = new Map<string, NodeOutcome>();
  const states = new Map<string, WorkerState>();
  const surveys = new Map<NodeSpec, Survey>();
  const done = (node: NodeSpec, outcome: { result: NodePushResult } | { error: string }) => {
    const ms = Date.now() - started;
    if ("result" in outcome) {
      outcomes.set(node.name, { node: node.name, role: node.role, ok: true, result: outcome.result, ms });
      const before = surveys.get(node)?.state;
      if (before && outcome.result.status !== "would-publish")
        states.set(node.name, stateAfterPublish(before, plan.release, true));
      options.onEvent?.({ type: "node-done", node: node.name, result: outcome.result, ms });
    } else {
      outcomes.set(node.name, { node: node.name, role: node.role, ok: false, error: outcome.error, ms });
      options.onEvent?.({ type: "node-failed", node: node.name, error: outcome.error, ms });
    }
  };
  const unknown = nodes.filter((n) => !push.known?.has(n.name));
  for (const node of nodes) options.onEvent?.({ type: "node-start", node: node.name });
  for (const node of unknown)
    options.onEvent?.({ type: "node-progress", node: node.name, phase: "checking" });
  const runsOnLeader = push.leaderRuns();
  for (const node of nodes) {
    const state = push.known?.get(node.name);
    if (state) surveys.set(node, { state, verified: undefined });
  }
  for (const [node, surveyed] of await survey(inventory, plan, unknown, options, done))
    surveys.set(node, surveyed);
  const leaderRuns = await runsOnLeader;
  await rememberManifest(project, plan.release.id, plan.release.files);
  let batches = await secondBatches(inventory, plan, surveys, leaderRuns, source, options, done, false);
  for (let attempt = 0; batches.length > 0 && attempt < 2; attempt++) {
    const retry: [NodeSpec, Survey][] = [];
    await runBatches(
      inventory.tree,
      batches.map((b) => b.batch),
      {
        lockTimeoutSeconds: options.lockTimeoutSeconds ?? 60,
        ...(options.signal ? { signal: options.signal } : {}),
        onNodeDone: (outcome) => {
          const pending = batches.find((b) => b.batch.node === outcome.node)!;
          const read = readSecond(outcome, pending.steps, pending.result);
          if (read === "retry-whole" && attempt === 0) retry.push([outcome.node, pending.survey]);
          else if (read === "retry-whole")
            done(outcome.node, { error: "the worker's releases changed during the push; run again" });
          else done(outcome.node, read);
        },
      },
    );
    batches =
      retry.length > 0
        ? await secondBatches(inventory, plan, new Map(retry), leaderRuns, source, options, done, true)
        : [];
  }
  return {
    outcomes: nodes.map(
      (n) =>
        outcomes.get(n.name) ?? {
          node: n.name,
          role: n.role,
          ok: false,
          error: "not pushed: the push was stopped",
          ms: Date.now() - started,
        },
    ),
    states,
  };
}

/** The first batch: hello, the quick check and a verify, from every node at once. */
async function survey(
  inventory: TreeInventory,
  plan: TreeRelease,
  nodes: readonly NodeSpec[],
  options: PushOptions,
  done: (node: NodeSpec, outcome: { error: string }) => void,
): Promise<Map<NodeSpec, Survey>> {
  const project = inventory.project.name;
  const batches: NodeBatch[] = nodes.map((node) => ({
    node,
    requests: [
      treeHello(node, project),
      ...(plan.expectations
        ? [{ request: { op: "check" as const, ...checkFields({ leader: plan.expectations, deep: false }) } }]
        : []),
      ...(plan.topLevel.length > 0 ? [{ request: { op: "verify" as const, topLevel: plan.topLevel } }] : []),
    ],
  }));
  const surveys = new Map<NodeSpec, Survey>();
  await runBatches(inventory.tree, batches, {
    ...(options.signal ? { signal: options.signal } : {}),
    onNodeDone: (outcome) => {
      const node = outcome.node;
      try {
        const replies = replies_(outcome);
        if (outcome.ok && outcome.loginOutput)
          options.onEvent?.({
            type: "node-warning",
            node: node.name,
            message: loginOutputWarning(outcome.loginOutput),
          });
        const state = readReply.hello(node.name, replies[0]!);
        let at = 1;
        if (plan.expectations) {
          const facts = readReply.check(node.name, replies[at++]!);
          const refusal = notReady(
            node,
            judgeNode(facts, { ...plan.expectations, venv: node.venv }),
            "pushed",
          );
          if (refusal) throw refusal;
        }
        const verified = plan.topLevel.length > 0 ? verdictOf(node, replies[at]!, plan.topLevel) : undefined;
        surveys.set(node, { state, verified });
      } catch (error) {
        done(node, { error: (error as Error).message });
      }
    },
  });
  return surveys;
}

function replies_(outcome: BatchOutcome): AgentReply[] {
  if (!outcome.ok) throw outcome.error;
  return outcome.replies;
}

function verdictOf(
  node: NodeSpec,
  reply: AgentReply,
  topLevel: readonly string[],
  release?: string,
): NodeError | undefined {
  const v = readReply.verify(node.name, reply);
  const verdict = entryVerdict(v, topLevel, v.projectDir, v.current);
  if (verdict.status !== "fail") return undefined;
  const which = release ? `the run's release ${release} was installed` : "pushed";
  return new NodeError(node.name, `${which}, but ${verdict.detail}`);
}

interface Pending {
  batch: NodeBatch;
  steps: Step[];
  survey: Survey;
  result: NodePushResult;
}

/** Each node's second batch, or its outcome when it needs none. */
async function secondBatches(
  inventory: TreeInventory,
  plan: TreeRelease,
  surveys: Map<NodeSpec, Survey>,
  leaderRuns: LeaderRuns | undefined,
  source: LeaderRunSource | undefined,
  options: PushOptions,
  done: (node: NodeSpec, outcome: { result: NodePushResult } | { error: string }) => void,
  whole: boolean,
): Promise<Pending[]> {
  const { release } = plan;
  const lockTimeout = options.lockTimeoutSeconds ?? 60;
  const fields = {
    lockTimeout,
    ...(leaderRuns ? { protect: protectedReleases(leaderRuns) } : { collect: false as const }),
    ...(release.origin ? { origin: release.origin } : {}),
  };
  const pending: Pending[] = [];
  // Nodes on the same base release share its plan and archive: read, planned and packed once.
  const planned = new Map<string, Promise<{ base: string | null; publish: PublishPlan; archive?: Buffer }>>();
  const planFor = (current: string | null) => {
    const key = current ?? "";
    let p = planned.get(key);
    if (!p) {
      p = (async () => {
        const baseFiles = current ? await knownManifest(release.project, current) : undefined;
        const publish = planPublish(release.files, baseFiles);
        return {
          base: baseFiles ? current : null,
          publish,
          ...(options.dryRun ? {} : { archive: await plan.archives.gzipped(publish.delta.send) }),
        };
      })();
      planned.set(key, p);
    }
    return p;
  };
  for (const [node, { state, verified }] of surveys) {
    try {
      const result = unchangedUnlessRefused(node, state, release, options.replace ?? false);
      const steps: Step[] = [];
      const step = whole ? "publish" : pushStep(state, release.id, true);
      if (step === "switch") {
        steps.push({
          request: { op: "prepare", release: release.id, ...fields },
          read: (reply, r) => ({
            ...r,
            status: readReply.prepare(node.name, reply).status === "present" ? "unchanged" : "switched",
          }),
        });
      } else if (step === "publish") {
        const { base, publish, archive } = await planFor(whole ? null : state.current);
        if (!archive) {
          done(node, {
            result: {
              ...result,
              status: "would-publish",
              filesSent: publish.delta.send.length,
              bytesSent: publish.delta.bytesToSend,
              filesLinked: publish.delta.reuse.length,
              filesRemoved: publish.delta.removed.length,
              wouldChange: { send: publish.delta.send.map((f) => f.path), remove: publish.delta.removed },
            },
          });
          continue;
        }
        let status: string | undefined;
        steps.push({
          request: {
            op: "prepare",
            release: release.id,
            ...fields,
            base,
            upsert: publish.upsert,
            remove: publish.remove,
            reuse: publish.reuse,
          },
          read: (reply, r) => {
            status = readReply.prepare(node.name, reply).status;
            if (status === "base-missing") return "retry-whole";
            return status === "ready"
              ? r
              : { ...r, status: status === "switched" ? "switched" : "unchanged" };
          },
        });
        steps.push({
          request: { op: "upload" },
          payload: archive,
          read: (reply, r) => {
            if (status !== "ready") return r;
            const published = readReply.upload(node.name, reply);
            return {
              ...r,
              status: "published",
              filesSent: published.received,
              bytesSent: archive.length,
              filesLinked: published.linked,
              filesRemoved: publish.delta.removed.length,
            };
          },
        });
      } else if (verified) throw verified;
      if (step !== "nothing" && plan.topLevel.length > 0)
        steps.push({
          request: { op: "verify", topLevel: plan.topLevel },
          read: (reply, r) => {
            const failed = verdictOf(node, reply, plan.topLevel);
            if (failed) throw failed;
            return r;
          },
        });
      for (const run of await runReleasesFor(state, leaderRuns, source, release.id))
        steps.push(...(await runReleaseSteps(node, run, fields)));
      if (steps.length === 0) {
        done(node, { result });
        continue;
      }
      options.onEvent?.({ type: "node-progress", node: node.name, phase: "preparing" });
      pending.push({
        batch: { node, requests: [treeHello(node, inventory.project.name), ...steps] },
        steps,
        survey: surveys.get(node)!,
        result,
      });
    } catch (error) {
      done(node, { error: (error as Error).message });
    }
  }
  return pending;
}

async function runReleasesFor(
  state: WorkerState,
  leaderRuns: LeaderRuns | undefined,
  source: LeaderRunSource | undefined,
  current: string,
): Promise<RunRelease[]> {
  if (!leaderRuns || !source) return [];
  const lacking = runReleasesLacking(leaderRuns.runs, state.releases, current);
  return Promise.all(lacking.map((id) => source.release(id)));
}

/** A live run's release the node lacks, published beside `current` (sent whole) and verified. */
async function runReleaseSteps(node: NodeSpec, run: RunRelease, fields: object): Promise<Step[]> {
  const id = run.release.id;
  const all = planPublish(run.release.files, undefined);
  let ready = false;
  const archive = await run.archives.gzipped(all.delta.send);
  return [
    {
      request: {
        op: "prepare",
        release: id,
        ...fields,
        activate: false,
        base: null,
        upsert: all.upsert,
        remove: [],
        reuse: [],
      },
      read: (reply, r) => {
        ready = readReply.prepare(node.name, reply).status === "ready";
        return r;
      },
    },
    {
      request: { op: "upload" },
      payload: archive,
      read: (reply, r) => {
        if (ready) readReply.upload(node.name, reply);
        return { ...r, runReleases: [...(r.runReleases ?? []), id] };
      },
    },
    {
      request: { op: "verify", topLevel: run.topLevel, release: id },
      read: (reply, r) => {
        const failed = verdictOf(node, reply, run.topLevel, id);
        if (failed) throw failed;
        return r;
      },
    },
  ];
}

/** A node's second batch read step by step; the first reply is the batch's hello. */
function readSecond(
  outcome: BatchOutcome,
  steps: readonly Step[],
  start: NodePushResult,
): { result: NodePushResult } | { error: string } | "retry-whole" {
  try {
    const replies = replies_(outcome);
    readReply.hello(outcome.node.name, replies[0]!);
    let result = start;
    for (const [i, step] of steps.entries()) {
      const read = step.read(replies[i + 1]!, result);
      if (read === "retry-whole") return read;
      result = read;
    }
    return { result };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
