import { retryDelayMs } from "../core/backoff.js";
import type { Inventory, NodeSpec } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import type { LeaderExpectations } from "../core/readiness/node-checks.js";
import type { LeaderRuns } from "../core/release/live-runs.js";
import type { PushEvent } from "../push/push.js";
import type { LeaderRunSource } from "../push/run-releases.js";
import { pushReleaseThroughTree } from "../push/tree-push.js";
import type { WorkerState } from "../transport/worker-client.js";
import { type NodePhase, phaseChange, type SyncerEvent, type WatchRelease } from "./node-syncer.js";

/**
 * `watch` through ClusterShell's tree: the workers behind the gateways are brought to each new
 * release together, by one push through the tree at a time (the newest release wins; one that
 * arrives meanwhile waits for the push under way). What a push leaves each worker with is kept,
 * so the next push skips the survey and costs one batch a worker; a worker that failed is
 * surveyed again when it is retried, with backoff, as a worker watched directly is.
 */

/** What WatchSession asks of any syncer, one per node. */
export interface Syncer {
  readonly node: NodeSpec;
  readonly currentPhase: NodePhase;
  readonly currentRelease: string | null;
  offer(release: WatchRelease): void;
  stop(graceMs: number): Promise<void>;
}

export interface TreeGroupOptions {
  replace: boolean;
  /** Checked when a worker is surveyed (its first push, and after a failure); undefined skips (--no-check). */
  leader: () => LeaderExpectations | undefined;
  leaderRuns: () => LeaderRunSource | undefined;
  onEvent: (event: SyncerEvent) => void;
}

interface Member {
  node: NodeSpec;
  phase: NodePhase;
  current: string | null;
  attempt: number;
  /** performance.now() before which a failed worker is not pushed to again. */
  retryAt: number;
}

export class TreeGroup {
  private readonly members = new Map<string, Member>();
  private readonly known = new Map<string, WorkerState>();
  private desired: WatchRelease | undefined;
  private running: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly inventory: Inventory & { tree: TreeSettings },
    private readonly options: TreeGroupOptions,
  ) {}

  /** A worker joins the group; its syncer is a view of it. */
  join(node: NodeSpec): Syncer {
    const member: Member = { node, phase: "connecting", current: null, attempt: 0, retryAt: 0 };
    this.members.set(node.name, member);
    this.known.delete(node.name);
    this.setPhase(member, "connecting");
    return {
      node,
      get currentPhase() {
        return member.phase;
      },
      get currentRelease() {
        return member.current;
      },
      offer: (release) => this.offer(release),
      stop: async (graceMs) => {
        if (this.members.get(node.name) === member) this.members.delete(node.name);
        if (this.members.size === 0 || this.stopped) await this.stop(graceMs);
        this.setPhase(member, "stopped");
      },
    };
  }

  offer(release: WatchRelease): void {
    if (this.desired && release.seq <= this.desired.seq) return;
    this.desired = release;
    this.kick();
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = this.round().finally(() => {
      this.running = undefined;
      if (this.due().length > 0) this.kick();
    });
  }

  /** The workers the newest release has yet to reach, past their backoff. */
  private due(): Member[] {
    const release = this.desired;
    if (!release || this.stopped) return [];
    const now = performance.now();
    return [...this.members.values()].filter(
      (m) => (m.phase !== "in-sync" || m.current !== release.id) && m.retryAt <= now,
    );
  }

  private async round(): Promise<void> {
    const release = this.desired;
    const members = this.due();
    if (!release || members.length === 0) {
      this.scheduleRetry();
      return;
    }
    const byName = new Map(members.map((m) => [m.node.name, m]));
    const source = this.options.leaderRuns();
    const started = performance.now();
    const { outcomes, states } = await pushReleaseThroughTree(this.inventory, {
      release: {
        release,
        archives: release.archives,
        expectations: this.options.leader(),
        topLevel: release.topLevel,
      },
      nodes: members.map((m) => m.node),
      known: this.known,
      source,
      leaderRuns: (): Promise<LeaderRuns | undefined> =>
        source ? source.fresh() : Promise.resolve({ pinned: [], runs: [] }),
      options: {
        replace: this.options.replace,
        signal: this.abort.signal,
        onEvent: (event) => this.progress(byName, event),
      },
    });
    for (const outcome of outcomes) {
      const member = byName.get(outcome.node);
      if (!member || this.members.get(outcome.node) !== member) continue;
      const state = states.get(outcome.node);
      if (outcome.ok && state) {
        this.known.set(outcome.node, state);
        member.current = release.id;
        member.attempt = 0;
        const result = outcome.result!;
        this.options.onEvent({
          type: "node-synced",
          node: outcome.node,
          release: release.id,
          seq: release.seq,
          result,
          ms: Math.round(performance.now() - started),
          latencyMs: Math.round(performance.now() - release.changedAt),
        });
        for (const id of result.runReleases ?? [])
          this.options.onEvent({ type: "node-run-release", node: outcome.node, release: id });
        this.setPhase(member, "in-sync", release.id);
      } else {
        // Surveyed again on its retry: what it holds is no longer known.
        this.known.delete(outcome.node);
        if (this.stopped) continue;
        member.attempt++;
        const retryInMs = retryDelayMs(member.attempt, Math.random());
        member.retryAt = performance.now() + retryInMs;
        this.setPhase(member, "failed");
        this.options.onEvent({
          type: "node-failed",
          node: outcome.node,
          error: outcome.error ?? "failed",
          retryInMs,
          attempt: member.attempt,
        });
      }
    }
    this.scheduleRetry();
  }

  private progress(members: Map<string, Member>, event: PushEvent): void {
    const member = "node" in event ? members.get(event.node) : undefined;
    if (!member) return;
    if (event.type === "node-warning")
      this.options.onEvent({ type: "node-warning", node: event.node, message: event.message });
    else if (event.type === "node-progress")
      this.setPhase(member, event.phase === "checking" ? "checking" : "syncing", this.desired?.id);
  }

  /** Wakes the group when the first failed worker's backoff ends. */
  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    if (this.stopped || !this.desired) return;
    const waiting = [...this.members.values()].filter(
      (m) => m.phase === "failed" || m.current !== this.desired?.id,
    );
    if (waiting.length === 0) return;
    const next = Math.min(...waiting.map((m) => m.retryAt));
    this.retryTimer = setTimeout(() => this.kick(), Math.max(0, next - performance.now()) + 5);
    this.retryTimer.unref();
  }

  private setPhase(member: Member, phase: NodePhase, release?: string): void {
    const event = phaseChange(member.node.name, member.phase, phase, release);
    if (!event) return;
    member.phase = phase;
    this.options.onEvent(event);
  }

  /** A push under way gets `graceMs` to finish; then ClusterShell is stopped (nothing half-published: each node switches atomically). */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const running = this.running;
    if (!running) return;
    const finished = await Promise.race([
      running.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref()),
    ]);
    if (!finished) {
      this.abort.abort();
      await running;
    }
  }
}
