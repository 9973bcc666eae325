/**
 * Coalesces a burst of file events into one batch: the batch fires `debounceMs` after the last
 * event, or at the latest `maxWaitMs` after the first, so a long stream of saves (a checkout, a
 * build writing thousands of files) still produces releases now and then, not one per event.
 */
export class ChangeBatcher {
  /** A batch this large may have lost paths: whoever reads it should assume anything changed. */
  static readonly maxPaths = 10_000;
  private paths = new Set<string>();
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly debounceMs: number,
    private readonly maxWaitMs: number,
    private readonly flush: (paths: Set<string>, firstSeenAt: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(path: string): void {
    if (this.paths.size === 0) this.firstAt = this.now();
    // Bounded: past this many paths the batch only says that something changed.
    if (this.paths.size < ChangeBatcher.maxPaths) this.paths.add(path);
    if (this.timer) clearTimeout(this.timer);
    const waited = this.now() - this.firstAt;
    const delay = Math.max(0, Math.min(this.debounceMs, this.maxWaitMs - waited));
    this.timer = setTimeout(() => this.fire(), delay);
  }

  private fire(): void {
    this.timer = undefined;
    const paths = this.paths;
    this.paths = new Set();
    if (paths.size > 0) this.flush(paths, this.firstAt);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.paths = new Set();
  }
}
