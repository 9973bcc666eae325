import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import pLimit from "p-limit";
import { ResolutionError } from "../core/errors.js";
import { type PythonImport, scanImports } from "../core/python/python-imports.js";

/** Content facts of one file: its hash, and for Python sources the imports written in it. */
export interface FileDigest {
  sha256: string;
  /** Bytes actually hashed: the size that ships, even if the file changed after it was listed. */
  size: number;
  imports?: PythonImport[];
  /** Python sources, once compiled with the leader's interpreter (`python` is its version). */
  compiled?: { python: string; error: { line: number; message: string } | null };
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

  /** Forgets `path` and every file below it: a change was seen there, whatever its size and mtime say. */
  forget(path: string): void {
    const below = `${path}/`;
    for (const key of this.entries.keys())
      if (key === path || key.startsWith(below)) this.entries.delete(key);
  }

  /** Forgets files that are no longer part of the project, so memory stays flat in long watches. */
  retainOnly(absPaths: ReadonlySet<string>): void {
    for (const path of this.entries.keys()) if (!absPaths.has(path)) this.entries.delete(path);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Every entry, for saving (see digest-store.ts). */
  *all(): Generator<[DigestKey, FileDigest]> {
    for (const [absPath, e] of this.entries) yield [{ absPath, size: e.size, mtimeMs: e.mtimeMs }, e.digest];
  }
}

const WHOLE_FILE_LIMIT = 8 * 1024 * 1024;

/** The largest file a module set may hold: the push reads each file it sends into memory. */
export const MAX_FILE_BYTES = 512 * 1024 * 1024;

/** The refusal for a file above MAX_FILE_BYTES; `path` is relative to the root when known. */
export function tooLargeError(path: string, size: number): ResolutionError {
  const gib = (size / 1024 / 1024 / 1024).toFixed(1);
  return new ResolutionError(
    `${path} is ${gib} GiB, more than the ${MAX_FILE_BYTES / 1024 / 1024} MiB limit for one file of the module set. ` +
      "If the workers do not need it, add it to `project.exclude` in the inventory (or narrow the `project.include` glob that picks it).",
  );
}

/**
 * Opens a file for reading only if it is a regular file. O_NONBLOCK makes opening a FIFO return at
 * once instead of waiting for a writer, so a FIFO or device swapped in after the listing is refused
 * rather than blocking (or streaming /dev/zero) for ever; it has no effect on regular files.
 */
export async function openRegularFile(path: string): Promise<{ handle: FileHandle; size: number }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const s = await handle.stat();
    if (!s.isFile()) {
      throw Object.assign(new Error("not a regular file (a FIFO, device or socket took its place)"), {
        code: "ENOTREG",
        path,
      });
    }
    return { handle, size: s.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function digestOne(key: DigestKey): Promise<FileDigest> {
  const isSource = key.absPath.endsWith(".py");
  const { handle, size: openedSize } = await openRegularFile(key.absPath);
  try {
    // The listing checked the size already; this catches a file that grew since.
    if (openedSize > MAX_FILE_BYTES) throw tooLargeError(key.absPath, openedSize);
    if (key.size <= WHOLE_FILE_LIMIT || isSource) {
      const content = await handle.readFile();
      const sha256 = createHash("sha256").update(content).digest("hex");
      const size = content.length;
      return isSource ? { sha256, size, imports: scanImports(content.toString("utf8")) } : { sha256, size };
    }
    // Large data files are streamed so memory does not grow with them.
    const hash = createHash("sha256");
    let size = 0;
    for await (const chunk of handle.createReadStream({ autoClose: false })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return { sha256: hash.digest("hex"), size };
  } finally {
    await handle.close();
  }
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
