import { expandNodeSet, type GroupMembers, groupReferences, NodeSetError } from "./node-set.js";

/**
 * The output of an inventory's workers command (a script, `sinfo`, `scontrol show hostnames`):
 * one host a line, `user@host:port` allowed, blank lines and `#` comments ignored. A host may be
 * a ClusterShell node set (`node[01-04]`, `@gpu`): `user@` and `:port` then apply to each of its
 * nodes. Pure; the command is run, and the groups looked up, in inventory/workers-command.ts.
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

/** One line as printed: the node set it names, with the user and port for all of its nodes. */
interface HostLine {
  nodes: string;
  /** Where the node set starts in the line, for the character a node-set error names. */
  nodesAt: number;
  user?: string;
  port?: number;
  line: number;
  text: string;
}

function hostLines(output: string): HostLine[] {
  const lines: HostLine[] = [];
  output.split(/\r?\n/).forEach((raw, index) => {
    const text = raw.replace(/(^|\s)#.*$/, "").trim();
    if (text !== "") lines.push(parseHostLine(text, index + 1));
  });
  return lines;
}

function nodeSetProblem(line: HostLine, error: NodeSetError): HostListError {
  return new HostListError(
    line.line,
    line.text,
    `is not a host or a node set: at character ${line.nodesAt + error.column}, ${error.problem}`,
  );
}

/** The ClusterShell groups the output names, each with the first line naming it. */
export function hostListGroups(output: string): { group: string; line: number; text: string }[] {
  const found = new Map<string, { group: string; line: number; text: string }>();
  for (const line of hostLines(output)) {
    let groups: string[];
    try {
      groups = groupReferences(line.nodes);
    } catch (error) {
      if (error instanceof NodeSetError) throw nodeSetProblem(line, error);
      throw error;
    }
    for (const group of groups)
      if (!found.has(group)) found.set(group, { group, line: line.line, text: line.text });
  }
  return [...found.values()];
}

/** Every host printed, node sets expanded, in order; a host printed twice the same way is kept once. */
export function parseHostList(output: string, groups: GroupMembers = new Map()): ListedHost[] {
  const hosts: ListedHost[] = [];
  const seen = new Set<string>();
  for (const line of hostLines(output)) {
    let names: string[];
    try {
      names = expandNodeSet(line.nodes, groups);
    } catch (error) {
      if (error instanceof NodeSetError) throw nodeSetProblem(line, error);
      throw error;
    }
    if (names.length === 0) throw new HostListError(line.line, line.text, "is a node set without nodes");
    for (const host of names) {
      if (host.startsWith("-"))
        throw new HostListError(
          line.line,
          line.text,
          `names \`${host}\`, which is not a host name (it starts with "-")`,
        );
      const key = `${line.user ?? ""}@${host}:${line.port ?? ""}`;
      if (seen.has(key)) continue;
      seen.add(key);
      hosts.push({
        host,
        line: line.line,
        text: line.text,
        ...(line.user !== undefined ? { user: line.user } : {}),
        ...(line.port !== undefined ? { port: line.port } : {}),
      });
    }
  }
  return hosts;
}

/** The `@` before the host, not one that starts a group (`@gpu`, `n1,@gpu`, `alice@@gpu`). */
function userSeparator(text: string): number {
  let at = text.lastIndexOf("@");
  while (at > 0 && "@,!&^".includes(text[at - 1]!)) at = text.lastIndexOf("@", at - 1);
  return at > 0 ? at : -1;
}

function parseHostLine(text: string, line: number): HostLine {
  if (/\s/.test(text))
    throw new HostListError(
      line,
      text,
      "is not one host: print one host a line (`host`, `user@host`, `user@host:port` or a node set like `node[01-04]`), nothing else",
    );
  if (text.includes("\0")) throw new HostListError(line, text, "contains a NUL character");
  let rest = text;
  let user: string | undefined;
  const at = userSeparator(text);
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (!WORD.test(user) || user.startsWith("-"))
      throw new HostListError(line, text, `has no usable user before "@"`);
  }
  let port: number | undefined;
  // `[::1]:2222` or `host:2222`; a bare IPv6 address has several colons and no port.
  const bracketed = /^\[([^\]]*:[^\]]*)\](?::(\d+))?$/.exec(rest);
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
    nodes: host,
    nodesAt: at + 1 + (bracketed ? 1 : 0),
    line,
    text,
    ...(user !== undefined ? { user } : {}),
    ...(port !== undefined ? { port } : {}),
  };
}
