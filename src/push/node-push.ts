import { planDelta } from "../core/delta.js";
import type { ManifestFile } from "../core/manifest.js";
import { NodeError } from "../errors.js";
import type { NodeSpec } from "../inventory/types.js";
import { AgentError, type AgentReply, type AgentSession } from "../transport/agent-session.js";
import type { ArchiveCache } from "./archive.js";

/** One release to bring a worker to. */
export interface Release {
  id: string;
  files: ManifestFile[];
  project: string;
}

/** What the worker reported about itself when the session started. */
export interface WorkerState {
  current: string | null;
  releases: { id: string; time: number }[];
  manifest: [string, number, number, string][] | null;
  pthOk: boolean;
  sitePackages: string | null;
  python: { executable: string; version: string };
  projectDir: string;
}

export type NodePushStatus = "unchanged" | "switched" | "published" | "would-publish";

export interface NodePushResult {
  status: NodePushStatus;
  release: string;
  previous: string | null;
  filesSent: number;
  bytesSent: number;
  filesLinked: number;
}

export interface PushSettings {
  keep: number;
  lockTimeoutSeconds: number;
  dryRun: boolean;
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
  const base = {
    status: "unchanged" as NodePushStatus,
    release: release.id,
    previous: state.current,
    filesSent: 0,
    bytesSent: 0,
    filesLinked: 0,
  };
  if (state.current === release.id && state.pthOk) return base;
  const common = { release: release.id, lockTimeout: settings.lockTimeoutSeconds };
  if (state.releases.some((r) => r.id === release.id)) {
    if (settings.dryRun) return { ...base, status: "switched" };
    await session.request({ op: "prepare", ...common }, undefined, (settings.lockTimeoutSeconds + 60) * 1000);
    return { ...base, status: "switched" };
  }
  let baseManifest = state.current ? manifestFromWire(state.manifest) : undefined;
  for (let attempt = 0; ; attempt++) {
    const delta = planDelta(release.files, baseManifest);
    if (settings.dryRun) {
      return {
        ...base,
        status: "would-publish",
        filesSent: delta.send.length,
        bytesSent: delta.bytesToSend,
        filesLinked: delta.reuse.length,
      };
    }
    const baseId = baseManifest ? state.current : null;
    const basePaths = new Map((baseManifest ?? []).map((f) => [f.path, f]));
    const unchanged = (f: ManifestFile) => {
      const old = basePaths.get(f.path);
      return old !== undefined && old.sha256 === f.sha256 && old.size === f.size && old.mode === f.mode;
    };
    const moved = delta.reuse.filter((r) => r.from !== r.file.path || !unchanged(r.file));
    const upsert = [...delta.send, ...moved.map((r) => r.file)].map((f) => [
      f.path,
      f.size,
      f.mode,
      f.sha256,
    ]);
    const prepared: AgentReply = await session.request(
      {
        op: "prepare",
        ...common,
        base: baseId,
        upsert,
        remove: delta.removed,
        reuse: moved.map((r) => [r.file.path, r.from]),
      },
      undefined,
      (settings.lockTimeoutSeconds + 120) * 1000,
    );
    if (prepared.status === "switched") return { ...base, status: "switched" };
    if (prepared.status === "base-missing") {
      // Another pusher removed our base meanwhile: send everything once.
      if (attempt > 0)
        throw new NodeError(node.name, "the worker's releases changed during the push; run again");
      baseManifest = undefined;
      continue;
    }
    const archive = await archives.get(delta.send);
    let published: AgentReply;
    try {
      published = await session.request({ op: "upload" }, archive, uploadTimeoutMs(archive.length));
    } catch (error) {
      if (error instanceof AgentError && error.code === "no-space") {
        throw new NodeError(node.name, `${error.message}; the current release was left as it was`);
      }
      throw error;
    }
    return {
      ...base,
      status: "published",
      filesSent: Number(published.received ?? delta.send.length),
      bytesSent: archive.length,
      filesLinked: Number(published.linked ?? 0),
    };
  }
}
