/**
 * POSIX shell quoting for the few remote command lines we build. Everything is single-quoted,
 * so nothing in a path (spaces, quotes, `$()`, newlines, leading `-`) is interpreted.
 */

export function shellQuote(arg: string): string {
  if (arg.includes("\0")) throw new TypeError("a shell argument cannot contain a NUL byte");
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function shellCommand(args: readonly string[]): string {
  return args.map(shellQuote).join(" ");
}

/** A remote path as written in the inventory: `~` and `~/...` expand to the remote $HOME. */
export function remotePath(path: string): string {
  if (path === "~") return '"$HOME"';
  if (path.startsWith("~/")) {
    const rest = path.slice(2);
    return rest.length > 0 ? `"$HOME"/${shellQuote(rest)}` : '"$HOME"/';
  }
  return shellQuote(path);
}

/**
 * `sh -c SCRIPT` as a command line that any login shell hands to sh unchanged. sshd runs the
 * command through the user's login shell: csh and tcsh cannot read a newline inside quotes
 * ("Unmatched '") and expand `!` even there ("Event not found"), and fish reads `\\` and `\'`
 * inside single quotes as escapes. A script with none of newline, backslash and `!` goes as it is
 * (readable in `ps` on the node); any other is written with printf's octal escapes for those and
 * the quote (`\0012`, `\0134`, `\0041`, `\0047`, which none of these shells reads inside single
 * quotes) and rebuilt by sh itself with its builtins printf and eval.
 */
export function portableShellCommand(script: string): string {
  if (!/[\n\\!]/.test(script)) return shellCommand(["sh", "-c", script]);
  const escaped = script.replace(/[\\\n'!]/g, (c) => `\\0${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
  return shellCommand(["sh", "-c", `eval "$(printf %b '${escaped}')"`]);
}
