import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { entryVerdict } from "../core/readiness/node-checks.js";
import type { ManifestFile } from "../core/release/manifest.js";
import type { ProjectOrigin } from "../core/release/project-origin.js";
import { type PublishPlan, planPublish } from "../core/release/publish-plan.js";
import { deltaBase, pushRefusal, pushStep, sendsWithPrepare } from "../core/release/push-decisions.js";
import { AgentError, type AgentSession } from "../transport/agent-session.js";
import {
  exportManifest,
  manifestFromWire,
  type PrepareReply,
  prepare,
  TIMEOUTS,
  type UploadReply,
  upload,
  verify,
  type WorkerState,
} from "../transport/worker-client.js";
import { knownManifest, rememberManifest } from "../tree/known-manifests.js";
import type { ReleaseArchives } from "./archive.js";

/** One release to bring a worker to. */
export interface Release {
  id: string;
  files: ManifestFile[];
  project: string;
  /** Where the release comes from; recorded on the worker, and a different recorded one is refused. */
  origin?: ProjectOrigin;
}

export type NodePushStatus = "unchanged" | "switched" | "published" | "would-publish";

export interface NodePushResult {
  status: NodePushStatus;
  release: string;
  previous: string | null;
  filesSent: number;
  bytesSent: number;
  filesLinked: number;
  filesRemoved: number;
  /** Releases of live workflow runs the node lacked, published beside `current`. */
  runReleases?: string[];
  /** With --dry-run: the paths the worker would receive and the ones its new release would drop. */
  wouldChange?: { send: string[]; remove: string[] };
}

/** Where one worker's push stands, for live progress. */
export type NodeProgress =
  | { phase: "checking" | "preparing" | "publishing" }
  | { phase: "sending"; bytesSent: number; bytesTotal: number; files: number };

export interface PushSettings {
  /** Releases workflow runs on the leader use: the worker keeps them. */
  protect?: readonly string[];
  /** false when the leader's pins could not be read: the worker collects nothing. */
  collect?: boolean;
  /** false: publish the release beside `current` without switching (a live run's release). */
  activate?: boolean;
  keep: number;
  lockTimeoutSeconds: number;
  dryRun: boolean;
  /** Replace a project of the same name pushed from another leader or root (--replace). */
  replace?: boolean;
  onProgress?: (progress: NodeProgress) => void;
  /**
   * Verifies the node as a job would start there (verifyEntry), once it is on the release. It is
   * sent right behind the request that publishes, so it costs no round trip of its own;
   * `extraTimeoutMs` covers the requests ahead of it. Its answer counts only when they succeed.
   */
  verify?: (extraTimeoutMs: number) => Promise<void>;
}

/**
 * Fails the node when a job's interpreter, started fresh after the publish, would load a top-level
 * name of the set from anywhere but the release (an older installed copy shadowing it, so
 * jobs would silently run old code). `release` is a live run's release published beside `current`; `current` when absent.
 */
export async function verifyEntry(
  session: AgentSession,
  node: NodeSpec,
  topLevel: readonly string[],
  release?: string,
  extraTimeoutMs = 0,
): Promise<void> {
  if (topLevel.length === 0) return;
  const reply = await verify(session, topLevel, release, extraTimeoutMs);
  const verdict = entryVerdict(reply, topLevel, reply.projectDir, reply.current);
  if (verdict.status === "fail") {
    const which = release ? `the run's release ${release} was installed` : "pushed";
    throw new NodeError(node.name, `${which}, but ${verdict.detail}`);
  }
}

/** The worker's state once `release` is published on it (and current, unless only installed). */
export function stateAfterPublish(state: WorkerState, release: Release, activated: boolean): WorkerState {
  const releases = [
    { id: release.id, time: Date.now() / 1000 },
    ...state.releases.filter((r) => r.id !== release.id),
  ];
  if (!activated) return { ...state, releases };
  return {
    ...state,
    current: release.id,
    pthOk: true,
    manifest: null,
    manifestFiles: release.files,
    releases,
  };
}

/**
 * Plans by release and base release id: the id is derived from the content, so every worker on
 * the same base shares one plan (watch brings many workers from the same release to the next),
 * and the base's manifest is fetched once for all of them. Undefined: this worker could not have
 * the base's manifest, so the release is sent it whole.
 */
const plans = new WeakMap<Release, Map<string, Promise<PublishPlan | undefined>>>();

export function planFor(
  release: Release,
  baseId: string | null,
  baseManifest: () => Promise<ManifestFile[] | undefined>,
): Promise<PublishPlan | undefined> {
  let byBase = plans.get(release);
  if (!byBase) {
    byBase = new Map();
    plans.set(release, byBase);
  }
  const key = baseId ?? "";
  let plan = byBase.get(key);
  if (!plan) {
    const made = baseId
      ? baseManifest().then((files) => (files ? planPublish(release.files, files) : undefined))
      : Promise.resolve(planPublish(release.files, undefined));
    byBase.set(key, made);
    // A base manifest this worker could not get is asked again by the next worker on that base.
    const forget = () => byBase!.get(key) === made && byBase!.delete(key);
    made.then((p) => p ?? forget(), forget);
    plan = made;
  }
  return plan;
}

/**
 * The manifest of the worker's current release, which the handshake leaves out (a hundred KB of
 * JSON a worker, needed only by the first worker of a base, and never by a no-op): the one it
 * brought, else the one this leader kept when it built that release, else asked of the worker.
 */
async function baseManifestOf(session: AgentSession, state: WorkerState, project: string) {
  const brought = state.manifestFiles ?? manifestFromWire(state.manifest);
  if (brought || !state.current) return brought;
  const kept = await knownManifest(project, state.current);
  if (kept) return kept;
  try {
    return manifestFromWire(await exportManifest(session, state.current));
  } catch (error) {
    if (error instanceof AgentError) return undefined; // its release went meanwhile: sent whole
    throw error;
  }
}

/**
 * Starts the plan and the archive a publish to this worker will need, without waiting for them:
 * called before the worker's readiness check, so they are built while that round trip is on the
 * wire (both are shared by every worker on the same base, and memoized).
 */
export function planAhead(
  session: AgentSession,
  state: WorkerState,
  release: Release,
  archives: ReleaseArchives,
) {
  if (pushStep(state, release.id, true) !== "publish") return;
  void planFor(release, deltaBase(state, true), () => baseManifestOf(session, state, release.project))
    .then((plan) => plan && archives.get(plan.delta.send))
    .catch(() => undefined); // the publish plans again and reports what failed
}

/** Each release's manifest is kept once, for later pushes to start from (known-manifests.ts). */
const remembered = new WeakSet<Release>();

function rememberOnce(release: Release): Promise<void> {
  if (remembered.has(release)) return Promise.resolve();
  remembered.add(release);
  return rememberManifest(release.project, release.id, release.files);
}

/** A promise awaited later: its rejection is not reported as unhandled meanwhile. */
export function quiet<T>(promise: Promise<T>): Promise<T>;
export function quiet<T>(promise: Promise<T> | undefined): Promise<T> | undefined;
export function quiet<T>(promise: Promise<T> | undefined): Promise<T> | undefined {
  promise?.catch(() => {});
  return promise;
}

function noSpaceExplained(node: NodeSpec, error: unknown): unknown {
  return error instanceof AgentError && error.code === "no-space"
    ? new NodeError(node.name, `${error.message}; the current release was left as it was`)
    : error;
}

/**
 * Brings one worker to `release`: nothing when it is there already, a switch when the worker has
 * it, else the files it lacks and a publish. The worker builds aside and switches atomically.
 */
export async function pushToNode(
  session: AgentSession,
  node: NodeSpec,
  state: WorkerState,
  release: Release,
  archives: ReleaseArchives,
  settings: PushSettings,
): Promise<NodePushResult> {
  const unchanged = unchangedUnlessRefused(node, state, release, settings.replace ?? false);
  const activate = settings.activate ?? true;
  const step = pushStep(state, release.id, activate);
  if (step === "nothing") {
    if (!settings.dryRun) await settings.verify?.(0);
    return unchanged;
  }
  if (step === "switch") {
    if (settings.dryRun) return { ...unchanged, status: "switched" };
    const switching = prepare(session, prepareFields(release, settings, activate));
    const verified = quiet(settings.verify?.(TIMEOUTS.prepare(settings.lockTimeoutSeconds)));
    await switching;
    await verified;
    return { ...unchanged, status: "switched" };
  }
  settings.onProgress?.({ phase: "preparing" });
  return publish({ session, node, state, release, archives, settings }, unchanged);
}

/** Throws when the worker cannot take the release; else its result should nothing need doing. */
export function unchangedUnlessRefused(
  node: NodeSpec,
  state: WorkerState,
  release: Release,
  replace: boolean,
): NodePushResult {
  const refusal = pushRefusal(state, {
    node: node.name,
    venv: node.venv,
    project: release.project,
    origin: release.origin,
    replace,
  });
  if (refusal) throw new NodeError(node.name, refusal);
  return {
    status: "unchanged",
    release: release.id,
    previous: state.current,
    filesSent: 0,
    bytesSent: 0,
    filesLinked: 0,
    filesRemoved: 0,
  };
}

/** The fields every `prepare` of this push carries, whatever it sends. */
function prepareFields(release: Release, settings: PushSettings, activate: boolean) {
  return {
    release: release.id,
    lockTimeout: settings.lockTimeoutSeconds,
    ...(settings.protect?.length ? { protect: settings.protect } : {}),
    ...(settings.collect === false ? { collect: false as const } : {}),
    ...(activate ? {} : { activate: false as const }),
    ...(release.origin ? { origin: release.origin } : {}),
  };
}

/** Sends one archive, reporting its progress; once it is all on its way the worker publishes. */
function sendArchive(
  session: AgentSession,
  archive: Buffer,
  files: number,
  extraTimeoutMs: number,
  progress: PushSettings["onProgress"],
): Promise<UploadReply> {
  const total = archive.length;
  progress?.({ phase: "sending", bytesSent: 0, bytesTotal: total, files });
  return upload(
    session,
    archive,
    extraTimeoutMs,
    progress &&
      ((bytesSent) => {
        progress({ phase: "sending", bytesSent, bytesTotal: total, files });
        // Everything is on its way: the worker now verifies, publishes and switches.
        if (bytesSent === total) progress({ phase: "publishing" });
      }),
  );
}

/** One worker's push: its session and hello, the release and its archives, how to push. */
interface OnePush {
  session: AgentSession;
  node: NodeSpec;
  state: WorkerState;
  release: Release;
  archives: ReleaseArchives;
  settings: PushSettings;
}

/**
 * The files the worker lacks, sent against its current release, and the publish. A worker whose
 * base release another pusher removed meanwhile is sent everything, once.
 */
async function publish(push: OnePush, unchanged: NodePushResult): Promise<NodePushResult> {
  const { session, node, state, release, archives, settings } = push;
  const fields = prepareFields(release, settings, settings.activate ?? true);
  // Written while the worker works, so the next push can start from it.
  const remembering = settings.dryRun ? Promise.resolve() : rememberOnce(release);
  let baseId = deltaBase(state, true);
  for (let attempt = 0; ; attempt++) {
    let plan = await planFor(release, baseId, () => baseManifestOf(session, state, release.project));
    if (!plan) {
      baseId = null;
      plan = (await planFor(release, null, async () => undefined))!;
    }
    const delta = plan.delta;
    if (settings.dryRun) {
      return {
        ...unchanged,
        status: "would-publish",
        filesSent: delta.send.length,
        bytesSent: delta.bytesToSend,
        filesLinked: delta.reuse.length,
        filesRemoved: delta.removed.length,
        wouldChange: { send: delta.send.map((f) => f.path), remove: delta.removed },
      };
    }
    const archive = await archives.get(delta.send);
    const preparing = prepare(session, {
      ...fields,
      base: baseId,
      upsert: plan.upsert,
      remove: plan.remove,
      reuse: plan.reuse,
    });
    // A pipelined upload after a refused prepare is refused in turn ("upload without prepare"),
    // and the verification behind it then answers for the release the worker kept: not counted.
    const prepareTimeoutMs = TIMEOUTS.prepare(settings.lockTimeoutSeconds);
    const pipelined = sendsWithPrepare(archive.length)
      ? quiet(sendArchive(session, archive, delta.send.length, prepareTimeoutMs, settings.onProgress))
      : undefined;
    const verifiedBehind = pipelined
      ? quiet(settings.verify?.(prepareTimeoutMs + TIMEOUTS.upload(archive.length)))
      : undefined;
    let prepared: PrepareReply;
    try {
      prepared = await preparing;
    } catch (error) {
      throw noSpaceExplained(node, error);
    }
    if (prepared.status !== "ready") {
      await pipelined?.catch(() => {});
      if (prepared.status === "switched" || prepared.status === "present") {
        // The worker had the release (another push published it meanwhile): on it now.
        await (verifiedBehind ?? settings.verify?.(0));
        return prepared.status === "switched" ? { ...unchanged, status: "switched" } : unchanged;
      }
      await verifiedBehind?.catch(() => {});
      if (attempt > 0)
        throw new NodeError(node.name, "the worker's releases changed during the push; run again");
      baseId = null;
      continue;
    }
    const uploading =
      pipelined ?? quiet(sendArchive(session, archive, delta.send.length, 0, settings.onProgress));
    const verifying = pipelined ? verifiedBehind : quiet(settings.verify?.(TIMEOUTS.upload(archive.length)));
    let published: UploadReply;
    try {
      published = await uploading;
    } catch (error) {
      throw noSpaceExplained(node, error);
    }
    await verifying;
    await remembering;
    return {
      ...unchanged,
      status: "published",
      filesSent: published.received,
      bytesSent: archive.length,
      filesLinked: published.linked,
      filesRemoved: delta.removed.length,
    };
  }
}
