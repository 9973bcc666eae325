import { createHash } from "node:crypto";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import pLimit from "p-limit";
import type { PythonImport } from "../core/python/python-imports.js";
import { DigestCache, type FileDigest } from "./file-digest.js";

/**
 * The digest cache kept on disk between runs, so a push after a push re-reads only the files
 * that changed. It cannot go stale the way an mtime-only cache can: an entry is used only while
 * the file's size, mtime, inode and ctime are all unchanged, and ctime moves on every write,
 * rename or `touch` (it cannot be set back without changing the clock). As in git's index,
 * files changed in the last seconds before saving are not kept, so an edit within the same
 * clock tick is never missed.
 */

// 3: imports carry `optional` (inside a try that catches ImportError); rows carry the compile verdict.
const FORMAT = 3;
const RACY_MS = 2000;

type Row = [
  absPath: string,
  size: number,
  mtimeMs: number,
  ctimeMs: number,
  ino: number,
  sha256: string,
  imports: PythonImport[] | null,
  compiled: FileDigest["compiled"] | null,
];

async function identity(
  path: string,
): Promise<{ size: number; mtimeMs: number; ctimeMs: number; ino: number } | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? { size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino } : undefined;
  } catch {
    return undefined;
  }
}

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
    const limit = pLimit(64);
    await Promise.all(
      doc.rows.map((row) =>
        limit(async () => {
          const [absPath, size, mtimeMs, ctimeMs, ino, sha256, imports, compiled] = row;
          const now = await identity(absPath);
          if (
            !now ||
            now.size !== size ||
            now.mtimeMs !== mtimeMs ||
            now.ctimeMs !== ctimeMs ||
            now.ino !== ino
          )
            return;
          const digest: FileDigest = imports ? { sha256, size, imports } : { sha256, size };
          if (compiled) digest.compiled = compiled;
          cache.set({ absPath, size, mtimeMs }, digest);
        }),
      ),
    );
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
  const limit = pLimit(64);
  const rows = (
    await Promise.all(
      [...cache.all()].map(([key, digest]) =>
        limit(async (): Promise<Row | undefined> => {
          const id = await identity(key.absPath);
          // Changed since it was hashed, or too recently to be sure a later edit would show.
          if (
            !id ||
            id.size !== key.size ||
            id.mtimeMs !== key.mtimeMs ||
            id.ctimeMs > now - RACY_MS ||
            id.mtimeMs > now - RACY_MS
          )
            return undefined;
          return [
            key.absPath,
            key.size,
            key.mtimeMs,
            id.ctimeMs,
            id.ino,
            digest.sha256,
            digest.imports ?? null,
            digest.compiled ?? null,
          ];
        }),
      ),
    )
  ).filter((r): r is Row => r !== undefined);
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
