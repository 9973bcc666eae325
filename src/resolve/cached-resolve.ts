import { loadDigestCache, saveDigestCache } from "./digest-store.js";
import { probeFor, type Resolution, type ResolveOptions, resolveProject, sourcePathsOf } from "./resolver.js";

/**
 * One-shot commands reuse the digests of files unchanged since the last run (see digest-store.ts).
 * The interpreter is asked afresh every run: what it reports can change without a trace on disk.
 * It is asked while the stored digests are read, and the digests are stored again while the
 * command goes on with the resolution (the process does not exit before the file is written).
 */
export async function resolveWithStoredDigests(options: ResolveOptions): Promise<Resolution> {
  const env = options.env ?? process.env;
  const [cache, facts] = await Promise.all([
    options.cache ?? loadDigestCache(options.startDir, env),
    options.facts ?? probeFor(options),
  ]);
  const resolution = await resolveProject({ ...options, cache, facts });
  cache.retainOnly(sourcePathsOf(resolution));
  // Only ever a shortcut: a failure to store it is no failure of the command.
  saveDigestCache(options.startDir, cache, env).catch(() => undefined);
  return resolution;
}
