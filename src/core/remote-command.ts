import { remotePath, shellCommand, shellQuote } from "./shell-quote.js";

/**
 * The one remote command line `ssh` and `exec` send: go to the project's deploy directory,
 * activate the venv, then run the user's command (or an interactive shell). Everything runs
 * under `sh -c`, so it behaves the same whatever the node's login shell is.
 */

export interface RemoteCommandOptions {
  deployDir: string;
  project: string;
  venv: string;
  activateVenv: boolean;
  /** The user's command, words joined by spaces and run by the remote shell, as ssh does. */
  command?: readonly string[];
}

export function remoteCommand(options: RemoteCommandOptions): string {
  const deploy = remotePath(options.deployDir);
  const projectDir = `${deploy}/${shellQuote(options.project)}`;
  const venv = remotePath(options.venv);
  const lines = [`cd ${projectDir} 2>/dev/null || cd ${deploy} 2>/dev/null || cd`];
  if (options.activateVenv) {
    lines.push(
      `if [ -f ${venv}/bin/activate ]; then . ${venv}/bin/activate; ` +
        `else echo ${shellQuote(`sync-cluster: no virtualenv at ${options.venv} on this node; running without it`)} >&2; fi`,
    );
  }
  if (options.command && options.command.length > 0) lines.push(options.command.join(" "));
  // The remote shell, not JavaScript, expands $SHELL.
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  else lines.push('exec "${SHELL:-/bin/sh}" -i');
  return shellCommand(["sh", "-c", lines.join("\n")]);
}
