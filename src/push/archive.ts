import { createHash } from "node:crypto";
import { join } from "node:path";
import { ResolutionError } from "../core/errors.js";
import type { ManifestFile } from "../core/release/manifest.js";
import { sourceOf } from "../core/release/release-layout.js";
import { openRegularFile } from "../resolve/file-digest.js";

/**
 * The archive of the files a worker lacks. Workers in the same state need the same archive, so
 * it is built once per distinct set of files and written to each of them.
 */

/** Fixed time stamps: the archive of the same files is the same bytes. */
const EPOCH = new Date(0);

/** The archives of a release: each set of files a worker lacks, packed once. */
export interface ReleaseArchives {
  get(files: readonly ManifestFile[]): Promise<Buffer>;
}

/** Reads the content of one file of the release (checked against the manifest by the packer). */
export type ContentReader = (file: ManifestFile) => Promise<Buffer>;

/** Packs `files` in a tar, in order, each checked against its size and sha256 in the manifest. */
export async function packArchive(files: readonly ManifestFile[], read: ContentReader): Promise<Buffer> {
  // Loaded when an archive is built: a push with nothing to send does without it. A CommonJS
  // package: its exports object is the default export, in the bundle as in Node's own loader.
  const { default: tarStream } = await import("tar-stream");
  const archive = tarStream.pack();
  const chunks: Buffer[] = [];
  archive.on("data", (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    archive.on("end", resolve);
    archive.on("error", reject);
  });
  for (const f of files) {
    const content = await read(f);
    // The agent verifies hashes too; checking here turns a file saved mid-push into a clear message.
    if (content.length !== f.size || createHash("sha256").update(content).digest("hex") !== f.sha256) {
      throw new ResolutionError(
        `${f.path} changed while it was being pushed; run again (watch mode does this by itself).`,
      );
    }
    await new Promise<void>((resolve, reject) => {
      archive.entry(
        { name: f.path, size: f.size, mode: f.mode, mtime: EPOCH, type: "file" },
        content,
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }
  archive.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** `files` are release paths; `roots` are the leader's roots they come from (see release-layout.ts). */
export function buildArchive(
  roots: string | readonly string[],
  files: readonly ManifestFile[],
): Promise<Buffer> {
  const rootList = typeof roots === "string" ? [roots] : roots;
  return packArchive(files, async (f) => {
    try {
      // Never a plain readFile: a FIFO swapped in since the resolution would block it for ever.
      const source = sourceOf(f.path, rootList.length);
      const { handle } = await openRegularFile(join(rootList[source.root]!, source.path));
      try {
        return await handle.readFile();
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw new ResolutionError(
        `${f.path} could not be read while pushing (${(error as Error).message}); run again.`,
      );
    }
  });
}

/** Builds each distinct archive once, however many workers need it. */
export class ArchiveCache implements ReleaseArchives {
  private readonly archives = new Map<string, Promise<Buffer>>();

  /** From the leader's roots (see buildArchive), or from whatever `read` reads. */
  constructor(private readonly source: string | readonly string[] | ContentReader) {}

  get(files: readonly ManifestFile[]): Promise<Buffer> {
    const key = createHash("sha256");
    for (const f of files) key.update(`${f.path}\0${f.sha256}\0${f.mode}\n`);
    const id = key.digest("hex");
    let archive = this.archives.get(id);
    if (!archive) {
      const source = this.source;
      archive = typeof source === "function" ? packArchive(files, source) : buildArchive(source, files);
      this.archives.set(id, archive);
      archive.catch(() => this.archives.delete(id));
    }
    return archive;
  }
}
