import { originConflict, type ProjectOrigin } from "./project-origin.js";

/**
 * What one worker needs before a push sends anything, decided from its hello: whether it can take
 * the release at all, and whether it has the release already, holds it unswitched, or lacks it.
 * Pure, so every branch is tested without a node; node-push.ts does what is decided.
 */

/** The parts of a worker's hello these decisions read. */
export interface WorkerReleases {
  current: string | null;
  /** Whether the venv's .pth points at the project: a switch rewrites it. */
  pthOk: boolean;
  releases: readonly { id: string }[];
  /** null when the venv is missing or is no virtualenv. */
  sitePackages: string | null;
  /** What the worker recorded of the project's origin. */
  origin?: unknown;
}

/** What the push asks of the worker: nothing, a switch to a release it holds, or a publish. */
export type PushStep = "nothing" | "switch" | "publish";

/**
 * `activate` false installs a live run's release beside `current`: holding it is enough. Otherwise
 * the worker is done only when the release is current and the .pth serves it.
 */
export function pushStep(worker: WorkerReleases, release: string, activate: boolean): PushStep {
  const holds = worker.releases.some((r) => r.id === release);
  if (!activate) return holds ? "nothing" : "publish";
  if (worker.current === release && worker.pthOk) return "nothing";
  return holds ? "switch" : "publish";
}

/** Why this worker cannot take the release, for the scientist; undefined when it can. */
export function pushRefusal(
  worker: WorkerReleases,
  target: {
    node: string;
    venv: string;
    project: string;
    origin?: ProjectOrigin | undefined;
    replace: boolean;
  },
): string | undefined {
  if (!worker.sitePackages)
    return `the virtualenv ${target.venv} does not exist on the node (or is not a virtualenv): create it with \`python3 -m venv --system-site-packages ${target.venv}\` or run \`sync-cluster check --fix\``;
  // --replace takes over a project of the same name pushed from another leader or root.
  if (target.origin && !target.replace)
    return originConflict(worker.origin, target.origin, target.project, target.node);
  return undefined;
}

/**
 * The release a publish sends a delta against: the worker's current one, when the leader knows
 * its files (from the hello's manifest); else none, and everything is sent.
 */
export function deltaBase(worker: { current: string | null }, manifestKnown: boolean): string | null {
  return worker.current && manifestKnown ? worker.current : null;
}

/** Archives up to this size are sent right behind their prepare request. */
export const PIPELINE_BYTES = 1024 * 1024;

/**
 * A small archive follows its prepare at once: the worker finds both in one wake-up and the push
 * costs one round trip. A large one waits for the worker's "ready", so a worker that refuses (no
 * space, a release it already has) is not sent megabytes it would throw away.
 */
export function sendsWithPrepare(archiveBytes: number): boolean {
  return archiveBytes <= PIPELINE_BYTES;
}
