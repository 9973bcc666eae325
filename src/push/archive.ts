import { createHash } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
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
  /** The same archive gzip-compressed, for the tree (see ArchiveCache.gzipped). */
  gzipped(files: readonly ManifestFile[]): Promise<Buffer>;
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
  private readonly compressed = new Map<string, Promise<Buffer>>();

  /** From the leader's roots (see buildArchive), or from whatever `read` reads. */
  constructor(private readonly source: string | readonly string[] | ContentReader) {}

  get(files: readonly ManifestFile[]): Promise<Buffer> {
    return this.once(this.archives, files, () => this.build(files));
  }

  /**
   * Archives cross ClusterShell's tree gzip-compressed: it carries stdin to each gateway in base64
   * (a third more bytes), and Python sources shrink three- to fivefold; the agent reads either
   * form. Only the compressed form is kept (a cold push's archive is ten times larger), and it
   * is compressed off the event loop, which is reading the nodes' replies meanwhile.
   */
  gzipped(files: readonly ManifestFile[]): Promise<Buffer> {
    return this.once(this.compressed, files, async () =>
      gzipAsync(await (this.archives.get(archiveId(files)) ?? this.build(files)), { level: 6 }),
    );
  }

  private build(files: readonly ManifestFile[]): Promise<Buffer> {
    const source = this.source;
    return typeof source === "function" ? packArchive(files, source) : buildArchive(source, files);
  }

  private once(
    kept: Map<string, Promise<Buffer>>,
    files: readonly ManifestFile[],
    make: () => Promise<Buffer>,
  ): Promise<Buffer> {
    const id = archiveId(files);
    let archive = kept.get(id);
    if (!archive) {
      archive = make();
      kept.set(id, archive);
      archive.catch(() => kept.delete(id));
    }
    return archive;
  }
}

/** Which files an archive holds, by their names, content and modes. */
function archiveId(files: readonly ManifestFile[]): string {
  const key = createHash("sha256");
  for (const f of files) key.update(`${f.path}\0${f.sha256}\0${f.mode}\n`);
  return key.digest("hex");
}

const gzipAsync = promisify(gzip);
