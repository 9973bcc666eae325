/**
 * The output of an inventory's workers command (a script, `sinfo`, `scontrol show hostnames`):
 * one host a line, `user@host:port` allowed, blank lines and `#` comments ignored. Pure; the
 * command is run in inventory/workers-command.ts.
 */

export interface ListedHost {
  host: string;
  user?: string;
  port?: number;
  /** 1-based line of the output it was printed on, and the line itself, for messages. */
  line: number;
  text: string;
}

/** A line of the output that is not one host; `line` is 1-based. */
export class HostListError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    problem: string,
  ) {
    super(
      `line ${line} of its output, \`${text.length > 60 ? `${text.slice(0, 60)}...` : text}\`, ${problem}`,
    );
  }
}

const WORD = /^[^\s@]+$/;

/** Every host printed, in order; a host printed twice the same way is kept once. */
export function parseHostList(output: string): ListedHost[] {
  const hosts: ListedHost[] = [];
  const seen = new Set<string>();
  output.split(/\r?\n/).forEach((raw, index) => {
    const text = raw.replace(/(^|\s)#.*$/, "").trim();
    if (text === "") return;
    const host = parseHostLine(text, index + 1);
    const key = `${host.user ?? ""}@${host.host}:${host.port ?? ""}`;
    if (seen.has(key)) return;
    seen.add(key);
    hosts.push(host);
  });
  return hosts;
}

function parseHostLine(text: string, line: number): ListedHost {
  if (/\s/.test(text))
    throw new HostListError(
      line,
      text,
      "is not one host: print one host a line (`host`, `user@host` or `user@host:port`), nothing else",
    );
  if (text.includes("\0")) throw new HostListError(line, text, "contains a NUL character");
  let rest = text;
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!WORD.test(user) || user.startsWith("-"))
      throw new HostListError(line, text, `has no usable user before "@"`);
  }
  let port: number | undefined;
  // `[::1]:2222` or `host:2222`; a bare IPv6 address has several colons and no port.
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  const withPort = /^([^:]+):(\d*)$/.exec(rest);
  let host = rest;
  let portText: string | undefined;
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if (withPort) {
    host = withPort[1]!;
    portText = withPort[2];
  }
  if (portText !== undefined) {
    port = Number(portText);
    if (portText === "" || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new HostListError(line, text, "has a port that is not a whole number from 1 to 65535");
  }
  if (host === "" || host.startsWith("-"))
    throw new HostListError(line, text, `is not a host name (empty, or starting with "-")`);
  return {
    host,
    line,
    text,
    ...(user !== undefined ? { user } : {}),
    ...(port !== undefined ? { port } : {}),
  };
}
