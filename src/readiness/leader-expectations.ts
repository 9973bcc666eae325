import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { topLevelNamesOf } from "../core/module-set/module-set.js";
import type { LeaderExpectations } from "../core/readiness/node-checks.js";
import { releaseIdOf, totalBytes } from "../core/release/manifest.js";
import type { Resolution } from "../resolve/resolver.js";

/** What every node is compared with: the leader's interpreter, Toil, imports and module set. */
export function leaderExpectations(
  resolution: Resolution,
  releaseId: string = releaseIdOf(resolution.release),
): LeaderExpectations {
  return {
    venv: "",
    pythonVersion: resolution.python.version,
    toilVersion: resolution.toilVersion,
    thirdParty: resolution.thirdParty,
    releaseId,
    setBytes: totalBytes(resolution.release),
    // Paths of `files` are relative to their own root: the names a worker imports from any root.
    topLevel: [...topLevelNamesOf(resolution.files)].sort(),
  };
}

/**
 * The venv this machine runs the workflow from, when sync-cluster runs on the leader itself: the
 * activated one, else the one the leader's interpreter belongs to.
 */
export function localLeaderVenv(resolution: Resolution, env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.VIRTUAL_ENV) return env.VIRTUAL_ENV;
  const prefix = dirname(dirname(resolution.python.executable));
  return existsSync(join(prefix, "pyvenv.cfg")) ? prefix : null;
}
