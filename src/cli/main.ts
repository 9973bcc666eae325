import { Command, CommanderError } from "commander";
import { ExitCode, SyncClusterError } from "../core/errors.js";
import { registerCheck } from "./check-command.js";
import { registerDaemon } from "./daemon-command.js";
import { registerExec } from "./exec-command.js";
import { registerInit } from "./init-command.js";
import { registerPush } from "./push-command.js";
import { rememberArgv } from "./raw-args.js";
import { registerResolve } from "./resolve-command.js";
import { registerRollback } from "./rollback-command.js";
import { registerSsh } from "./ssh-command.js";
import { registerStatus } from "./status-command.js";
import { registerWatch } from "./watch-command.js";

/** Builds the command-line program; each command lives in its own file and only parses and prints. */
export function buildProgram(): Command {
  const program = new Command("sync-cluster")
    .description(
      "Make a Python (Toil) workflow importable on every machine of a cluster: resolve its module set, check every node's virtualenv, push it over SSH.",
    )
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError()
    .exitOverride();
  registerResolve(program);
  registerCheck(program);
  registerPush(program);
  registerWatch(program);
  registerStatus(program);
  registerRollback(program);
  registerSsh(program);
  registerExec(program);
  registerInit(program);
  registerDaemon(program);
  return program;
}

export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander already printed the message (or help / version, which exit 0).
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (error instanceof SyncClusterError) {
    process.stderr.write(`sync-cluster: ${error.message}\n`);
    return error.exitCode;
  }
  process.stderr.write(`sync-cluster: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return ExitCode.usage;
}

export async function main(argv: string[]): Promise<void> {
  let code: number;
  rememberArgv(argv);
  try {
    await buildProgram().parseAsync(argv);
    code = typeof process.exitCode === "number" ? process.exitCode : ExitCode.ok;
  } catch (error) {
    code = reportError(error);
  }
  process.exitCode = code;
}
