import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { ResolutionError } from "../core/errors.js";
import { pythonSourcePath } from "../package-files.js";

/** A module that does not compile with the leader's interpreter: where, and Python's words. */
export interface CompileError {
  /** Absolute path on the leader. */
  path: string;
  line: number;
  message: string;
}

/**
 * Compiles modules with the leader's interpreter (compile-check.py), one request at a time over
 * a process that stays up until `close()`, so watch mode pays for one interpreter start.
 */
export class CompileChecker {
  private child: ChildProcess | undefined;
  private lines: Interface | undefined;
  private readonly answers: ((line: string) => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly python: string) {}

  /** The modules of `paths` that do not compile; an empty list when all do. */
  check(paths: readonly string[]): Promise<CompileError[]> {
    if (paths.length === 0) return Promise.resolve([]);
    const answer = this.queue.then(() => this.ask(paths));
    this.queue = answer.catch(() => {});
    return answer;
  }

  private start(): void {
    const file = pythonSourcePath("resolve/compile-check.py");
    const child = spawn(this.python, ["-E", "-c", readFileSync(file, "utf8")], {
      cwd: dirname(file),
      stdio: ["pipe", "pipe", "ignore"],
    });
    this.child = child;
    this.lines = createInterface({ input: child.stdout! });
    this.lines.on("line", (line) => this.answers.shift()?.(line));
    const gone = () => {
      if (this.child !== child) return;
      this.child = undefined;
      for (const answer of this.answers.splice(0)) answer("");
    };
    child.once("exit", gone);
    child.once("error", gone);
    child.stdin!.on("error", () => {});
  }

  private ask(paths: readonly string[]): Promise<CompileError[]> {
    if (!this.child) this.start();
    return new Promise((resolve, reject) => {
      this.answers.push((line) => {
        try {
          const rows = JSON.parse(line) as [string, number, string][];
          resolve(rows.map(([path, at, message]) => ({ path, line: at, message })));
        } catch {
          reject(
            new ResolutionError(
              `The leader's Python interpreter ${this.python} could not compile the modules to check them.`,
            ),
          );
        }
      });
      this.child!.stdin!.write(`${JSON.stringify(paths)}\n`);
    });
  }

  close(): void {
    this.lines?.close();
    this.child?.stdin?.end();
    this.child?.kill();
    this.child = undefined;
  }
}
