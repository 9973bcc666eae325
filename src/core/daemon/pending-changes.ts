import { type ChangeVerdict, type InputScope, mergeVerdicts } from "../python/resolution-inputs.js";

/**
 * The changes to a kept resolution's inputs seen since it was made, until the next resolution
 * takes them. Past a bound, or after a failed watch, it only says that anything may have changed.
 */

export interface ChangeBatch {
  /** Changed paths and what each calls for. */
  paths: Map<string, ChangeVerdict>;
  /** What the changes call for, all together. */
  scopes: Set<InputScope>;
  /** Set when what changed is not known (a watch failed, too many changes): resolve afresh. */
  doubt: string | undefined;
}

export class PendingChanges {
  /** Past this many paths the batch only says that anything may have changed. */
  static readonly maxPaths = 10_000;
  private paths = new Map<string, ChangeVerdict>();
  private doubt: string | undefined;

  record(path: string, verdict: ChangeVerdict): void {
    if (this.doubt) return;
    this.paths.set(path, mergeVerdicts(this.paths.get(path), verdict));
    if (this.paths.size > PendingChanges.maxPaths)
      this.inDoubt(`more than ${PendingChanges.maxPaths} paths changed at once`);
  }

  /** What changed is not known; the first reason is kept. */
  inDoubt(reason: string): void {
    this.doubt ??= reason;
    this.paths.clear();
  }

  get empty(): boolean {
    return this.paths.size === 0 && this.doubt === undefined;
  }

  /** A few of the changed paths, for the daemon's log and the client's --verbose. */
  describe(): string {
    if (this.doubt) return this.doubt;
    const sample = [...this.paths.keys()].slice(0, 3).join(", ");
    return this.paths.size > 3 ? `${sample} and ${this.paths.size - 3} more changed` : `${sample} changed`;
  }

  take(): ChangeBatch {
    const batch: ChangeBatch = {
      paths: this.paths,
      scopes: new Set([...this.paths.values()].map((v) => v.scope)),
      doubt: this.doubt,
    };
    this.paths = new Map();
    this.doubt = undefined;
    return batch;
  }
}
