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
