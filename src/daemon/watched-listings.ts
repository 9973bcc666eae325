import type { TreeEntry } from "../core/module-set/module-set.js";
import { ListingCache } from "../resolve/listing-cache.js";

/**
 * The daemon's listing cache: a directory the resolver is about to list (a miss) is watched first,
 * so no change after the listing goes unseen. It also remembers what no watch can stand for: a
 * link to a file (whose target's changes come to no watched directory) and an unreadable entry
 * (a broken link whose target may appear later).
 */
export class WatchedListings extends ListingCache {
  /** Directories read since the last clear, each watched before it was read. */
  private readonly read = new Set<string>();
  private readonly unwatched = new Set<string>();
  private readonly blind = new Map<string, string>();

  constructor(private readonly watch: (dir: string) => boolean) {
    super();
  }

  override get(dir: string): readonly TreeEntry[] | undefined {
    const hit = super.get(dir);
    if (!hit) {
      this.read.add(dir);
      if (!this.watch(dir)) this.unwatched.add(dir);
    }
    return hit;
  }

  override set(dir: string, entries: readonly TreeEntry[]): void {
    const blind = entries.find((e) => e.error || (e.link && e.type !== "dir"));
    if (blind) {
      this.blind.set(
        dir,
        blind.error
          ? `${dir}/${blind.name} cannot be read (${blind.error})`
          : `${dir}/${blind.name} is a symbolic link to a file, whose changes no watch of the project sees`,
      );
    } else this.blind.delete(dir);
    super.set(dir, entries);
  }

  /** Whether `dir` was read as a directory of the module set (its changes are the project's). */
  wasRead(dir: string): boolean {
    return this.read.has(dir);
  }

  /** Forgets that `path` and the directories below it were read: they are watched again when read again. */
  forgetReadAt(path: string): void {
    const below = `${path}/`;
    for (const set of [this.read, this.unwatched]) {
      for (const dir of set) if (dir === path || dir.startsWith(below)) set.delete(dir);
    }
    for (const dir of this.blind.keys()) if (dir === path || dir.startsWith(below)) this.blind.delete(dir);
  }

  /** Why some of what was listed is not watched, or undefined when all of it is. */
  unwatchable(): string | undefined {
    const [first] = this.unwatched;
    if (first !== undefined) return `${first} could not be watched`;
    const [reason] = this.blind.values();
    return reason;
  }

  override clear(): void {
    super.clear();
    this.read.clear();
    this.unwatched.clear();
    this.blind.clear();
  }
}
