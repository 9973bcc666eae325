import { remotePath, shellCommand, shellQuote } from "./shell-quote.js";

/**
 * The one remote command line `ssh` and `exec` send: go to the project's deploy directory,
 * activate the venv, then run the user's command (or an interactive shell). Everything runs
 * under `sh -c`, so it behaves the same whatever the node's login shell is.
 *
 * The venv must be activated after the user's own shell files have run, or a ~/.bashrc that puts
 * another python first (pyenv's shims, `conda init`, `module load python`) undoes it. sshd runs the
 * line through the login shell, which reads its files (Debian's bash reads ~/.bashrc for ssh
 * commands) before `sh -c` starts: a command runs after them. An interactive shell reads them
 * again when it starts, so it is started with a start-up file of ours that runs the user's first
 * and then activates the venv: bash's --rcfile, or $ENV for sh, dash, ksh and mksh. The file is a
 * here-document on fd 3 (read as /dev/fd/3), so nothing is written on the node.
 */

export interface RemoteCommandOptions {
  deployDir: string;
  project: string;
  venv: string;
  activateVenv: boolean;
  /** The user's command, words joined by spaces and run by the remote shell, as ssh does. */
  command?: readonly string[];
}

// The remote shell, not JavaScript, expands these.
// biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
const LOGIN_SHELL = '"${SHELL:-/bin/sh}"';
const HEREDOC_END = "SYNC_CLUSTER_RC_END";

export function remoteCommand(options: RemoteCommandOptions): string {
  const deploy = remotePath(options.deployDir);
  const projectDir = `${deploy}/${shellQuote(options.project)}`;
  const venv = remotePath(options.venv);
  const goThere = `cd ${projectDir} 2>/dev/null || cd ${deploy} 2>/dev/null || cd`;
  const activate =
    `if [ -f ${venv}/bin/activate ]; then . ${venv}/bin/activate; ` +
    `else echo ${shellQuote(`sync-cluster: no virtualenv at ${options.venv} on this node; running without it`)} >&2; fi`;
  const lines = [goThere];
  if (options.command && options.command.length > 0) {
    if (options.activateVenv) lines.push(activate);
    lines.push(options.command.join(" "));
  } else if (!options.activateVenv) {
    lines.push(`exec ${LOGIN_SHELL} -i`);
  } else {
    lines.push(...interactiveShell(activate, goThere));
  }
  return shellCommand(["sh", "-c", lines.join("\n")]);
}

/**
 * An interactive login shell whose own start-up files run before the venv is activated. The
 * activation sets the prompt's `(venv)` prefix, as `. VENV/bin/activate` does by hand. Other shells
 * (zsh, fish, tcsh) start with the venv activated before their files run.
 */
function interactiveShell(activate: string, goThere: string): string[] {
  // After the user's files: activate, and come back to the project should they have moved.
  const afterUserFiles = ["exec 3<&-", activate, goThere];
  return [
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    'case "${SHELL##*/}" in',
    "bash)",
    `  exec ${LOGIN_SHELL} --rcfile /dev/fd/3 -i 3<<'${HEREDOC_END}'`,
    // What bash -i reads by itself (after /etc/bash.bashrc, which it reads in any case).
    'if [ -f "$HOME/.bashrc" ]; then . "$HOME/.bashrc"; fi',
    ...afterUserFiles,
    HEREDOC_END,
    "  ;;",
    "sh|dash|ksh|mksh)",
    // These read the file $ENV names: the user's own first, if they set one.
    `  SYNC_CLUSTER_USER_ENV=\${ENV-} ENV=/dev/fd/3 exec ${LOGIN_SHELL} -i 3<<'${HEREDOC_END}'`,
    'if [ -n "$SYNC_CLUSTER_USER_ENV" ]; then ENV=$SYNC_CLUSTER_USER_ENV; else unset ENV; fi',
    "unset SYNC_CLUSTER_USER_ENV",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    'if [ -n "${ENV-}" ] && [ -f "$ENV" ]; then . "$ENV"; fi',
    ...afterUserFiles,
    HEREDOC_END,
    "  ;;",
    "*)",
    `  ${activate}`,
    `  exec ${LOGIN_SHELL} -i`,
    "  ;;",
    "esac",
  ];
}
