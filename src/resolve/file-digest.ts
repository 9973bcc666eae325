import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import pLimit from "p-limit";
import { type PythonImport, scanImports } from "../core/python-imports.js";

/** Content facts of one file: its hash, and for Python sources the imports written in it. */
export interface FileDigest {
  sha256: string;
  /** Bytes actually hashed: the size that ships, even if the file changed after it was listed. */
  size: number;
  imports?: PythonImport[];
}

/** Key for the in-memory cache that watch mode keeps: a file whose size and mtime are unchanged is not re-read. */
export interface DigestKey {
  absPath: string;
  size: number;
  mtimeMs: number;
}

export class DigestCache {
  private readonly entries = new Map<string, { size: number; mtimeMs: number; digest: FileDigest }>();

  get(key: DigestKey): FileDigest | undefined {
    const hit = this.entries.get(key.absPath);
    return hit && hit.size === key.size && hit.mtimeMs === key.mtimeMs ? hit.digest : undefined;
  }

  set(key: DigestKey, digest: FileDigest): void {
    this.entries.set(key.absPath, { size: key.size, mtimeMs: key.mtimeMs, digest });
  }

  /** Forgets files that are no longer part of the project, so memory stays flat in long watches. */
  retainOnly(absPaths: ReadonlySet<string>): void {
    for (const path of this.entries.keys()) if (!absPaths.has(path)) this.entries.delete(path);
  }

  get size(): number {
    return this.entries.size;
  }
}

const WHOLE_FILE_LIMIT = 8 * 1024 * 1024;

async function digestOne(key: DigestKey): Promise<FileDigest> {
  const isSource = key.absPath.endsWith(".py");
  if (key.size <= WHOLE_FILE_LIMIT || isSource) {
    const content = await readFile(key.absPath);
    const sha256 = createHash("sha256").update(content).digest("hex");
    const size = content.length;
    return isSource ? { sha256, size, imports: scanImports(content.toString("utf8")) } : { sha256, size };
  }
  // Large data files are streamed so memory does not grow with them.
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(key.absPath)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest("hex"), size };
}

/** Hashes files (and scans the Python ones), a bounded number at a time, using and filling the cache. */
export async function digestFiles(keys: readonly DigestKey[], cache?: DigestCache): Promise<FileDigest[]> {
  const limit = pLimit(32);
  return Promise.all(
    keys.map((key) => {
      const cached = cache?.get(key);
      if (cached) return cached;
      return limit(async () => {
        const digest = await digestOne(key);
        cache?.set(key, digest);
        return digest;
      });
    }),
  );
}
