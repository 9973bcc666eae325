import { spawn } from "node:child_process";

/**
 * A command run on this machine for the inventory (a workers command, `nodeset`): argv without
 * a shell, in its own process group so that a timeout kills what it started too (a pipeline, a
 * ClusterShell upcall), with its output capped.
 */

export interface RunOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when stdout grew past `maxOutput` and the command was killed for it. */
  overflowed: boolean;
  spawnError?: Error;
}

export function runBounded(
  argv: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; maxOutput: number },
): Promise<RunOutcome> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let overflowed = false;
    let spawnError: Error | undefined;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // Already gone.
      }
    };
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (stdout.length > options.maxOutput) {
        overflowed = true;
        killGroup("SIGKILL");
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      // Only the end is ever shown.
      stderr = (stderr + d).slice(-64 * 1024);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup("SIGKILL");
    }, options.timeoutMs);
    child.once("error", (error) => {
      spawnError = error;
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, overflowed, ...(spawnError ? { spawnError } : {}) });
    });
  });
}

const STDERR_LINES = 8;

/** The end of a command's stderr, indented, for a message. */
export function stderrTail(stderr: string): string {
  const lines = stderr
    .trimEnd()
    .split("\n")
    .filter((l) => l.trim() !== "");
  if (lines.length === 0) return "it printed nothing on stderr";
  const shown = lines.slice(-STDERR_LINES).map((l) => `  ${l}`);
  return `its stderr${lines.length > STDERR_LINES ? ` (last ${STDERR_LINES} lines)` : ""}:\n${shown.join("\n")}`;
}
