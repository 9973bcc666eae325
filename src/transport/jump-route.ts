import type { Duplex } from "node:stream";
import type ssh2 from "ssh2";
import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import type { JumpHop, NodeRoute } from "../core/ssh/node-route.js";
import { type RunningProxyCommand, startProxyCommand } from "./proxy-command.js";
import { type HandshakeOptions, handshake } from "./ssh-handshake.js";

/**
 * The stream a node's SSH connection runs over when the node is not reached directly: a channel
 * forwarded by the last jump host (each hop an SSH connection over the one before, its host key
 * checked like the node's), or a ProxyCommand's stdio. Jump host connections are shared by the
 * nodes of this process that go through the same hops the same way (one bastion, many workers:
 * one handshake on the bastion, not one per worker, which its MaxStartups would refuse), and
 * closed when the last node using them closes.
 */

export interface OpenRoute {
  /** The stream to hand to ssh2 (`sock`); undefined for a direct TCP connection. */
  sock?: Duplex;
  /** Explains a failed handshake over this route (a ProxyCommand's own words). */
  explainFailure?: () => Promise<string | undefined>;
  /** Closes what this route holds: the forwarded channel, a share of the hops, the ProxyCommand. */
  release(): void;
}

interface SharedHop {
  client: Promise<ssh2.Client>;
  users: number;
}

/** Open jump host connections by everything that makes them what they are. */
const hops = new Map<string, SharedHop>();

function hopSpec(node: NodeSpec, hop: JumpHop): NodeSpec {
  const { route: _route, ...rest } = node;
  return { ...rest, host: hop.host, port: hop.port, user: hop.user, identityFiles: hop.identityFiles };
}

function hopKey(node: NodeSpec, route: NodeRoute, index: number, options: HandshakeOptions): string {
  return JSON.stringify([
    route.proxyCommand?.argv ?? null,
    route.hops.slice(0, index + 1),
    node.knownHosts,
    node.acceptNewHostKeys || (options.acceptNew ?? false),
    node.connectTimeout,
    options.agentSocket ?? process.env.SSH_AUTH_SOCK ?? null,
    options.keepaliveMs ?? null,
  ]);
}

/** A channel from `via` to host:port, as `ssh -W` opens it; `hop` names the jump host in errors. */
function forward(
  via: ssh2.Client,
  hop: JumpHop,
  host: string,
  port: number,
  timeoutS: number,
): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`jump host ${hop.label}: no answer from ${host}:${port} within ${timeoutS}s`));
    }, timeoutS * 1000);
    via.forwardOut("127.0.0.1", 0, host, port, (error, channel) => {
      clearTimeout(timer);
      if (!error) {
        resolve(channel);
        return;
      }
      const reason = (error as Error & { reason?: number }).reason;
      reject(
        new Error(
          reason === 1
            ? `jump host ${hop.label} does not allow forwarding to ${host}:${port} (AllowTcpForwarding or PermitOpen in its sshd_config)`
            : `jump host ${hop.label} could not connect to ${host}:${port} (${error.message}): is sshd running there, and is the address right as seen from ${hop.label}?`,
        ),
      );
    });
  });
}

interface HeldHop {
  client: ssh2.Client;
  release(): void;
}

/** The connection to route.hops[index], shared; each call must be matched by one release(). */
async function holdHop(
  node: NodeSpec,
  route: NodeRoute,
  index: number,
  options: HandshakeOptions,
): Promise<HeldHop> {
  const key = hopKey(node, route, index, options);
  let shared = hops.get(key);
  if (!shared) {
    const made: SharedHop = { client: connectHop(node, route, index, options), users: 0 };
    shared = made;
    hops.set(key, made);
    // A failed hop is not kept: the next node (or the next retry of watch) tries again.
    made.client.then(
      (client) =>
        client.once("close", () => {
          if (hops.get(key) === made) hops.delete(key);
        }),
      () => {
        if (hops.get(key) === made) hops.delete(key);
      },
    );
  }
  const held = shared;
  held.users++;
  let client: ssh2.Client;
  try {
    client = await held.client;
  } catch (error) {
    held.users--;
    throw error;
  }
  let released = false;
  return {
    client,
    release() {
      if (released) return;
      released = true;
      if (--held.users === 0) {
        if (hops.get(key) === held) hops.delete(key);
        client.end();
      }
    },
  };
}

/** A new connection to route.hops[index]: over the previous hop, the ProxyCommand, or TCP. */
async function connectHop(
  node: NodeSpec,
  route: NodeRoute,
  index: number,
  options: HandshakeOptions,
): Promise<ssh2.Client> {
  const hop = route.hops[index]!;
  let below: HeldHop | undefined;
  let command: RunningProxyCommand | undefined;
  let sock: Duplex | undefined;
  const letGo = () => {
    sock?.destroy();
    command?.stop();
    below?.release();
  };
  try {
    if (index > 0) {
      below = await holdHop(node, route, index - 1, options);
      sock = await forward(below.client, route.hops[index - 1]!, hop.host, hop.port, node.connectTimeout);
    } else if (route.proxyCommand) {
      command = startProxyCommand(route.proxyCommand);
      sock = command.stream;
    }
    const client = await handshake(hopSpec(node, hop), options, sock, command?.failure).catch(
      (error: Error) => {
        throw new Error(`jump host ${hop.label}: ${error.message}`);
      },
    );
    client.once("close", letGo);
    return client;
  } catch (error) {
    letGo();
    throw error;
  }
}

/** Opens the way to `node`; errors are NodeErrors naming the hop that failed. */
export async function openRoute(node: NodeSpec, options: HandshakeOptions): Promise<OpenRoute> {
  const route = node.route;
  if (!route) return { release() {} };
  const last = route.hops.length - 1;
  if (last < 0) {
    const command = startProxyCommand(route.proxyCommand!);
    return { sock: command.stream, explainFailure: command.failure, release: command.stop };
  }
  let held: HeldHop | undefined;
  try {
    held = await holdHop(node, route, last, options);
    const sock = await forward(held.client, route.hops[last]!, node.host, node.port, node.connectTimeout);
    const hop = held;
    let released = false;
    return {
      sock,
      release() {
        if (released) return;
        released = true;
        sock.destroy();
        hop.release();
      },
    };
  } catch (error) {
    held?.release();
    throw new NodeError(node.name, (error as Error).message);
  }
}
