import { loadDigestCache, saveDigestCache } from "./digest-store.js";
import { type Resolution, type ResolveOptions, resolveProject, sourcePathsOf } from "./resolver.js";

/**
 * One-shot commands reuse the digests of files unchanged since the last run (see digest-store.ts).
 * The interpreter is asked afresh every run: what it reports can change without a trace on disk.
 */
export async function resolveWithStoredDigests(options: ResolveOptions): Promise<Resolution> {
  const env = options.env ?? process.env;
  const cache = options.cache ?? (await loadDigestCache(options.startDir, env));
  const resolution = await resolveProject({ ...options, cache });
  cache.retainOnly(sourcePathsOf(resolution));
  await saveDigestCache(options.startDir, cache, env);
  return resolution;
}
