/**
 * Typed errors. Each carries the exit code the CLI uses (docs/DESIGN.md section 2) and a message
 * written for the scientist reading it: what failed, where, and what to do instead.
 */

export const ExitCode = {
  ok: 0,
  nodesFailed: 1,
  usage: 2,
  interrupted: 130,
} as const;

export class SyncClusterError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.usage) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Wrong command-line arguments. */
export class UsageError extends SyncClusterError {}

/** Where in a file a problem sits; line and column are 1-based. */
export interface FileLocation {
  file: string;
  line?: number;
  column?: number;
  /** Dotted key path, e.g. `workers[2].port`. */
  key?: string;
}

export function formatLocation(at: FileLocation): string {
  let where = at.file;
  if (at.line !== undefined) where += `:${at.line}`;
  if (at.column !== undefined && at.line !== undefined) where += `:${at.column}`;
  if (at.key) where += ` (key ${at.key})`;
  return where;
}

/** The inventory is missing, unreadable or invalid. Nothing has been contacted. */
export class InventoryError extends SyncClusterError {
  readonly at: FileLocation;
  constructor(at: FileLocation, problem: string) {
    super(`${formatLocation(at)}: ${problem}`);
    this.at = at;
  }
}

/** The workflow's module set cannot be decided. Nothing has been changed on any node. */
export class ResolutionError extends SyncClusterError {}

/** Something went wrong with one node; the others carry on. */
export class NodeError extends SyncClusterError {
  readonly node: string;
  constructor(node: string, message: string) {
    super(message, ExitCode.nodesFailed);
    this.node = node;
  }
}
