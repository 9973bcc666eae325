import type { Duplex, Readable } from "node:stream";
import type { PseudoTtyOptions } from "ssh2";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { type AgentStreams, startAgent } from "./agent-session.js";
import type { ConnectOptions, NodeConnection } from "./connection.js";

/**
 * What a command needs from a node: remote commands and an agent. Reached directly over a
 * connection of this process (DirectLink), or through the user's daemon, which holds the
 * connections and agents between commands (src/daemon/client.ts).
 */

/** A remote command's streams, as an SSH channel has them (ssh2's ClientChannel is one). */
export interface RemoteChannel extends Duplex {
  readonly stderr: Readable;
  setWindow(rows: number, cols: number, height: number, width: number): unknown;
  close(): unknown;
}

export interface NodeLink {
  readonly node: NodeSpec;
  /** Starts a remote command; `pty` asks for a terminal. Emits "exit" (code, signal) then "close". */
  channel(command: string, pty?: PseudoTtyOptions): Promise<RemoteChannel>;
  /** The worker agent's streams: a fresh agent, or one held between commands. */
  agent(): Promise<AgentStreams>;
  close(): void;
}

/** How a command reaches its nodes. */
export interface NodeLinker {
  link(node: NodeSpec, options: ConnectOptions): Promise<NodeLink>;
}

export class DirectLink implements NodeLink {
  constructor(readonly connection: NodeConnection) {}

  get node(): NodeSpec {
    return this.connection.node;
  }

  channel(command: string, pty?: PseudoTtyOptions): Promise<RemoteChannel> {
    return this.connection.channel(command, pty);
  }

  agent(): Promise<AgentStreams> {
    return startAgent(this.connection);
  }

  close(): void {
    this.connection.close();
  }
}

/** A connection of this process per node, closed with the link. */
export const directLinker: NodeLinker = {
  async link(node, options) {
    // ssh2 is loaded when a command connects itself: one going through the daemon never does.
    const { connect } = await import("./connection.js");
    return new DirectLink(await connect(node, options));
  },
};
