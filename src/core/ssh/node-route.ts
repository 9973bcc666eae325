import { expandProxyTokens, type HopAddress, parseHopList, proxyCommandArgv } from "./proxy-syntax.js";

/**
 * How a node is reached, decided from the inventory's `jump` key and ~/.ssh/config as OpenSSH
 * decides it: the inventory's `jump` (like `ssh -J`) wins, else whichever of ProxyJump and
 * ProxyCommand ~/.ssh/config gives first; the first hop's own ProxyJump or ProxyCommand is
 * followed (OpenSSH connects to it with its own configuration). Pure: the ssh config comes in.
 */

/** A jump host on the way to a node: an SSH connection of its own, checked and logged in like the node. */
export interface JumpHop {
  /** As the user wrote it, with its port (`bastion:22`): how messages name the hop. */
  label: string;
  host: string;
  port: number;
  user: string;
  /** The hop's own IdentityFile from ~/.ssh/config, else the node's keys. */
  identityFiles: string[];
}

/** A ProxyCommand, its tokens already expanded for the host it leads to. */
export interface ProxyCommandSpec {
  /** The expanded command line, for messages. */
  command: string;
  /** What is started: the words, or /bin/sh -c when the line needs a shell (proxy-syntax.ts). */
  argv: string[];
}

/**
 * The way to a node: the first leg (to hops[0], or to the node when there are no hops) is a TCP
 * connection or, when given, the ProxyCommand's stdin and stdout; every later leg is a channel
 * forwarded by the hop before it.
 */
export interface NodeRoute {
  hops: JumpHop[];
  proxyCommand?: ProxyCommandSpec;
}

/** More hops than this is a mistake, not a network. */
export const MAX_HOPS = 8;

/** A ProxyJump or ProxyCommand setting, with where it was written for messages. */
export interface ProxySetting {
  keyword: "ProxyJump" | "ProxyCommand";
  value: string;
  /** Where it was written: "/home/me/.ssh/config line 4", or the inventory key. */
  at: string;
  fromInventory: boolean;
}

/** What ~/.ssh/config says about a hop (or a node): the parts that decide a route. */
export interface HostSettings {
  hostName?: string;
  port?: number;
  user?: string;
  identityFiles?: string[];
  /** The first of ProxyJump and ProxyCommand that applies to the host (they compete in OpenSSH). */
  proxy?: ProxySetting;
}

export interface RouteLookup {
  sshHost(alias: string): HostSettings | undefined;
}

/** A route that cannot be used; `fromInventory` tells whether the inventory or ~/.ssh/config is to fix. */
export class RouteProblem extends Error {
  constructor(
    message: string,
    readonly fromInventory: boolean,
  ) {
    super(message);
  }
}

interface Endpoint {
  /** The name as given (an alias, or the address). */
  alias: string;
  host: string;
  port: number;
  user: string;
}

type Hop = JumpHop & Endpoint;

interface Route {
  hops: Hop[];
  proxyCommand?: NodeRoute["proxyCommand"];
}

interface Login {
  user: string;
  identityFiles: string[];
}

const sameHost = (a: Endpoint, b: Endpoint) =>
  a.host.toLowerCase() === b.host.toLowerCase() && a.port === b.port;
const label = (e: Endpoint) => `${e.alias}:${e.port}`;

function describe(setting: ProxySetting): string {
  return setting.fromInventory
    ? `\`${setting.at}: ${setting.value}\``
    : `${setting.keyword} \`${setting.value}\` (${setting.at})`;
}

function hopOf(address: HopAddress, login: Login, lookup: RouteLookup, fail: (p: string) => never): Hop {
  const ssh = lookup.sshHost(address.host);
  const host = ssh?.hostName ?? address.host;
  if (/\s/.test(host) || host.startsWith("-"))
    fail(
      `~/.ssh/config gives the hop \`${address.host}\` the HostName \`${host}\`, which is not a host name`,
    );
  const port = address.port ?? ssh?.port ?? 22;
  return {
    alias: address.host,
    label: `${address.host}:${port}`,
    host,
    port,
    user: address.user ?? ssh?.user ?? login.user,
    identityFiles: ssh?.identityFiles?.length ? ssh.identityFiles : login.identityFiles,
  };
}

function routeFor(
  target: Endpoint,
  explicit: ProxySetting | undefined,
  stack: readonly Endpoint[],
  login: Login,
  lookup: RouteLookup,
): Route | undefined {
  const setting = explicit ?? lookup.sshHost(target.alias)?.proxy;
  if (!setting) return undefined;
  const fail = (problem: string): never => {
    throw new RouteProblem(
      `${describe(setting)}${stack.length > 0 ? `, on the way to ${label(stack[0]!)}` : ""}: ${problem}`,
      setting.fromInventory,
    );
  };
  const expanded = expandProxyTokens(setting.value, {
    host: target.host,
    alias: target.alias,
    port: target.port,
    user: target.user,
  });
  if (!expanded.ok) return fail(expanded.problem);
  if (setting.keyword === "ProxyCommand") {
    const command = expanded.value.trim();
    if (command.toLowerCase() === "none") return undefined;
    return { hops: [], proxyCommand: { command, argv: proxyCommandArgv(command) } };
  }
  const list = parseHopList(expanded.value);
  if (!list.ok) return fail(list.problem);
  if (list.value.none) return undefined;
  if (list.value.hops.length > MAX_HOPS)
    fail(`${list.value.hops.length} hops is more than the ${MAX_HOPS} allowed`);
  let hops = list.value.hops.map((a) => hopOf(a, login, lookup, fail));
  // `Host *` blocks and `defaults.jump` name the jump host on its own way too: a host is reached
  // by the part of the route before it, never through itself.
  const self = hops.findIndex((h) => sameHost(h, target));
  if (self >= 0) hops = hops.slice(0, self);
  const first = hops[0];
  if (!first) return undefined;
  checkRepeats(hops, fail);
  const visited = [...stack, target];
  if (visited.some((e) => sameHost(e, first))) fail(`a loop: ${[...visited, first].map(label).join(" -> ")}`);
  const before = routeFor(first, undefined, visited, login, lookup);
  const all = [...(before?.hops ?? []), ...hops];
  if (all.length > MAX_HOPS)
    fail(
      `the route ${all.map(label).join(" -> ")} has ${all.length} hops, more than the ${MAX_HOPS} allowed`,
    );
  checkRepeats(all, fail);
  return { hops: all, ...(before?.proxyCommand ? { proxyCommand: before.proxyCommand } : {}) };
}

function checkRepeats(hops: readonly Hop[], fail: (p: string) => never): void {
  for (let i = 0; i < hops.length; i++)
    for (let j = i + 1; j < hops.length; j++)
      if (sameHost(hops[i]!, hops[j]!))
        fail(
          `goes through ${hops[i]!.host}:${hops[i]!.port} twice (${hops.map(label).join(" -> ")}): a loop`,
        );
}

/**
 * The route to a node, or undefined for a direct connection. `jump` is the inventory's setting
 * (the node's own, else `defaults.jump`); hops without their own User or IdentityFile in
 * ~/.ssh/config log in as the node does.
 */
export function nodeRoute(
  node: { alias: string; host: string; port: number; user: string; identityFiles: string[] },
  jump: ProxySetting | undefined,
  lookup: RouteLookup,
): NodeRoute | undefined {
  const { identityFiles, ...target } = node;
  const route = routeFor(target, jump, [], { user: node.user, identityFiles }, lookup);
  if (!route) return undefined;
  return {
    hops: route.hops.map(({ label, host, port, user, identityFiles }) => ({
      label,
      host,
      port,
      user,
      identityFiles,
    })),
    ...(route.proxyCommand ? { proxyCommand: route.proxyCommand } : {}),
  };
}
