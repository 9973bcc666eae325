import { releaseIdOf, totalBytes } from "../core/manifest.js";
import type { LeaderExpectations } from "../core/node-checks.js";
import type { Resolution } from "../resolve/resolver.js";

/** What every node is compared with: the leader's interpreter, Toil, imports and module set. */
export function leaderExpectations(resolution: Resolution): LeaderExpectations {
  return {
    venv: "",
    pythonVersion: resolution.python.version,
    toilVersion: resolution.toilVersion,
    thirdParty: resolution.thirdParty,
    releaseId: releaseIdOf(resolution.release),
    setBytes: totalBytes(resolution.release),
  };
}
