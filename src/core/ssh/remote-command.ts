import { portableShellCommand, remotePath, shellCommand, shellQuote } from "./shell-quote.js";

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
 * and then activates the venv: bash's --rcfile, or $ENV for sh, dash, ksh and mksh (a here-document
 * on fd 3, read as /dev/fd/3, so nothing is written on the node); zsh's ZDOTDIR (a directory, so
 * a temporary one, removed as the shell starts); fish's --init-command, which runs after its
 * configuration; for csh and tcsh, a temporary HOME whose .cshrc puts HOME back first.
 */

export interface RemoteCommandOptions {
  deployDir: string;
  project: string;
  venv: string;
  activateVenv: boolean;
  /**
   * The user's command. One word is a shell command line, run by the node's sh (pipes, `&&`, the
   * node's `$VARS`); several are a program and its arguments, each passed as it is, as
   * `kubectl exec` and `docker exec` pass them. (ssh joins the words with spaces for the remote
   * shell, so `ssh node python -c 'print(1)'` fails; `sync-cluster ssh node -- python -c
   * 'print(1)'` works.)
   */
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
    lines.push(options.command.length === 1 ? options.command[0]! : shellCommand(options.command));
  } else if (!options.activateVenv) {
    lines.push(`exec ${LOGIN_SHELL} -i`);
  } else {
    lines.push(...interactiveShell(activate, goThere, { venv, projectDir, deploy }));
  }
  return portableShellCommand(lines.join("\n"));
}

// fish reads neither POSIX quoting nor a file of ours: its --init-command is this constant text, and
// the paths reach it in the environment, as the remote sh expanded them.
const FISH_INIT = [
  'if test -f "$SYNC_CLUSTER_VENV/bin/activate.fish"',
  '  source "$SYNC_CLUSTER_VENV/bin/activate.fish"',
  "else",
  '  echo "sync-cluster: no virtualenv at $SYNC_CLUSTER_VENV on this node; running without it" >&2',
  "end",
  'cd "$SYNC_CLUSTER_PROJECT_DIR" 2>/dev/null; or cd "$SYNC_CLUSTER_DEPLOY_DIR" 2>/dev/null; or cd',
  "set -e SYNC_CLUSTER_VENV SYNC_CLUSTER_PROJECT_DIR SYNC_CLUSTER_DEPLOY_DIR",
].join("\n");

// zsh reads $ZDOTDIR/.zshenv, then $ZDOTDIR/.zshrc: ours run the user's (from the ZDOTDIR the
// environment or their own .zshenv gives, else HOME), and the second then activates the venv.
const RESTORE_USER_ZDOTDIR =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  "if [[ -n ${SYNC_CLUSTER_USER_ZDOTDIR+x} ]]; then ZDOTDIR=$SYNC_CLUSTER_USER_ZDOTDIR; else unset ZDOTDIR; fi";
const ZSHENV = [
  RESTORE_USER_ZDOTDIR,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  'if [[ -f "${ZDOTDIR:-$HOME}/.zshenv" ]]; then . "${ZDOTDIR:-$HOME}/.zshenv"; fi',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  "if [[ -n ${ZDOTDIR+x} ]]; then SYNC_CLUSTER_USER_ZDOTDIR=$ZDOTDIR; else unset SYNC_CLUSTER_USER_ZDOTDIR; fi",
  "ZDOTDIR=$SYNC_CLUSTER_ZDOTDIR",
];
// csh and tcsh read their start-up file from HOME only, so they start with HOME at a temporary
// directory whose .cshrc puts HOME back, removes the directory, runs the user's file (tcsh's
// ~/.tcshrc, else ~/.cshrc) and activates. csh syntax: the paths come in the environment.
const CSHRC = [
  'setenv HOME "$SYNC_CLUSTER_HOME"',
  'set home = "$SYNC_CLUSTER_HOME"',
  '/bin/rm -rf "$SYNC_CLUSTER_CSH_DIR"',
  "unsetenv SYNC_CLUSTER_HOME SYNC_CLUSTER_CSH_DIR",
  "if ( $?tcsh && -r ~/.tcshrc ) then",
  "  source ~/.tcshrc",
  "else if ( -r ~/.cshrc ) then",
  "  source ~/.cshrc",
  "endif",
  'if ( -f "$SYNC_CLUSTER_VENV/bin/activate.csh" ) then',
  '  source "$SYNC_CLUSTER_VENV/bin/activate.csh"',
  "else",
  '  echo "sync-cluster: no virtualenv at $SYNC_CLUSTER_VENV on this node; running without it"',
  "endif",
  'if ( -d "$SYNC_CLUSTER_PROJECT_DIR" ) then',
  '  cd "$SYNC_CLUSTER_PROJECT_DIR"',
  'else if ( -d "$SYNC_CLUSTER_DEPLOY_DIR" ) then',
  '  cd "$SYNC_CLUSTER_DEPLOY_DIR"',
  "endif",
  "unsetenv SYNC_CLUSTER_VENV SYNC_CLUSTER_PROJECT_DIR SYNC_CLUSTER_DEPLOY_DIR",
];
const ZSHRC_USER = [
  RESTORE_USER_ZDOTDIR,
  'command rm -rf -- "$SYNC_CLUSTER_ZDOTDIR"',
  "unset SYNC_CLUSTER_USER_ZDOTDIR SYNC_CLUSTER_ZDOTDIR",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
  'if [[ -f "${ZDOTDIR:-$HOME}/.zshrc" ]]; then . "${ZDOTDIR:-$HOME}/.zshrc"; fi',
];

/**
 * An interactive shell whose own start-up files run before the venv is activated. The activation
 * sets the prompt's `(venv)` prefix, as `. VENV/bin/activate` does by hand. Shells not named here
 * start with the venv activated before their files run.
 */
function interactiveShell(
  activate: string,
  goThere: string,
  paths: { venv: string; projectDir: string; deploy: string },
): string[] {
  // After the user's files: activate, and come back to the project should they have moved.
  const afterUserFiles = ["exec 3<&-", activate, goThere];
  // For the shells that read no POSIX quoting (fish, csh): the paths as the remote sh expands them.
  const pathsInEnv = `SYNC_CLUSTER_VENV=${paths.venv} SYNC_CLUSTER_PROJECT_DIR=${paths.projectDir} SYNC_CLUSTER_DEPLOY_DIR=${paths.deploy}`;
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
    "zsh)",
    // A system zshenv that sets ZDOTDIR itself would pass ours by: then the venv first, as for other shells.
    `  if ! grep -qs '^[^#]*ZDOTDIR' /etc/zsh/zshenv /etc/zshenv && SYNC_CLUSTER_ZDOTDIR=$(mktemp -d "\${TMPDIR:-/tmp}/sync-cluster-zsh.XXXXXX"); then`,
    "    export SYNC_CLUSTER_ZDOTDIR",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    '    if [ -n "${ZDOTDIR+x}" ]; then SYNC_CLUSTER_USER_ZDOTDIR=$ZDOTDIR; export SYNC_CLUSTER_USER_ZDOTDIR; fi',
    // One line: the two here-documents' bodies follow it, in order.
    `    cat > "$SYNC_CLUSTER_ZDOTDIR/.zshenv" <<'${HEREDOC_END}' && cat > "$SYNC_CLUSTER_ZDOTDIR/.zshrc" <<'${HEREDOC_END}' && ZDOTDIR=$SYNC_CLUSTER_ZDOTDIR exec ${LOGIN_SHELL} -i`,
    ...ZSHENV,
    HEREDOC_END,
    ...ZSHRC_USER,
    activate,
    goThere,
    HEREDOC_END,
    // No room for two small files: the venv first, as for other shells.
    '    rm -rf -- "$SYNC_CLUSTER_ZDOTDIR"',
    "    unset SYNC_CLUSTER_ZDOTDIR SYNC_CLUSTER_USER_ZDOTDIR",
    "  fi",
    `  ${activate}`,
    `  exec ${LOGIN_SHELL} -i`,
    "  ;;",
    "fish)",
    `  ${pathsInEnv} exec ${LOGIN_SHELL} -i -C ${shellQuote(FISH_INIT)}`,
    "  ;;",
    "tcsh|csh)",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion
    '  if SYNC_CLUSTER_CSH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sync-cluster-csh.XXXXXX"); then',
    `    export SYNC_CLUSTER_CSH_DIR SYNC_CLUSTER_HOME="$HOME" ${pathsInEnv}`,
    `    cat > "$SYNC_CLUSTER_CSH_DIR/.cshrc" <<'${HEREDOC_END}' && HOME=$SYNC_CLUSTER_CSH_DIR exec ${LOGIN_SHELL} -i`,
    ...CSHRC,
    HEREDOC_END,
    '    rm -rf -- "$SYNC_CLUSTER_CSH_DIR"',
    "    unset SYNC_CLUSTER_CSH_DIR SYNC_CLUSTER_HOME SYNC_CLUSTER_VENV SYNC_CLUSTER_PROJECT_DIR SYNC_CLUSTER_DEPLOY_DIR",
    "  fi",
    `  ${activate}`,
    `  exec ${LOGIN_SHELL} -i`,
    "  ;;",
    "*)",
    `  ${activate}`,
    `  exec ${LOGIN_SHELL} -i`,
    "  ;;",
    "esac",
  ];
}
