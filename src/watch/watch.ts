import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { watch as chokidarWatch, type FSWatcher } from "chokidar";
import pLimit from "p-limit";
import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import { diffNodeSets } from "../core/inventory/node-set-diff.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import { isNeverShippedName } from "../core/module-set/module-set.js";
import type { InterpreterFacts } from "../core/python/interpreter-facts.js";
import type { LeaderExpectations } from "../core/readiness/node-checks.js";
import { releaseIdOf, totalBytes } from "../core/release/manifest.js";
import { allNodes } from "../fleet/on-nodes.js";
import { loadInventory } from "../inventory/load.js";
import { leaderReleaseOf } from "../push/leader-release.js";
import { LeaderRunSource } from "../push/run-releases.js";
import { CompileChecker } from "../resolve/compile-check.js";
import { DigestCache } from "../resolve/file-digest.js";
import { ListingCache } from "../resolve/listing-cache.js";
import {
  probeFor,
  type Resolution,
  type ResolveOptions,
  resolveProject,
  type SyntaxProblem,
  sourcePathsOf,
} from "../resolve/resolver.js";
import { refreshProjectEntries } from "../resolve/top-level-listing.js";
import { relativePosix } from "../resolve/tree-lister.js";
import type { NodeLinker } from "../transport/node-link.js";
import { ChangeBatcher } from "./change-batcher.js";
import { NodeSyncer, type SyncerEvent, type WatchRelease } from "./node-syncer.js";
import { type OnSyncedEvent, OnSyncedRunner } from "./on-synced.js";
import { type Syncer, TreeGroup } from "./tree-syncer.js";

/**
 * `watch`: the project root and the inventory watched; every batch of changes re-resolved
 * (rehashing only what changed) into a release, offered to every worker's syncer.
 */

export type WatchEvent =
  | { type: "watching"; root: string; nodes: string[]; release: string | null }
  | { type: "change"; paths: number; sample: string[] }
  | { type: "release"; release: string; seq: number; files: number; bytes: number; resolveMs: number }
  | { type: "unchanged"; release: string }
  | { type: "resolve-error"; message: string; keeping: string | null }
  /** Modules that do not compile: no release until they do; the workers keep `keeping`. */
  | { type: "held"; errors: SyntaxProblem[]; keeping: string | null }
  /** An import that cannot be resolved, reported when it first appears. */
  | { type: "unresolved"; module: string; file: string; line: number }
  | { type: "inventory-error"; message: string }
  | { type: "node-added"; node: string }
  | { type: "node-removed"; node: string }
  /** No longer printed by the inventory's workers command (`source`: its key): its syncer stopped. */
  | { type: "node-left"; node: string; source: string }
  /** The workers command failed: said once per streak of failures; the last good list is kept. */
  | { type: "workers-error"; source: string; message: string; keeping: number }
  /** It works again after failing. */
  | { type: "workers-recovered"; source: string; workers: number }
  /** Every node holds `release`, a release not all of them held together before. */
  | { type: "all-synced"; release: string; nodes: string[] }
  | { type: "warning"; message: string }
  | { type: "stopping"; inFlight: number }
  | { type: "stopped" }
  | SyncerEvent
  | OnSyncedEvent;

export interface WatchOptions {
  inventory: Inventory;
  resolveOptions: ResolveOptions;
  debounceMs: number;
  concurrency?: number | undefined;
  acceptNew: boolean;
  /** How nodes are reached: directly (the default) or through the user's daemon. */
  links?: NodeLinker | undefined;
  /** The inventory's `tree:` as this watch uses it; absent: each worker from the leader (--flat). */
  tree?: TreeSettings | undefined;
  check: boolean;
  /** Watch the inventory file for added and removed workers (default true). */
  watchInventory?: boolean;
  inventoryEnv?: NodeJS.ProcessEnv;
  /** Replace a project of the same name pushed from another leader or root (--replace). */
  replace?: boolean;
  /** How often the inventory's workers command runs again; default: its `refresh`. */
  refreshSeconds?: number | undefined;
  /** Run on the leader (`sh -c`, in `onSyncedCwd`) each time every node holds a new release. */
  onSynced?: string | undefined;
  onSyncedCwd?: string;
  onEvent: (event: WatchEvent) => void;
}

/**
 * Names chokidar need not watch: never shipped, and often huge (.git, venvs, node_modules). A
 * `.gitignore` is hidden but watched: it changes which of its siblings ship.
 */
function ignoredPath(path: string, stats?: { isDirectory(): boolean }): boolean {
  const name = basename(path);
  if (isNeverShippedName(name) && name !== ".gitignore") return true;
  return stats?.isDirectory() === true && existsSync(join(path, "pyvenv.cfg"));
}

export class WatchSession {
  private inventory: Inventory;
  /** The leader, asked before each publish to a worker what its workflow runs use. */
  private leaderRuns: LeaderRunSource | undefined;
  private readonly syncers = new Map<string, Syncer>();
  /** The workers behind ClusterShell's gateways, pushed to together (the inventory's `tree:`). */
  private readonly treeGroup: TreeGroup | undefined;
  private readonly cache = new DigestCache();
  private readonly listings = new ListingCache();
  /** The watched roots, once resolved (a new one is added to the watcher when the set gains it). */
  private roots: string[] = [];
  private facts: InterpreterFacts | undefined;
  private release: WatchRelease | undefined;
  private expectations: LeaderExpectations | undefined;
  private seq = 0;
  private readonly limit: ReturnType<typeof pLimit>;
  private watcher: FSWatcher | undefined;
  private inventoryWatcher: FSWatcher | undefined;
  private batcher: ChangeBatcher | undefined;
  private resolving: Promise<void> = Promise.resolve();
  private compiler: CompileChecker | undefined;
  /** Unresolved imports already reported (module and file), so each is shown when it appears. */
  private unresolvedSeen = new Set<string>();
  private stopping = false;
  /** Inventory reloads (file edits, workers command runs), one at a time, in order. */
  private reloading: Promise<void> = Promise.resolve();
  private refreshTimer: NodeJS.Timeout | undefined;
  /** Whether the workers command failed last time (its failures are said once per streak). */
  private workersFailing = false;
  /** The last release every node held together (all-synced is said once per release). */
  private allSyncedOn: string | undefined;
  private readonly onSynced: OnSyncedRunner | undefined;

  constructor(private readonly options: WatchOptions) {
    this.inventory = options.inventory;
    this.leaderRuns = this.leaderRunSource();
    this.limit = pLimit(Math.max(1, options.concurrency ?? this.inventory.concurrency));
    const tree = options.tree;
    this.treeGroup = tree
      ? new TreeGroup(
          { ...this.inventory, tree },
          {
            replace: options.replace ?? false,
            leader: () => this.expectations,
            leaderRuns: () => this.leaderRuns,
            onEvent: (e) => {
              if (!this.syncers.has(e.node) && !this.stopping) return;
              this.options.onEvent(e);
              if (e.type === "node-phase" && e.phase === "in-sync") this.noticeAllSynced();
            },
          },
        )
      : undefined;
    if (options.onSynced !== undefined) {
      this.onSynced = new OnSyncedRunner({
        command: options.onSynced,
        cwd: options.onSyncedCwd ?? process.cwd(),
        env: { ...process.env, SYNC_CLUSTER_INVENTORY: this.inventory.file },
        onEvent: (e) => options.onEvent(e),
      });
    }
  }

  /** Resolves once (a failure here is the caller's: nothing was started), then starts watching. */
  async start(): Promise<void> {
    this.facts = await probeFor(this.options.resolveOptions);
    this.compiler = new CompileChecker(this.facts.executable);
    let resolution: Resolution;
    try {
      resolution = await this.resolve();
    } catch (error) {
      this.compiler.close();
      throw error;
    }
    this.publish(resolution, performance.now(), 0);
    for (const node of allNodes(this.inventory)) this.addNode(node, false);
    this.batcher = new ChangeBatcher(
      this.options.debounceMs,
      Math.max(1000, this.options.debounceMs * 10),
      (paths, at) => this.onChanges(paths, at),
    );
    this.watcher = chokidarWatch(resolution.roots, {
      ignored: ignoredPath,
      ignoreInitial: true,
      followSymlinks: false,
      awaitWriteFinish: false,
    });
    this.watcher.on("all", (_event, path) => this.batcher?.add(path));
    this.watcher.on("error", (error) =>
      this.options.onEvent({
        type: "warning",
        message: `watching ${resolution.roots.join(", ")}: ${(error as Error).message}`,
      }),
    );
    await new Promise<void>((resolve) => this.watcher!.once("ready", () => resolve()));
    if (this.options.watchInventory !== false) {
      this.inventoryWatcher = chokidarWatch(this.inventory.file, { ignoreInitial: true });
      this.inventoryWatcher.on("all", () => this.queueReload("edited"));
      await new Promise<void>((resolve) => this.inventoryWatcher!.once("ready", () => resolve()));
    }
    this.scheduleRefresh();
    this.options.onEvent({
      type: "watching",
      root: resolution.root,
      nodes: [...this.syncers.keys()],
      release: this.release?.id ?? null,
    });
  }

  /** Connected nodes and where they stand, for a live display or a test. */
  nodes(): { node: string; phase: string; release: string | null }[] {
    return [...this.syncers.values()].map((s) => ({
      node: s.node.name,
      phase: s.currentPhase,
      release: s.currentRelease,
    }));
  }

  get latestRelease(): string | undefined {
    return this.release?.id;
  }

  /**
   * Resolves again after `changed` (absolute paths; all of the project when undefined): only the
   * directories the changes touched are listed again and only changed files are read.
   */
  private async resolve(changed?: ReadonlySet<string>): Promise<Resolution> {
    const known = changed && this.roots.length > 0 && changed.size < ChangeBatcher.maxPaths;
    const inRoots = (path: string) =>
      this.roots.some((root) => {
        const rel = relativePosix(root, path);
        return rel !== ".." && !rel.startsWith("../");
      });
    if (!known || ![...changed].every(inRoots)) this.listings.clear();
    else for (const path of changed) this.listings.invalidate(path);
    // An entry's top-level names change only with an entry of it or a package's __init__.py.
    const topLevelTouched = (entry: string) => (path: string) => {
      const rel = relativePosix(entry, path);
      return !rel.startsWith("../") && (!rel.includes("/") || /^[^/]+\/__init__\.py$/.test(rel));
    };
    this.facts = await refreshProjectEntries(
      this.facts!,
      (entry) => !known || !this.roots.includes(entry.path) || [...changed].some(topLevelTouched(entry.path)),
    );
    const resolution = await resolveProject({
      ...this.options.resolveOptions,
      facts: this.facts,
      cache: this.cache,
      listings: this.listings,
      ...(this.compiler ? { compiler: this.compiler } : {}),
    });
    const added = resolution.roots.filter((r) => !this.roots.includes(r));
    if (added.length > 0 && this.roots.length > 0) this.watcher?.add(added);
    this.roots = resolution.roots;
    this.cache.retainOnly(sourcePathsOf(resolution));
    return resolution;
  }

  private publish(resolution: Resolution, changedAt: number, resolveMs: number): void {
    this.reportNewUnresolved(resolution);
    if (resolution.syntaxErrors.length > 0) {
      // Publishing would break every worker's jobs at import: they keep the last good release.
      this.options.onEvent({
        type: "held",
        errors: resolution.syntaxErrors,
        keeping: this.release?.id ?? null,
      });
      return;
    }
    const id = releaseIdOf(resolution.release);
    if (this.release?.id === id) {
      this.options.onEvent({ type: "unchanged", release: id });
      return;
    }
    this.seq++;
    const leader = leaderReleaseOf(resolution, this.inventory.project.name);
    this.release = {
      ...leader.release,
      seq: this.seq,
      archives: leader.archives,
      changedAt,
      topLevel: leader.topLevel,
    };
    this.expectations = this.options.check ? leader.expectations : undefined;
    this.options.onEvent({
      type: "release",
      release: id,
      seq: this.seq,
      files: resolution.release.length,
      bytes: totalBytes(resolution.release),
      resolveMs,
    });
    for (const s of this.syncers.values()) s.offer(this.release);
  }

  private reportNewUnresolved(resolution: Resolution): void {
    const now = new Set<string>();
    for (const u of resolution.unresolved) {
      const key = `${u.module}\0${u.file}`;
      now.add(key);
      if (!this.unresolvedSeen.has(key)) this.options.onEvent({ type: "unresolved", ...u });
    }
    // Forgotten once fixed, so that the same mistake made again is shown again.
    this.unresolvedSeen = now;
  }

  private onChanges(paths: Set<string>, firstSeenAt: number): void {
    if (this.stopping) return;
    this.options.onEvent({ type: "change", paths: paths.size, sample: [...paths].slice(0, 5) });
    // Serialized: a batch that arrives while resolving waits, so releases come out in order.
    this.resolving = this.resolving.then(async () => {
      if (this.stopping) return;
      const started = performance.now();
      try {
        const resolution = await this.resolve(paths);
        this.publish(resolution, firstSeenAt, performance.now() - started);
      } catch (error) {
        this.options.onEvent({
          type: "resolve-error",
          message: (error as Error).message,
          keeping: this.release?.id ?? null,
        });
      }
    });
  }

  private leaderRunSource(): LeaderRunSource | undefined {
    const leader = this.inventory.leader;
    return (
      leader &&
      new LeaderRunSource(leader, this.inventory.project.name, {
        links: this.options.links,
        acceptNew: this.options.acceptNew,
      })
    );
  }

  private addNode(node: NodeSpec, announce: boolean): void {
    if (this.treeGroup && node.role !== "leader") {
      const view = this.treeGroup.join(node);
      this.syncers.set(node.name, view);
      if (announce) this.options.onEvent({ type: "node-added", node: node.name });
      if (this.release) view.offer(this.release);
      return;
    }
    // Declared first: the syncer's events name it (undefined only while it is being built).
    let syncer: NodeSyncer | undefined;
    syncer = new NodeSyncer(node, {
      project: this.inventory.project.name,
      acceptNew: this.options.acceptNew,
      ...(this.options.links ? { links: this.options.links } : {}),
      replace: this.options.replace ?? false,
      leader: () => this.expectations,
      slot: (work) => this.limit(work),
      leaderRuns: {
        fresh: () => this.leaderRuns?.fresh() ?? Promise.resolve({ pinned: [], runs: [] }),
        release: (id: string) =>
          this.leaderRuns?.release(id) ??
          Promise.reject(new Error("the inventory no longer names a leader to read the run's release from")),
      },
      onEvent: (e) => {
        // A node dropped from the set is gone from the display: its syncer's last words (its own
        // "stopped") would show it again. At the end of watch every node says it stopped.
        if (syncer && this.syncers.get(node.name) !== syncer && !this.stopping) return;
        this.options.onEvent(e);
        if (e.type === "node-phase" && e.phase === "in-sync") this.noticeAllSynced();
      },
    });
    this.syncers.set(node.name, syncer);
    if (announce) this.options.onEvent({ type: "node-added", node: node.name });
    if (this.release) syncer.offer(this.release);
  }

  /** Says so (and runs --on-synced) the first time every node holds the newest release. */
  private noticeAllSynced(): void {
    const release = this.release?.id;
    if (!release || this.stopping || this.allSyncedOn === release || this.syncers.size === 0) return;
    for (const s of this.syncers.values())
      if (s.currentPhase !== "in-sync" || s.currentRelease !== release) return;
    this.allSyncedOn = release;
    const nodes = [...this.syncers.keys()];
    this.options.onEvent({ type: "all-synced", release, nodes });
    this.onSynced?.offer(release, nodes);
  }

  /** Runs the workers command again after the refresh interval (only when the inventory has one). */
  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const source = this.inventory.workersSource;
    if (!source || this.stopping) return;
    const seconds = this.options.refreshSeconds ?? source.refreshSeconds;
    this.refreshTimer = setTimeout(() => this.queueReload("refresh"), seconds * 1000);
  }

  /** `edited`: the inventory file changed; `refresh`: the workers command's interval came round. */
  private queueReload(why: "edited" | "refresh"): void {
    this.reloading = this.reloading
      .then(() => this.reloadInventory(why))
      .finally(() => this.scheduleRefresh());
  }

  private async reloadInventory(why: "edited" | "refresh"): Promise<void> {
    if (this.stopping) return;
    const source = this.inventory.workersSource;
    let next: Inventory;
    try {
      next = await loadInventory({
        explicitPath: this.inventory.file,
        env: this.options.inventoryEnv ?? process.env,
      });
    } catch (error) {
      const message = (error as Error).message;
      if (why === "edited") {
        this.options.onEvent({
          type: "inventory-error",
          message: `${message} (keeping the previous workers)`,
        });
      } else if (source && !this.workersFailing) {
        this.options.onEvent({
          type: "workers-error",
          source: source.key,
          message,
          keeping: this.inventory.workers.length,
        });
      }
      if (source) this.workersFailing = true;
      return;
    }
    if (this.stopping) return;
    if (this.workersFailing && next.workersSource) {
      this.options.onEvent({
        type: "workers-recovered",
        source: next.workersSource.key,
        workers: next.workers.length,
      });
    }
    this.workersFailing = false;
    if (why === "edited" && JSON.stringify(next.project) !== JSON.stringify(this.inventory.project)) {
      this.options.onEvent({
        type: "warning",
        message: "the project section of the inventory changed: restart watch to apply it",
      });
    }
    const diff = diffNodeSets(allNodes(this.inventory), allNodes(next));
    const listedBy = (node: NodeSpec) => (node.role === "worker" ? next.workersSource?.key : undefined);
    for (const node of [...diff.removed, ...diff.changed]) {
      const syncer = this.syncers.get(node.name);
      if (!syncer) continue;
      this.syncers.delete(node.name);
      const source = diff.removed.includes(node) ? listedBy(node) : undefined;
      // A node whose address or settings changed is reconnected from scratch.
      if (source) this.options.onEvent({ type: "node-left", node: node.name, source });
      else this.options.onEvent({ type: "node-removed", node: node.name });
      void syncer.stop(0);
    }
    const leaderBefore = this.inventory.leader;
    this.inventory = { ...next, project: this.inventory.project };
    if (JSON.stringify(leaderBefore) !== JSON.stringify(next.leader)) {
      this.leaderRuns?.close();
      this.leaderRuns = this.leaderRunSource();
    }
    this.limit.concurrency = Math.max(1, this.options.concurrency ?? next.concurrency);
    for (const node of allNodes(next)) if (!this.syncers.has(node.name)) this.addNode(node, true);
    // The nodes that held the release back may be the ones that left.
    this.noticeAllSynced();
  }

  /** Stops watching; in-flight pushes get `graceMs` to finish, then are cut before publishing. */
  async stop(graceMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.refreshTimer);
    this.batcher?.cancel();
    await Promise.all([this.watcher?.close(), this.inventoryWatcher?.close()]);
    const inFlight = [...this.syncers.values()].filter((s) => s.currentPhase === "syncing").length;
    this.options.onEvent({ type: "stopping", inFlight });
    await Promise.all([
      ...[...this.syncers.values()].map((s) => s.stop(graceMs)),
      this.onSynced?.stop(graceMs),
    ]);
    this.compiler?.close();
    this.leaderRuns?.close();
    this.options.onEvent({ type: "stopped" });
  }
}
