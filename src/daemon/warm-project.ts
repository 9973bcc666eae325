import { stat } from "node:fs/promises";
import { basename } from "node:path";
import { PendingChanges } from "../core/daemon/pending-changes.js";
import type { Entry } from "../core/module-set/entry-rules.js";
import { isNeverShippedName } from "../core/module-set/module-set.js";
import type { InterpreterFacts } from "../core/python/interpreter-facts.js";
import {
  type ChangeVerdict,
  changeVerdict,
  type InputScope,
  mergeVerdicts,
  type ResolutionInput,
} from "../core/python/resolution-inputs.js";
import { CompileChecker } from "../resolve/compile-check.js";
import { loadDigestCache, saveDigestCache } from "../resolve/digest-store.js";
import { DigestCache } from "../resolve/file-digest.js";
import { resolutionInputsOf } from "../resolve/resolution-inputs-of.js";
import {
  probeFor,
  type Resolution,
  type ResolveOptions,
  resolveProject,
  sourcePathsOf,
} from "../resolve/resolver.js";
import { refreshProjectEntries } from "../resolve/top-level-listing.js";
import { DirectoryWatch } from "./directory-watch.js";
import { directoriesFor } from "./input-directories.js";
import type { DaemonResolution, WarmProjectStatus } from "./protocol.js";
import { WatchedListings } from "./watched-listings.js";

/**
 * One project's resolution kept warm by the daemon (docs/DESIGN.md section 8): made once, then
 * answered as it is while nothing it read has changed. Each directory of the module set is watched
 * before it is listed; every other input (sys.path directories, the interpreter and its venv, the
 * ignore files above the roots, imported packages searched for compiled files) is watched once
 * known and then read again, since it was first read unwatched ("settling"). A change makes the
 * next request resolve again what the change calls for; a failed watch, too many changes, or an
 * input no watch can stand for make it resolve afresh, as a command without the daemon does.
 */

// Each settling pass that finds new inputs to watch reads them again; past this, the next request does.
const MAX_SETTLE_PASSES = 3;

// A save writes its files within a few milliseconds: this long without another change, the daemon
// resolves again on its own, so the push that follows a save finds the work done.
const QUIET_BEFORE_REFRESH_MS = 25;

function entryText(entry: Entry): string {
  return entry.kind === "module" ? `-m ${entry.name}` : entry.path;
}

/** A name whose change in a listed directory can change the module set. */
function countsInSet(name: string): boolean {
  return !isNeverShippedName(name) || name === ".gitignore";
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

export class WarmProject {
  private facts: InterpreterFacts | undefined;
  /** The interpreter's last answer as it printed it: an unpinned interpreter is asked every time. */
  private probed: string | undefined;
  /** An answer that differed from the last one, used by the resolution it calls for. */
  private changedFacts: InterpreterFacts | undefined;
  private resolution: Resolution | undefined;
  private digests = new DigestCache();
  private readonly watch: DirectoryWatch;
  private readonly listings: WatchedListings;
  private readonly pending = new PendingChanges();
  private compiler: CompileChecker | undefined;
  private inputs: ResolutionInput[] = [];
  /** What was read before it was watched: read again before the resolution is kept. */
  private unsettled = new Set<InputScope>();
  private unwatchable: string | undefined;
  private interpreterUnpinned = false;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private warmAnswers = 0;
  private resolutions = 0;
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Why the daemon resolved again on its own since the last answer, which then says so. */
  private refreshedAhead: string | undefined;
  lastUsedAt = Date.now();

  constructor(
    private readonly options: ResolveOptions,
    private readonly log: (line: string) => void,
  ) {
    this.watch = new DirectoryWatch(
      (dir, path) => this.changed(dir, path),
      (reason) => {
        this.pending.inDoubt(reason);
        this.refreshSoon();
      },
    );
    this.listings = new WatchedListings((dir) => this.watch.add(dir));
  }

  private get label(): string {
    return `${this.options.startDir} (${entryText(this.options.entry)})`;
  }

  /** The resolution for one command: the kept one when nothing it read changed, else made again. */
  resolve(): Promise<DaemonResolution> {
    const answer = this.queue.then(() => this.answer());
    this.queue = answer.then(
      () => this.settle(),
      () => undefined,
    );
    return answer;
  }

  private async answer(): Promise<DaemonResolution> {
    // A change made before the request came is already in the kernel's queue: heard before deciding.
    await new Promise((resolve) => setImmediate(resolve));
    this.lastUsedAt = Date.now();
    if (this.resolution && this.interpreterUnpinned && !this.unwatchable) await this.askInterpreterAgain();
    const ahead = this.refreshedAhead;
    this.refreshedAhead = undefined;
    if (this.resolution && this.isKept()) {
      if (ahead) return { resolution: this.resolution, warm: false, reason: `${ahead}; resolved when heard` };
      this.warmAnswers++;
      return { resolution: this.resolution, warm: true, reason: "nothing it read has changed" };
    }
    const reason = !this.resolution ? "nothing kept for this project yet" : this.staleReason();
    const resolution = await this.refresh();
    this.log(`${this.label}: resolved again: ${reason}`);
    return { resolution, warm: false, reason };
  }

  private isKept(): boolean {
    return !this.unwatchable && this.unsettled.size === 0 && this.pending.empty;
  }

  /** Why the kept resolution cannot be answered as it is (isKept is false). */
  private staleReason(): string {
    return (
      this.unwatchable ??
      (this.pending.empty ? "what it read is not all watched yet" : this.pending.describe())
    );
  }

  /** Reads again what was read before it was watched, until nothing new needs watching. */
  private async settle(): Promise<void> {
    for (let pass = 0; pass < MAX_SETTLE_PASSES && this.resolution && this.unsettled.size > 0; pass++) {
      if (this.closed) return;
      try {
        await this.refresh();
      } catch (error) {
        this.log(`${this.label}: ${(error as Error).message}`);
        return;
      }
    }
  }

  private changed(dir: string, path: string): void {
    let verdict: ChangeVerdict | undefined = changeVerdict(this.inputs, path);
    if (this.listings.wasRead(dir) && (path === dir || countsInSet(basename(path))))
      verdict = mergeVerdicts(verdict, { scope: "project", structural: path === dir });
    if (!verdict) return;
    this.pending.record(path, verdict);
    this.refreshSoon();
  }

  /**
   * Resolves again once the changes have stopped for a moment, in the same queue as the requests:
   * one that comes meanwhile waits for it, and one that comes first resolves itself, as before.
   */
  private refreshSoon(): void {
    if (this.closed) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      this.queue = this.queue.then(async () => {
        if (this.closed || !this.resolution || this.isKept()) return;
        const reason = this.staleReason();
        try {
          await this.refresh();
          this.refreshedAhead = reason;
          this.log(`${this.label}: resolved again when the change was heard: ${reason}`);
          await this.settle();
        } catch (error) {
          this.log(`${this.label}: ${(error as Error).message}`);
        }
      });
    }, QUIET_BEFORE_REFRESH_MS);
    this.refreshTimer.unref();
  }

  private async probe(): Promise<InterpreterFacts> {
    const facts = await probeFor(this.options);
    this.probed = JSON.stringify(facts);
    return facts;
  }

  /** An interpreter chosen by more than its path (a pyenv shim) is asked each time whether it changed. */
  private async askInterpreterAgain(): Promise<void> {
    const before = this.probed;
    const facts = await this.probe();
    if (this.probed === before) return;
    this.changedFacts = facts;
    this.pending.record(facts.executable, { scope: "interpreter", structural: false });
  }

  /** Forgets what the changes may have made stale: listings, digests, and watches of moved directories. */
  private forgetChanged(paths: ReadonlyMap<string, ChangeVerdict>): void {
    for (const [path, verdict] of paths) {
      if (verdict.scope === "project" || verdict.structural) {
        this.listings.invalidate(path);
        this.digests.forget(path);
      }
      if (verdict.structural || this.watch.has(path)) {
        this.watch.forgetAt(path);
        this.listings.forgetReadAt(path);
      }
    }
  }

  /** Resolves again: afresh when in doubt or nothing is kept, else only what the changes call for. */
  private async refresh(): Promise<Resolution> {
    const batch = this.pending.take();
    const scopes = new Set([...batch.scopes, ...this.unsettled]);
    this.unsettled = new Set();
    const afresh =
      !this.resolution || !this.facts || batch.doubt !== undefined || this.unwatchable !== undefined;
    // Until this one is made: a failure leaves nothing to answer from, and the next request starts afresh.
    this.resolution = undefined;
    if (afresh) {
      this.watch.close();
      this.listings.clear();
      this.digests = await loadDigestCache(this.options.startDir, this.options.interpreterEnv);
      this.facts = await this.probe();
    } else {
      this.forgetChanged(batch.paths);
      if (scopes.has("interpreter")) this.facts = this.changedFacts ?? (await this.probe());
      else if (scopes.has("project")) this.facts = await refreshProjectEntries(this.facts!);
    }
    this.changedFacts = undefined;
    const facts = this.facts!;
    if (this.compiler?.python !== facts.executable) {
      this.compiler?.close();
      this.compiler = new CompileChecker(facts.executable);
    }
    const resolution = await resolveProject({
      ...this.options,
      facts,
      cache: this.digests,
      listings: this.listings,
      compiler: this.compiler,
    });
    this.digests.retainOnly(sourcePathsOf(resolution));
    this.resolutions++;
    if (afresh)
      void saveDigestCache(this.options.startDir, this.digests, this.options.interpreterEnv).catch(
        () => undefined,
      );
    await this.watchInputs(resolution, facts);
    this.resolution = resolution;
    return resolution;
  }

  /** Watches every input of the resolution; those newly watched are unsettled (read before watched). */
  private async watchInputs(resolution: Resolution, facts: InterpreterFacts): Promise<void> {
    const found = await resolutionInputsOf(resolution, facts, this.options);
    this.inputs = found.inputs;
    this.interpreterUnpinned = found.interpreterUnpinned;
    this.unwatchable = found.unwatchable ?? this.listings.unwatchable();
    if (this.unwatchable) {
      this.watch.close();
      return;
    }
    const wanted = new Set<string>();
    for (const input of found.inputs) {
      const covering = await directoriesFor(input);
      if (covering.uncovered) {
        this.unwatchable = covering.uncovered;
        this.watch.close();
        return;
      }
      for (const dir of covering.dirs) {
        wanted.add(dir);
        if (this.watch.has(dir)) continue;
        // Watched now, or gone since it was found: either way read again.
        this.unsettled.add(input.scope);
        if (!this.watch.add(dir) && (await isDirectory(dir)))
          this.unwatchable = `${dir} could not be watched`;
      }
    }
    this.watch.prune((dir) => wanted.has(dir) || this.listings.wasRead(dir));
  }

  status(): WarmProjectStatus {
    return {
      startDir: this.options.startDir,
      entry: entryText(this.options.entry),
      watchedDirectories: this.watch.size,
      warmAnswers: this.warmAnswers,
      resolutions: this.resolutions,
      unwatchable: this.unwatchable ?? null,
      lastUsedAt: new Date(this.lastUsedAt).toISOString(),
    };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    this.watch.close();
    this.compiler?.close();
  }
}
