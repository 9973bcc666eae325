import { join } from "node:path";
import { loadDigestCache, saveDigestCache } from "./digest-store.js";
import { factsWithStore } from "./facts-store.js";
import { type Resolution, type ResolveOptions, resolveProject } from "./resolver.js";

/** One-shot commands resolve with what earlier runs learned: file digests and the interpreter's facts. */
export async function resolveWithStoredDigests(options: ResolveOptions): Promise<Resolution> {
  const env = options.env ?? process.env;
  const [cache, facts] = await Promise.all([
    options.cache ?? loadDigestCache(options.startDir, env),
    options.facts ?? factsWithStore(options),
  ]);
  const resolution = await resolveProject({ ...options, cache, facts });
  cache.retainOnly(new Set(resolution.files.map((f) => join(resolution.root, f.path))));
  await saveDigestCache(options.startDir, cache, env);
  return resolution;
}
