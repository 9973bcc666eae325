import { join } from "node:path";

/**
 * The environment variables that decide what the leader's Python imports: which interpreter runs
 * and which directories end up on its sys.path. A resolution kept between commands (the daemon's)
 * is only valid for the same values; every other variable is ignored. Pure.
 */

/** Read by Python itself, by the resolver (PYTHONPATH, VIRTUAL_ENV, HOME) or by a pyenv shim. */
export const PATH_SHAPING_VARIABLES = [
  "PYTHONPATH",
  "PYTHONHOME",
  "PYTHONSAFEPATH",
  "PYTHONNOUSERSITE",
  "PYTHONUSERBASE",
  "PYTHONPLATLIBDIR",
  "PYTHONEXECUTABLE",
  "VIRTUAL_ENV",
  // The user site-packages is ~/.local/lib/pythonX.Y/site-packages; a root at $HOME is refused.
  "HOME",
  "PYENV_VERSION",
] as const;

/** The interpreter a command starts: the one named, else the activated venv's, else python3 on PATH. */
export function interpreterOf(python: string | undefined, env: NodeJS.ProcessEnv): string {
  if (python) return python;
  return env.VIRTUAL_ENV ? join(env.VIRTUAL_ENV, "bin", "python") : "python3";
}

/** Whether the interpreter is found by searching PATH (a bare name such as `python3`). */
export function foundOnPath(interpreter: string): boolean {
  return !interpreter.includes("/");
}

/**
 * The variables of `env` that shape sys.path, set ones only: PATH too when the interpreter is
 * searched on it, since another PATH may find another python.
 */
export function pathShapingEnvironment(
  env: NodeJS.ProcessEnv,
  python: string | undefined,
): Record<string, string> {
  const names: string[] = [...PATH_SHAPING_VARIABLES];
  if (foundOnPath(interpreterOf(python, env))) names.push("PATH");
  const shaping: Record<string, string> = {};
  for (const name of names.sort()) {
    const value = env[name];
    if (value !== undefined) shaping[name] = value;
  }
  return shaping;
}

/**
 * The environment the interpreter is started with on the client's behalf: this process's own,
 * with every shaping variable as the client has it (unset when the client has it unset).
 */
export function interpreterEnvironment(
  own: NodeJS.ProcessEnv,
  shaping: Readonly<Record<string, string>>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...own };
  for (const name of [...PATH_SHAPING_VARIABLES, "PATH"]) {
    if (shaping[name] !== undefined) env[name] = shaping[name];
    else if (name !== "PATH") delete env[name];
  }
  return env;
}
