import { NodeError } from "../core/errors.js";
import type { ManifestFile } from "../core/manifest.js";
import { entryVerdict, type OriginsProbe } from "../core/node-checks.js";
import { originConflict, type ProjectOrigin } from "../core/project-origin.js";
import { type PublishPlan, planPublish, type WireFile } from "../core/publish-plan.js";
import type { NodeSpec } from "../inventory/types.js";
import { AgentError, type AgentReply, type AgentSession } from "../transport/agent-session.js";
import type { ArchiveCache } from "./archive.js";

/** One release to bring a worker to. */
export interface Release {
  id: string;
  files: ManifestFile[];
  project: string;
  /** Where the release comes from; recorded on the worker, and a different recorded one is refused. */
  origin?: ProjectOrigin;
}

/** What the worker reported about itself when the session started. */
export interface WorkerState {
  current: string | null;
  releases: { id: string; time: number }[];
  manifest: WireFile[] | null;
  /** The same manifest, kept as objects once known (watch), so it is not converted per release. */
  manifestFiles?: ManifestFile[];
  pthOk: boolean;
  sitePackages: string | null;
  /** The venv, expanded on the node, and the PATH its login gives commands. */
  venv: string;
  path: string;
  /** Releases a workflow run used within the last days (agent.py, PIN_SECONDS). */
  pinned: string[];
  python: { executable: string; version: string };
  projectDir: string;
  /** What the worker recorded of the project's origin (project-origin.ts); absent from older agents. */
  origin?: unknown;
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
  keep: number;
  lockTimeoutSeconds: number;
  dryRun: boolean;
  /** Replace a project of the same name pushed from another leader or root (--replace). */
  replace?: boolean;
  onProgress?: (progress: NodeProgress) => void;
}

export async function hello(
  session: AgentSession,
  node: NodeSpec,
  project: string,
  keep: number,
  withManifest = true,
): Promise<WorkerState> {
  const reply = await session.request(
    { op: "hello", deployDir: node.deployDir, project, venv: node.venv, keep, withManifest },
    undefined,
    60_000,
  );
  return reply as unknown as WorkerState;
}

export function manifestFromWire(rows: WorkerState["manifest"]): ManifestFile[] | undefined {
  return rows?.map(([path, size, mode, sha256]) => ({ path, size, mode, sha256 }));
}

/**
 * Fails the node when the venv's python, after the switch, would load a top-level name of the set
 * from anywhere but the release (an older installed copy shadowing it: Toil issue 1652).
 */
export async function verifyEntry(
  session: AgentSession,
  node: NodeSpec,
  topLevel: readonly string[],
): Promise<void> {
  if (topLevel.length === 0) return;
  const reply = await session.request({ op: "verify", topLevel }, undefined, 60_000);
  const verdict = entryVerdict(
    reply as OriginsProbe,
    topLevel,
    String(reply.projectDir),
    (reply.current as string | null) ?? null,
  );
  if (verdict.status === "fail") throw new NodeError(node.name, `pushed, but ${verdict.detail}`);
}

/**
 * Plans by release and base release id: the id is derived from the content, so every worker on
 * the same base shares one plan (watch brings many workers from the same release to the next).
 */
const plans = new WeakMap<Release, Map<string, PublishPlan>>();

function planFor(
  release: Release,
  baseId: string | null,
  baseManifest: () => ManifestFile[] | undefined,
): PublishPlan {
  let byBase = plans.get(release);
  if (!byBase) {
    byBase = new Map();
    plans.set(release, byBase);
  }
  const key = baseId ?? "";
  let plan = byBase.get(key);
  if (!plan) {
    plan = planPublish(release.files, baseId ? baseManifest() : undefined);
    byBase.set(key, plan);
  }
  return plan;
}

/** Archives up to this size are sent right behind their prepare request (see pushToNode). */
const PIPELINE_BYTES = 1024 * 1024;

function noSpaceExplained(node: NodeSpec, error: unknown): unknown {
  return error instanceof AgentError && error.code === "no-space"
    ? new NodeError(node.name, `${error.message}; the current release was left as it was`)
    : error;
}

/** Seconds allowed for an upload: generous for slow links, never infinite. */
function uploadTimeoutMs(bytes: number): number {
  return 120_000 + Math.ceil(bytes / (256 * 1024)) * 1000;
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
  archives: ArchiveCache,
  settings: PushSettings,
): Promise<NodePushResult> {
  if (!state.sitePackages) {
    throw new NodeError(
      node.name,
      `the virtualenv ${node.venv} does not exist on the node (or is not a virtualenv): create it with \`python3 -m venv --system-site-packages ${node.venv}\` or run \`sync-cluster check --fix\``,
    );
  }
  if (release.origin && !settings.replace) {
    const conflict = originConflict(state.origin, release.origin, release.project, node.name);
    if (conflict) throw new NodeError(node.name, conflict);
  }
  const base = {
    status: "unchanged" as NodePushStatus,
    release: release.id,
    previous: state.current,
    filesSent: 0,
    bytesSent: 0,
    filesLinked: 0,
    filesRemoved: 0,
  };
  if (state.current === release.id && state.pthOk) return base;
  const common = {
    release: release.id,
    lockTimeout: settings.lockTimeoutSeconds,
    ...(settings.protect?.length ? { protect: settings.protect } : {}),
    ...(release.origin ? { origin: release.origin } : {}),
  };
  if (state.releases.some((r) => r.id === release.id)) {
    if (settings.dryRun) return { ...base, status: "switched" };
    await session.request({ op: "prepare", ...common }, undefined, (settings.lockTimeoutSeconds + 60) * 1000);
    return { ...base, status: "switched" };
  }
  settings.onProgress?.({ phase: "preparing" });
  const upload = (archive: Buffer, files: number, extraTimeoutMs: number): Promise<AgentReply> => {
    const progress = settings.onProgress;
    const total = archive.length;
    progress?.({ phase: "sending", bytesSent: 0, bytesTotal: total, files });
    return session.request(
      { op: "upload" },
      archive,
      extraTimeoutMs + uploadTimeoutMs(total),
      progress &&
        ((bytesSent) => {
          progress({ phase: "sending", bytesSent, bytesTotal: total, files });
          // Everything is on its way: the worker now verifies, publishes and switches.
          if (bytesSent === total) progress({ phase: "publishing" });
        }),
    );
  };
  let baseId = state.current && (state.manifestFiles || state.manifest) ? state.current : null;
  for (let attempt = 0; ; attempt++) {
    const plan = planFor(release, baseId, () => state.manifestFiles ?? manifestFromWire(state.manifest));
    const delta = plan.delta;
    if (settings.dryRun) {
      return {
        ...base,
        status: "would-publish",
        filesSent: delta.send.length,
        bytesSent: delta.bytesToSend,
        filesLinked: delta.reuse.length,
        filesRemoved: delta.removed.length,
        wouldChange: { send: delta.send.map((f) => f.path), remove: delta.removed },
      };
    }
    const archive = await archives.get(delta.send);
    const prepareTimeoutMs = (settings.lockTimeoutSeconds + 120) * 1000;
    const preparing = session.request(
      { op: "prepare", ...common, base: baseId, upsert: plan.upsert, remove: plan.remove, reuse: plan.reuse },
      undefined,
      prepareTimeoutMs,
    );
    // A small archive follows its prepare at once: the worker finds both in one wake-up and the
    // push costs one round trip. A large one waits for the worker's "ready", so a worker that
    // refuses (no space, a release it already has) is not sent megabytes it would throw away.
    // A pipelined upload after a refused prepare is refused in turn ("upload without prepare").
    const pipelined =
      archive.length <= PIPELINE_BYTES ? upload(archive, delta.send.length, prepareTimeoutMs) : undefined;
    pipelined?.catch(() => {});
    let prepared: AgentReply;
    try {
      prepared = await preparing;
    } catch (error) {
      throw noSpaceExplained(node, error);
    }
    if (prepared.status === "switched" || prepared.status === "base-missing") {
      await pipelined?.catch(() => {});
      if (prepared.status === "switched") return { ...base, status: "switched" };
      // Another pusher removed our base meanwhile: send everything once.
      if (attempt > 0)
        throw new NodeError(node.name, "the worker's releases changed during the push; run again");
      baseId = null;
      continue;
    }
    let published: AgentReply;
    try {
      published = await (pipelined ?? upload(archive, delta.send.length, 0));
    } catch (error) {
      throw noSpaceExplained(node, error);
    }
    return {
      ...base,
      status: "published",
      filesSent: Number(published.received ?? delta.send.length),
      bytesSent: archive.length,
      filesLinked: Number(published.linked ?? 0),
      filesRemoved: delta.removed.length,
    };
  }
}
