import { retryDelayMs } from "../core/backoff.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { loginOutputWarning } from "../core/protocol/agent-announcement.js";
import type { LeaderExpectations } from "../core/readiness/node-checks.js";
import { type LeaderRuns, protectedReleases, runReleasesLacking } from "../core/release/live-runs.js";
import type { ReleaseArchives } from "../push/archive.js";
import {
  type NodePushResult,
  type PushSettings,
  pushToNode,
  type Release,
  stateAfterPublish,
  verifyEntry,
} from "../push/node-push.js";
import type { LeaderRunSource } from "../push/run-releases.js";
import { requireNodeReady } from "../readiness/node-check.js";

/** The part of the leader a syncer asks: its runs now, and their releases. */
export type RunsOfLeader = Pick<LeaderRunSource, "fresh" | "release">;

import { AgentSession } from "../transport/agent-session.js";
import { directLinker, type NodeLink, type NodeLinker } from "../transport/node-link.js";
import { hello, type WorkerState } from "../transport/worker-client.js";

/**
 * One worker in watch mode: a persistent agent (over a connection of its own, or one the user's
 * daemon holds and one-shot commands share), and a loop that brings the worker to the newest
 * release it was offered. Releases only move forward (a node never receives an
 * older release after a newer one); failures are retried with backoff; a slow or dead node never
 * waits on, or holds back, any other.
 */

export type NodePhase = "connecting" | "checking" | "syncing" | "in-sync" | "failed" | "stopped";

/**
 * The event of a node entering `phase`, or none when it is there already; "in-sync" is told
 * again each time, since each one names the release the node came to.
 */
export function phaseChange(
  node: string,
  from: NodePhase,
  phase: NodePhase,
  release?: string,
): SyncerEvent | undefined {
  if (phase === from && phase !== "in-sync") return undefined;
  return { type: "node-phase", node, phase, ...(release ? { release } : {}) };
}

/** A release in watch mode: numbered so that "newer" is well defined. */
export interface WatchRelease extends Release {
  seq: number;
  /** The set's top-level names (of every root), verified to load from the release after each publish. */
  topLevel: string[];
  archives: ReleaseArchives;
  /** When the change that produced it was first seen (performance.now()). */
  changedAt: number;
}

export type SyncerEvent =
  | { type: "node-phase"; node: string; phase: NodePhase; release?: string }
  | {
      type: "node-synced";
      node: string;
      release: string;
      seq: number;
      result: NodePushResult;
      ms: number;
      latencyMs: number;
    }
  | { type: "node-failed"; node: string; error: string; retryInMs: number; attempt: number }
  /** A live workflow run's release that the node lacked, published beside its current one. */
  | { type: "node-run-release"; node: string; release: string }
  /** Shown once per node per watch: its login shell printed before the agent started. */
  | { type: "node-warning"; node: string; message: string };

export interface SyncerOptions {
  project: string;
  acceptNew: boolean;
  /** Replace a project of the same name pushed from another leader or root (--replace). */
  replace?: boolean;
  /** Checked once per connection, before the first push over it; undefined skips (--no-check). */
  leader: () => LeaderExpectations | undefined;
  /** How the node is reached: directly (the default) or through the user's daemon. */
  links?: NodeLinker;
  /** Bounds how many nodes connect or push at once (shared by all syncers). */
  slot: <T>(work: () => Promise<T>) => Promise<T>;
  /** The leader, asked before each publish to a worker what its runs use; absent without a leader. */
  leaderRuns?: RunsOfLeader | undefined;
  onEvent: (event: SyncerEvent) => void;
  random?: () => number;
}

export class NodeSyncer {
  private desired: WatchRelease | undefined;
  private state: WorkerState | undefined;
  private link: NodeLink | undefined;
  private session: AgentSession | undefined;
  // Each reconnection meets the same login shell: its output is worth one warning.
  private warnedLoginOutput = false;
  private phase: NodePhase = "connecting";
  private stopped = false;
  private attempt = 0;
  private wake: (() => void) | undefined;
  private readonly loop: Promise<void>;

  constructor(
    readonly node: NodeSpec,
    private readonly options: SyncerOptions,
  ) {
    this.loop = this.run();
  }

  get currentPhase(): NodePhase {
    return this.phase;
  }

  /** The release the worker is known to run, once connected. */
  get currentRelease(): string | null {
    return this.state?.current ?? null;
  }

  /** Offers a release; ignored when it is not newer than the one already wanted. */
  offer(release: WatchRelease): void {
    if (this.desired && release.seq <= this.desired.seq) return;
    this.desired = release;
    this.wake?.();
  }

  /**
   * Stops the loop. An in-flight push gets `graceMs` to finish; then the connection is closed,
   * which aborts the upload on the worker before anything is published.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const finished = await Promise.race([
      this.loop.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref()),
    ]);
    this.disconnect();
    if (!finished) await this.loop;
    this.setPhase("stopped");
  }

  private setPhase(phase: NodePhase, release?: string): void {
    const event = phaseChange(this.node.name, this.phase, phase, release);
    if (!event) return;
    this.phase = phase;
    this.options.onEvent(event);
  }

  private disconnect(): void {
    this.session?.close();
    this.link?.close();
    this.session = undefined;
    this.link = undefined;
    this.state = undefined;
  }

  private sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      // Stop always interrupts a wait; a new release interrupts only an idle wait, not a backoff.
      this.wake = () => {
        if (!wakeable && !this.stopped) return;
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private needsWork(): boolean {
    if (!this.session || !this.state) return true; // stay connected, so a return is noticed and a release is quick
    return this.desired !== undefined && (this.state.current !== this.desired.id || !this.state.pthOk);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!this.needsWork()) {
        await this.sleep(60_000, true);
        continue;
      }
      try {
        await this.options.slot(() => this.step());
        this.attempt = 0;
      } catch (error) {
        if (this.stopped) break;
        this.disconnect();
        const retryInMs = retryDelayMs(this.attempt, (this.options.random ?? Math.random)());
        this.attempt++;
        this.setPhase("failed");
        this.options.onEvent({
          type: "node-failed",
          node: this.node.name,
          error: (error as Error).message,
          retryInMs,
          attempt: this.attempt,
        });
        await this.sleep(retryInMs, false);
      }
    }
  }

  private async ensureSession(): Promise<{ session: AgentSession; state: WorkerState }> {
    if (this.session?.isOpen && this.state) return { session: this.session, state: this.state };
    this.disconnect();
    this.setPhase("connecting");
    const link = await (this.options.links ?? directLinker).link(this.node, {
      acceptNew: this.options.acceptNew,
    });
    this.link = link;
    const streams = await link.agent();
    const session = new AgentSession(this.node, streams);
    this.session = session;
    // An agent lost while idle (the connection dropped, the daemon went): reconnect now, so the
    // node's state is known and it catches up.
    streams.lifecycle.once("close", () => {
      if (this.session === session) {
        this.state = undefined;
        this.wake?.();
      }
    });
    if (session.loginOutput && !this.warnedLoginOutput) {
      this.warnedLoginOutput = true;
      this.options.onEvent({
        type: "node-warning",
        node: this.node.name,
        message: loginOutputWarning(session.loginOutput),
      });
    }
    // Without the worker's manifest: a push asks for its base's only when the leader lacks it.
    const state = await hello(session, this.node, this.options.project, this.node.keep, false);
    const leader = this.options.leader();
    if (leader) {
      this.setPhase("checking");
      await requireNodeReady(session, this.node, leader, "synced");
    }
    this.state = state;
    return { session, state };
  }

  /** What the leader's runs ask of this node now; undefined when the leader cannot say. */
  private async leaderRuns(): Promise<LeaderRuns | undefined> {
    // The leader keeps what its own runs use by itself.
    if (this.node.role === "leader" || !this.options.leaderRuns) return { pinned: [], runs: [] };
    return this.options.leaderRuns.fresh();
  }

  private async step(): Promise<void> {
    if (this.stopped) return;
    const { session, state } = await this.ensureSession();
    const release = this.desired;
    if (!release) {
      this.setPhase(state.current ? "in-sync" : "connecting", state.current ?? undefined);
      return;
    }
    // As they are at this publish: a run started since the last one is kept.
    const runs = await this.leaderRuns();
    const settings: PushSettings = {
      keep: this.node.keep,
      lockTimeoutSeconds: 60,
      dryRun: false,
      replace: this.options.replace ?? false,
      ...(runs ? { protect: protectedReleases(runs) } : { collect: false }),
    };
    if (!(state.current === release.id && state.pthOk)) {
      if (this.stopped) return;
      this.setPhase("syncing", release.id);
      const started = performance.now();
      // Every publish is verified: a .pth or package added on the node since the last one counts.
      const result = await pushToNode(session, this.node, state, release, release.archives, {
        ...settings,
        verify: (extraTimeoutMs) =>
          verifyEntry(session, this.node, release.topLevel, undefined, extraTimeoutMs),
      });
      // What the worker now runs: the next delta is computed against it without asking again.
      this.state = stateAfterPublish(state, release, true);
      const now = performance.now();
      this.options.onEvent({
        type: "node-synced",
        node: this.node.name,
        release: release.id,
        seq: release.seq,
        result,
        ms: now - started,
        latencyMs: now - release.changedAt,
      });
    }
    await this.installRunReleases(session, runs, release, settings);
    this.setPhase("in-sync", release.id);
  }

  /** The live runs' releases this node lacks (it was away when they were published), beside `current`. */
  private async installRunReleases(
    session: AgentSession,
    runs: LeaderRuns | undefined,
    release: WatchRelease,
    settings: PushSettings,
  ): Promise<void> {
    const source = this.options.leaderRuns;
    if (!runs || !source || !this.state) return;
    for (const id of runReleasesLacking(runs.runs, this.state.releases, release.id)) {
      if (this.stopped) return;
      const run = await source.release(id);
      await pushToNode(session, this.node, this.state, run.release, run.archives, {
        ...settings,
        activate: false,
        verify: (extraTimeoutMs) => verifyEntry(session, this.node, run.topLevel, id, extraTimeoutMs),
      });
      this.state = stateAfterPublish(this.state, run.release, false);
      this.options.onEvent({ type: "node-run-release", node: this.node.name, release: id });
    }
  }
}
