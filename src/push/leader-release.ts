import { hostname } from "node:os";
import { topLevelNamesOf } from "../core/module-set/module-set.js";
import type { LeaderExpectations } from "../core/readiness/node-checks.js";
import { releaseIdOf } from "../core/release/manifest.js";
import { leaderExpectations } from "../readiness/leader-expectations.js";
import type { Resolution } from "../resolve/resolver.js";
import { ArchiveCache } from "./archive.js";
import type { Release } from "./node-push.js";

/**
 * The leader's release as push, watch and status use it, built once from a resolution: what
 * workers receive, the archives they are sent, what each node is checked against, and the
 * top-level names verified to load from the release after publishing.
 */
export interface LeaderRelease {
  release: Release;
  archives: ArchiveCache;
  expectations: LeaderExpectations;
  /** The set's top-level names (of every root), sorted. */
  topLevel: string[];
}

export function releaseOf(resolution: Resolution, project: string): Release {
  return {
    id: releaseIdOf(resolution.release),
    files: resolution.release,
    project,
    origin: { host: hostname(), root: resolution.root },
  };
}

export function leaderReleaseOf(resolution: Resolution, project: string): LeaderRelease {
  let expectations: LeaderExpectations | undefined;
  const release = releaseOf(resolution, project);
  return {
    release,
    archives: new ArchiveCache(resolution.roots),
    // Computed when first asked for: push --no-check and watch --no-check never check a node.
    get expectations() {
      expectations ??= leaderExpectations(resolution, release.id);
      return expectations;
    },
    topLevel: [...topLevelNamesOf(resolution.files)].sort(),
  };
}
