import { type FSWatcher, watch } from "node:fs";
import { basename, join } from "node:path";

/**
 * Directories watched one by one with inotify (node's fs.watch); each event is reported as the
 * path it names. fs.watch rather than chokidar: a directory is watched once fs.watch returns, so
 * a directory watched before it is read misses no later change, whereas chokidar reads a
 * directory it comes upon before watching it, and never watches again a directory that was
 * removed and made anew. A directory moved or removed stops reporting, or reports under its old
 * path: whoever hears of it calls forgetAt, and watches it again before reading it again.
 */
export class DirectoryWatch {
  private readonly watchers = new Map<string, FSWatcher>();

  constructor(
    /** `dir` is the watched directory the event came from; `path` what it names. */
    private readonly onChange: (dir: string, path: string) => void,
    /** A directory that exists could not be watched, or its watch failed: changes may go unseen. */
    private readonly onFailure: (reason: string) => void,
  ) {}

  /** Watches `dir` unless it is watched already; false when it cannot be (gone, or over a limit). */
  add(dir: string): boolean {
    if (this.watchers.has(dir)) return true;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => this.report(dir, name));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOSPC is the kernel's limit on watches (fs.inotify.max_user_watches).
      if (code !== "ENOENT" && code !== "ENOTDIR")
        this.onFailure(`cannot watch ${dir}: ${(error as Error).message}`);
      return false;
    }
    watcher.on("error", (error) => {
      this.forgetAt(dir);
      this.onFailure(`the watch of ${dir} failed: ${error.message}`);
    });
    this.watchers.set(dir, watcher);
    return true;
  }

  private report(dir: string, name: string | null): void {
    if (name === null) {
      this.onChange(dir, dir);
      return;
    }
    this.onChange(dir, join(dir, name));
    // The directory's own move or removal comes under its own name.
    if (name === basename(dir)) this.onChange(dir, dir);
  }

  has(dir: string): boolean {
    return this.watchers.has(dir);
  }

  directories(): IterableIterator<string> {
    return this.watchers.keys();
  }

  /** Stops watching `path` and every directory below it. */
  forgetAt(path: string): void {
    const below = `${path}/`;
    for (const [dir, watcher] of this.watchers) {
      if (dir === path || dir.startsWith(below)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
  }

  /** Stops watching each directory `keep` says no to. */
  prune(keep: (dir: string) => boolean): void {
    for (const [dir, watcher] of this.watchers) {
      if (keep(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
  }

  get size(): number {
    return this.watchers.size;
  }

  close(): void {
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }
}
