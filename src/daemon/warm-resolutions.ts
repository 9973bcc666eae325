import { interpreterEnvironment } from "../core/python/path-environment.js";
import type { ResolveOptions } from "../resolve/resolver.js";
import type { DaemonResolution, ProjectRequest, WarmProjectStatus } from "./protocol.js";
import { WarmProject } from "./warm-project.js";

/**
 * The projects whose resolution the daemon keeps warm, one per key: the entry, the start
 * directory, the interpreter named, include and exclude, and the client's variables that shape
 * sys.path. Another value of any of them is another project, never the same one reused.
 */

// Each kept project holds watches and a python process; a user works on a few at a time.
const MAX_PROJECTS = 8;

export function projectKey(project: ProjectRequest): string {
  const env = Object.keys(project.env)
    .sort()
    .map((name) => [name, project.env[name]]);
  return JSON.stringify([
    project.entry,
    project.startDir,
    project.python ?? null,
    project.include,
    project.exclude,
    env,
  ]);
}

function resolveOptionsOf(project: ProjectRequest): ResolveOptions {
  return {
    entry: project.entry,
    startDir: project.startDir,
    ...(project.python !== undefined ? { python: project.python } : {}),
    include: project.include,
    exclude: project.exclude,
    env: { ...project.env },
    interpreterEnv: interpreterEnvironment(process.env, project.env),
  };
}

export class WarmResolutions {
  /** In order of use, the least recently used first. */
  private readonly projects = new Map<string, WarmProject>();

  constructor(private readonly log: (line: string) => void) {}

  resolve(request: ProjectRequest): Promise<DaemonResolution> {
    const key = projectKey(request);
    let project = this.projects.get(key);
    if (project) this.projects.delete(key);
    else project = new WarmProject(resolveOptionsOf(request), this.log);
    this.projects.set(key, project);
    for (const [oldKey, old] of this.projects) {
      if (this.projects.size <= MAX_PROJECTS) break;
      old.close();
      this.projects.delete(oldKey);
    }
    return project.resolve();
  }

  /** Drops the projects no command asked for in the last `idleMs`. */
  expire(nowMs: number, idleMs: number): void {
    for (const [key, project] of this.projects) {
      if (nowMs - project.lastUsedAt < idleMs) continue;
      project.close();
      this.projects.delete(key);
    }
  }

  status(): WarmProjectStatus[] {
    return [...this.projects.values()].map((p) => p.status());
  }

  close(): void {
    for (const project of this.projects.values()) project.close();
    this.projects.clear();
  }
}
