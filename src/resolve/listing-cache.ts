import type { TreeEntry } from "../core/module-set/module-set.js";

/**
 * Directory listings kept by watch mode between resolutions, so a save re-reads the one
 * directory it touched instead of the whole project. A changed path forgets the listing of its
 * directory and, when it was a directory itself, every listing below it.
 *
 * Listings that hold a symbolic link or an unreadable entry are never kept: the watcher does not
 * follow links, so a change behind one is only seen by listing again.
 */
export class ListingCache {
  private readonly listings = new Map<string, readonly TreeEntry[]>();

  get(relDir: string): readonly TreeEntry[] | undefined {
    return this.listings.get(relDir);
  }

  set(relDir: string, entries: readonly TreeEntry[]): void {
    if (entries.some((e) => e.link || e.error)) return;
    this.listings.set(relDir, entries);
  }

  /** Forgets what `relPath` (relative to the root, "/"-separated) may have changed. */
  invalidate(relPath: string): void {
    const parent = relPath.includes("/") ? relPath.slice(0, relPath.lastIndexOf("/")) : "";
    this.listings.delete(parent);
    if (relPath === "") {
      this.listings.clear();
      return;
    }
    this.listings.delete(relPath);
    const below = `${relPath}/`;
    for (const dir of this.listings.keys()) if (dir.startsWith(below)) this.listings.delete(dir);
  }

  clear(): void {
    this.listings.clear();
  }

  get size(): number {
    return this.listings.size;
  }
}
