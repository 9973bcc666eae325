import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, stat, unlink, utimes, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { type ManifestFile, releaseIdOf } from "../core/release/manifest.js";

/**
 * The manifests of the releases this leader built, by release id, kept in the user's cache. A
 * node's handshake names its current release, not its manifest: a push sends a node on a
 * release found here just what changed since it. Through the tree a release not found here
 * (pushed from elsewhere, or long ago) is sent whole; a flat push asks one node of that base for
 * its manifest. Kept here, beside the tree, since `status` through the tree reads it too.
 */

const KEPT = 16;

function directory(project: string, env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache");
  const id = createHash("sha256").update(project).digest("hex").slice(0, 16);
  return join(base, "sync-cluster", `manifests-${id}`);
}

function isManifest(value: unknown): value is ManifestFile[] {
  return (
    Array.isArray(value) &&
    value.every(
      (f) =>
        typeof f === "object" &&
        f !== null &&
        typeof f.path === "string" &&
        typeof f.size === "number" &&
        typeof f.mode === "number" &&
        typeof f.sha256 === "string",
    )
  );
}

export async function knownManifest(
  project: string,
  release: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ManifestFile[] | undefined> {
  if (!/^[\w.-]+$/.test(release)) return undefined;
  try {
    const value: unknown = JSON.parse(
      await readFile(join(directory(project, env), `${release}.json`), "utf8"),
    );
    // The id is the manifest's digest: a file that does not hash to it is not that release's.
    return isManifest(value) && releaseIdOf(value) === release ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Best effort: a cache that cannot be written only makes the next push send more. */
export async function rememberManifest(
  project: string,
  release: string,
  files: readonly ManifestFile[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const dir = directory(project, env);
  const file = join(dir, `${release}.json`);
  try {
    // A release id names its content: one kept already is only marked as used now.
    const now = new Date();
    await utimes(file, now, now);
    return;
  } catch {
    // Not kept yet.
  }
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(
      tmp,
      JSON.stringify(files.map(({ path, size, mode, sha256 }) => ({ path, size, mode, sha256 }))),
    );
    await rename(tmp, file);
    const names = (await readdir(dir)).filter((n) => n.endsWith(".json"));
    if (names.length <= KEPT) return;
    const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n))).mtimeMs })));
    aged.sort((a, b) => b.t - a.t);
    await Promise.all(aged.slice(KEPT).map(({ n }) => unlink(join(dir, n)).catch(() => {})));
  } catch {
    // Read-only home: nothing remembered.
  }
}
