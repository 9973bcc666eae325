import type { NodeSpec } from "../inventory/inventory-types.js";

/**
 * What a held connection or agent stands for. Everything that decides how a node is reached goes
 * in the connection's key, so an edited inventory (another port, user, key or known_hosts file)
 * means a new connection, never a reused one; the agent's key adds the venv, whose python runs it.
 * The node's name and role do not change what is connected to, and the deploy directory is named
 * at each hello.
 */

export function connectionKey(node: NodeSpec): string {
  return JSON.stringify([
    node.host,
    node.port,
    node.user,
    node.identityFiles,
    node.knownHosts,
    node.acceptNewHostKeys,
    node.connectTimeout,
  ]);
}

export function agentKey(node: NodeSpec): string {
  return JSON.stringify([connectionKey(node), node.venv]);
}
