import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { ResolutionError } from "../core/errors.js";
import type { InterpreterFacts } from "../core/python/interpreter-facts.js";
import { pythonSourcePath } from "../package-files.js";

/** Runs the probe once with the leader's interpreter and returns what it reported. */
export async function probeInterpreter(
  python: string,
  startDir: string,
  pythonPath: readonly string[],
  /** The interpreter's environment; default: this process's. */
  env?: NodeJS.ProcessEnv,
): Promise<InterpreterFacts> {
  const probeFile = pythonSourcePath("resolve/probe.py");
  const source = await readFile(probeFile, "utf8");
  const output = await new Promise<string>((resolve, reject) => {
    execFile(
      python,
      ["-E", "-c", source, startDir, JSON.stringify(pythonPath)],
      // From the probe's own directory: a project module named `json.py` cannot shadow what it imports.
      { cwd: dirname(probeFile), maxBuffer: 256 * 1024 * 1024, encoding: "utf8", ...(env ? { env } : {}) },
      (error, stdout, stderr) => {
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "ENOENT") {
            reject(
              new ResolutionError(
                `The leader's Python interpreter ${python} was not found. Pass --python PATH, set project.python in the inventory, or activate the virtualenv.`,
              ),
            );
          } else {
            reject(
              new ResolutionError(
                `The leader's Python interpreter ${python} failed to describe itself: ${stderr.trim() || error.message}`,
              ),
            );
          }
          return;
        }
        resolve(stdout);
      },
    );
  });
  try {
    return JSON.parse(output) as InterpreterFacts;
  } catch {
    throw new ResolutionError(
      `The leader's Python interpreter ${python} printed something that is not JSON.`,
    );
  }
}
