import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { PythonImport } from "../core/python-imports.js";
import { DigestCache } from "./file-digest.js";

/**
 * The digest cache kept on disk between runs, so a push after a push re-reads only the files
 * whose size or mtime changed. As in git's index, entries modified in the last seconds before
 * saving are not kept: a later edit within the same mtime tick could otherwise go unnoticed.
 */

const FORMAT = 1;
const RACY_MS = 2000;

type Row = [absPath: string, size: number, mtimeMs: number, sha256: string, imports: PythonImport[] | null];

function storePath(root: string, env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  const id = createHash("sha256").update(root).digest("hex").slice(0, 20);
  return join(base, "sync-cluster", `digests-${id}.json`);
}

/** An empty cache when there is none or it cannot be read: it is only ever a shortcut. */
export async function loadDigestCache(
  root: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<DigestCache> {
  const cache = new DigestCache();
  try {
    const doc = JSON.parse(await readFile(storePath(root, env), "utf8")) as {
      format: number;
      root: string;
      rows: Row[];
    };
    if (doc.format !== FORMAT || doc.root !== root) return cache;
    for (const [absPath, size, mtimeMs, sha256, imports] of doc.rows) {
      cache.set({ absPath, size, mtimeMs }, imports ? { sha256, size, imports } : { sha256, size });
    }
  } catch {
    // Missing or damaged: start afresh.
  }
  return cache;
}

export async function saveDigestCache(
  root: string,
  cache: DigestCache,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const now = Date.now();
  const rows: Row[] = [];
  for (const [key, digest] of cache.all()) {
    if (key.mtimeMs > now - RACY_MS) continue;
    rows.push([key.absPath, key.size, key.mtimeMs, digest.sha256, digest.imports ?? null]);
  }
  const file = storePath(root, env);
  try {
    await mkdir(join(file, ".."), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ format: FORMAT, root, rows }), { mode: 0o600 });
    await rename(tmp, file);
  } catch {
    // A read-only home is no reason to fail a push.
  }
}
