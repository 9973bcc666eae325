import { pathShapingEnvironment } from "../core/python/path-environment.js";
import type { ResolveOptions } from "../resolve/resolver.js";
import { daemonBuild, openStream } from "./client.js";
import type { DaemonPlace } from "./place.js";
import type { DaemonResolution, ProjectRequest } from "./protocol.js";

/** The daemon did not resolve the project: the command resolves it itself. */
export class NoDaemonResolution extends Error {
  constructor(why: string) {
    super(`the daemon did not resolve the project: ${why}`);
  }
}

/**
 * Asks the user's daemon for a project's resolution, which it keeps warm between commands. The
 * project is sent as the command has it, with the client's variables that shape sys.path: the
 * daemon keeps one resolution per distinct set of them.
 */
export async function resolveThroughDaemon(
  place: DaemonPlace,
  options: ResolveOptions,
  idleSeconds: number,
): Promise<DaemonResolution> {
  const project: ProjectRequest = {
    entry: options.entry,
    startDir: options.startDir,
    ...(options.python !== undefined ? { python: options.python } : {}),
    include: [...(options.include ?? [])],
    exclude: [...(options.exclude ?? [])],
    env: pathShapingEnvironment(options.env ?? process.env, options.python),
  };
  const opened = await openStream(place, { op: "resolve", project, idleSeconds, build: daemonBuild() }).catch(
    (error: Error) => {
      throw new NoDaemonResolution(error.message);
    },
  );
  opened.socket.destroy();
  const { answer } = opened;
  if (answer.ok && answer.resolved) return answer.resolved;
  // An older daemon: asked to make way, as for a node request.
  if (!answer.ok && answer.code === "build") void openStream(place, { op: "stop" }).catch(() => undefined);
  throw new NoDaemonResolution(answer.ok ? "it answered without one" : answer.message);
}
