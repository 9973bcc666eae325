import { type ChildProcess, spawn } from "node:child_process";
import { LineSplitter } from "../core/line-splitter.js";

/**
 * `watch --on-synced CMD`: a command run on the leader each time every node holds the same new
 * release (a Toil run started from it imports that release on every node). One at a time: a
 * release that syncs everywhere while it runs is run once after it ends, the newest only.
 */

export type OnSyncedEvent =
  | { type: "on-synced-start"; release: string; nodes: string[]; command: string }
  /** Whole lines of its output, as they come. */
  | { type: "on-synced-output"; release: string; stream: "stdout" | "stderr"; lines: string[] }
  /** A newer release is everywhere while the command runs: it runs again when this one ends. */
  | { type: "on-synced-queued"; release: string; running: string }
  | {
      type: "on-synced-done";
      release: string;
      ok: boolean;
      code: number | null;
      signal: string | null;
      ms: number;
      /** The last lines it wrote to stderr, for a failure's report. */
      stderrTail: string[];
    };

export interface OnSyncedOptions {
  /** Run with `sh -c`, so that it can be a pipeline. */
  command: string;
  cwd: string;
  /** The environment it gets, under SYNC_CLUSTER_RELEASE and SYNC_CLUSTER_NODES. */
  env: NodeJS.ProcessEnv;
  onEvent: (event: OnSyncedEvent) => void;
}

const STDERR_TAIL = 10;

export class OnSyncedRunner {
  private running: { release: string; child: ChildProcess; done: Promise<void> } | undefined;
  private pending: { release: string; nodes: string[] } | undefined;
  private stopped = false;

  constructor(private readonly options: OnSyncedOptions) {}

  /** Every node in `nodes` holds `release`: run the command, now or once the running one ends. */
  offer(release: string, nodes: string[]): void {
    if (this.stopped) return;
    if (this.running) {
      this.pending = { release, nodes };
      this.options.onEvent({ type: "on-synced-queued", release, running: this.running.release });
      return;
    }
    this.start(release, nodes);
  }

  private start(release: string, nodes: string[]): void {
    const started = performance.now();
    this.options.onEvent({ type: "on-synced-start", release, nodes, command: this.options.command });
    // Its own process group: stopping watch stops a whole pipeline, and a terminal's Ctrl-C
    // reaches watch (which stops it) rather than the command alone.
    const child = spawn("/bin/sh", ["-c", this.options.command], {
      cwd: this.options.cwd,
      env: { ...this.options.env, SYNC_CLUSTER_RELEASE: release, SYNC_CLUSTER_NODES: nodes.join(",") },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const tail: string[] = [];
    const forward = (stream: "stdout" | "stderr", lines: string[]) => {
      if (stream === "stderr") {
        tail.push(...lines);
        tail.splice(0, Math.max(0, tail.length - STDERR_TAIL));
      }
      if (lines.length > 0) this.options.onEvent({ type: "on-synced-output", release, stream, lines });
    };
    const splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
    for (const stream of ["stdout", "stderr"] as const) {
      child[stream]!.on("data", (chunk: Buffer) => forward(stream, splitters[stream].push(chunk)));
    }
    const done = new Promise<void>((resolve) => {
      let finished = false;
      const finish = (code: number | null, signal: string | null, spawnError?: Error) => {
        if (finished) return;
        finished = true;
        forward("stdout", splitters.stdout.end());
        forward("stderr", splitters.stderr.end());
        if (spawnError) tail.push(`it could not be started: ${spawnError.message}`);
        this.options.onEvent({
          type: "on-synced-done",
          release,
          ok: code === 0 && !spawnError,
          code,
          signal,
          ms: performance.now() - started,
          stderrTail: [...tail],
        });
        this.running = undefined;
        const next = this.pending;
        this.pending = undefined;
        if (next && !this.stopped) this.start(next.release, next.nodes);
        resolve();
      };
      child.once("error", (error) => finish(null, null, error));
      child.once("close", (code, signal) => finish(code, signal));
    });
    this.running = { release, child, done };
  }

  /**
   * Runs nothing more; a command still running gets `graceMs` to end, then its process group is
   * sent SIGTERM (and SIGKILL 2 s later).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    this.pending = undefined;
    const running = this.running;
    if (!running) return;
    const ended = await Promise.race([
      running.done.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), graceMs).unref()),
    ]);
    if (ended) return;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-running.child.pid!, signal);
      } catch {
        // Already gone.
      }
    };
    signalGroup("SIGTERM");
    const killer = setTimeout(() => signalGroup("SIGKILL"), 2000);
    await running.done;
    clearTimeout(killer);
  }
}
