/**
 * The text of OpenSSH's two ways to reach a host through another: a ProxyJump hop list
 * (`[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated, or `none`) and a
 * ProxyCommand line with its % tokens. Pure: parsing only; node-route.ts decides the route.
 */

export interface HopAddress {
  /** The hop as written, for messages. */
  written: string;
  user?: string;
  /** A host name, an address, or an alias from ~/.ssh/config. */
  host: string;
  port?: number;
}

export type HopList = { none: true } | { none: false; hops: HopAddress[] };

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(problem: string): Parsed<T> => ({ ok: false, problem });

/** OpenSSH refuses characters a shell or ssh itself would read specially in user and host names. */
const WORD = /^[A-Za-z0-9._%+~-]+$/;

function parsePort(text: string, written: string): Parsed<number> {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535))
    return bad(`\`${written}\` has the port \`${text}\`: a port is a whole number from 1 to 65535`);
  return ok(port);
}

/** One hop: `[user@]host[:port]`, `[user@][v6addr]:port` or `ssh://[user@]host[:port]`. */
export function parseHop(text: string): Parsed<HopAddress> {
  const written = text;
  if (text.length === 0) return bad("a hop is empty (two commas in a row, or a comma at an end)");
  if (/\s/.test(text)) return bad(`\`${written}\` contains a space: separate hops with commas only`);
  let rest = text;
  const uri = rest.toLowerCase().startsWith("ssh://");
  if (uri) {
    rest = rest.slice("ssh://".length);
    if (rest.endsWith("/")) rest = rest.slice(0, -1);
  } else if (rest.includes("://")) {
    return bad(
      `\`${written}\` is a URI of another kind: a hop is [user@]host[:port] or ssh://[user@]host[:port]`,
    );
  }
  const hop: HopAddress = { written, host: "" };
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    const user = rest.slice(0, at);
    if (!WORD.test(user) || user.startsWith("-"))
      return bad(`\`${written}\` has the user \`${user}\`, which is not a user name`);
    hop.user = user;
    rest = rest.slice(at + 1);
  }
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    hop.host = bracketed[1]!;
    portText = bracketed[2];
    if (!/^[0-9A-Fa-f:.]+$/.test(hop.host))
      return bad(`\`${written}\`: only an IPv6 address goes between [ ]`);
  } else {
    const colon = rest.indexOf(":");
    if (colon >= 0) {
      if (rest.indexOf(":", colon + 1) >= 0)
        return bad(`\`${written}\` has several colons: write an IPv6 address as [address]:port`);
      portText = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
    hop.host = rest;
    if (!WORD.test(hop.host) || hop.host.startsWith("-"))
      return bad(
        hop.host.length === 0
          ? `\`${written}\` names no host`
          : `\`${written}\` has the host \`${hop.host}\`, which is not a host name`,
      );
  }
  if (portText !== undefined) {
    const port = parsePort(portText, written);
    if (!port.ok) return port;
    hop.port = port.value;
  }
  return ok(hop);
}

/** A ProxyJump value or a `jump` key: `none`, or hops separated by commas, visited in order. */
export function parseHopList(text: string): Parsed<HopList> {
  const trimmed = text.trim();
  if (trimmed.length === 0)
    return bad("names no hop: write [user@]host[:port], several separated by commas, or none");
  if (trimmed.toLowerCase() === "none") return ok({ none: true });
  const hops: HopAddress[] = [];
  for (const part of trimmed.split(",")) {
    const hop = parseHop(part.trim());
    if (!hop.ok) return hop;
    if (hop.value.host.toLowerCase() === "none")
      return bad("`none` disables jumping and cannot be one hop among others");
    hops.push(hop.value);
  }
  return ok({ none: false, hops });
}

/** The values of ProxyCommand's and ProxyJump's tokens (ssh_config(5), TOKENS). */
export interface ProxyTokens {
  /** %h: the host name connected to (after HostName). */
  host: string;
  /** %n: the name as given (the alias). */
  alias: string;
  /** %p */
  port: number;
  /** %r: the remote user. */
  user: string;
}

/** Expands %h %n %p %r and %%, the tokens OpenSSH accepts in ProxyCommand and ProxyJump. */
export function expandProxyTokens(template: string, tokens: ProxyTokens): Parsed<string> {
  let problem: string | undefined;
  const expanded = template.replace(/%(.?)/gs, (whole, token: string) => {
    switch (token) {
      case "%":
        return "%";
      case "h":
        return tokens.host;
      case "n":
        return tokens.alias;
      case "p":
        return String(tokens.port);
      case "r":
        return tokens.user;
    }
    problem ??=
      token === ""
        ? "ends with a lone %: write %% for a percent sign"
        : `has the unknown token ${whole}: only %h %n %p %r and %% are expanded (write %% for a percent sign)`;
    return whole;
  });
  return problem === undefined ? ok(expanded) : bad(problem);
}

/**
 * Characters after which a command line means more than its words: quotes, escapes, variables,
 * globs, redirections, pipes, lists, comments, home directories and assignments.
 */
const SHELL_SYNTAX = /[|&;<>()$`\\"'*?[\]{}#~=!\n]/;

/**
 * What runs a ProxyCommand: its words, when it is nothing but words (no shell to start, nothing
 * interpreted); otherwise `/bin/sh -c` with `exec`, as OpenSSH runs it, so the command is the
 * process that is stopped when the connection closes.
 */
export function proxyCommandArgv(command: string): string[] {
  const words = command
    .trim()
    .split(/[ \t]+/)
    .filter(Boolean);
  if (words.length > 0 && !SHELL_SYNTAX.test(command)) return words;
  return ["/bin/sh", "-c", `exec ${command}`];
}
