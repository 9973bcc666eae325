import { statSync } from "node:fs";
import { needsProbe } from "../core/daemon/daemon-policy.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { agentKey } from "../core/ssh/node-key.js";
import { type AgentStreams, startAgent } from "../transport/agent-session.js";
import { connect, type NodeConnection } from "../transport/connection.js";
import type { HeldNodeStatus } from "./protocol.js";

/**
 * One node's connection as the daemon holds it, and the agents started over it that wait for the
 * next command. A connection is handed out only when it is open, its known_hosts file is as it
 * was when the host key was checked, and (after a quiet while or a suspend) it answered a probe;
 * otherwise it is dialed again, with the host key checked as for any connection.
 */

// A live node answers a probe in milliseconds; a few seconds allows for a loaded one.
const PROBE_TIMEOUT_MS = 3_000;
// Agents beyond this many per node are stopped when returned: more are only held for a burst.
const MAX_IDLE_AGENTS = 2;

export interface IdleAgent {
  streams: AgentStreams;
  key: string;
  /** Stops listening for an idle agent's death (it is lent out). */
  detach(): void;
}

function knownHostsStamp(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "absent";
  }
}

export class HeldNode {
  private connection: NodeConnection | undefined;
  private dialing: Promise<{ connection: NodeConnection; dialed: boolean }> | undefined;
  private stamp = "";
  private lastAliveMs = 0;
  private slept = false;
  private readonly idle: IdleAgent[] = [];
  readonly names = new Set<string>();
  connectedAt: Date | undefined;
  lastUsedAt: Date | undefined;
  lent = 0;
  dials = 0;

  constructor(
    private node: NodeSpec,
    private readonly now: () => number,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** The machine slept: every connection must prove itself before it is used again. */
  noteSleep(): void {
    this.slept = true;
  }

  noteAlive(): void {
    this.lastAliveMs = this.now();
    this.slept = false;
    this.lastUsedAt = new Date();
  }

  /** An open connection, dialed when there is none or the one held cannot be trusted. */
  async open(
    node: NodeSpec,
    options: { acceptNew: boolean; agentSocket: string | undefined },
  ): Promise<{ connection: NodeConnection; dialed: boolean }> {
    this.node = node;
    this.names.add(node.name);
    this.lastUsedAt = new Date();
    if (this.dialing) return this.dialing;
    const held = this.connection;
    if (held?.isOpen && this.stamp === knownHostsStamp(node.knownHosts)) {
      if (!needsProbe({ lastAliveMs: this.lastAliveMs, nowMs: this.now(), sleptSinceAlive: this.slept }))
        return { connection: held, dialed: false };
      if (await held.probe(PROBE_TIMEOUT_MS)) {
        this.noteAlive();
        return { connection: held, dialed: false };
      }
      this.log(
        `${node.name}: the held connection did not answer a probe within ${PROBE_TIMEOUT_MS / 1000}s: dialing again`,
      );
    } else if (held?.isOpen) {
      this.log(`${node.name}: ${node.knownHosts} changed since the host key was checked: dialing again`);
    }
    this.dropConnection();
    this.dialing = this.dial(options).finally(() => {
      this.dialing = undefined;
    });
    return this.dialing;
  }

  private async dial(options: {
    acceptNew: boolean;
    agentSocket: string | undefined;
  }): Promise<{ connection: NodeConnection; dialed: boolean }> {
    const stamp = knownHostsStamp(this.node.knownHosts);
    this.dials += 1;
    const connection = await connect(this.node, {
      acceptNew: options.acceptNew,
      agentSocket: options.agentSocket,
    });
    // --accept-new may just have written the file: stamped as it is now that the key is known.
    this.stamp = options.acceptNew ? knownHostsStamp(this.node.knownHosts) : stamp;
    this.connection = connection;
    this.connectedAt = new Date();
    this.noteAlive();
    connection.onClose(() => {
      if (this.connection === connection) this.dropConnection();
    });
    return { connection, dialed: true };
  }

  /** An agent for the node's venv: one that waits, else a new one over the connection. */
  async agent(connection: NodeConnection): Promise<{ streams: AgentStreams; reused: boolean }> {
    const key = agentKey(this.node);
    const at = this.idle.findIndex((a) => a.key === key);
    if (at >= 0) {
      const [held] = this.idle.splice(at, 1);
      held!.detach();
      return { streams: held!.streams, reused: true };
    }
    return { streams: await startAgent(connection), reused: false };
  }

  /** Keeps an agent whose conversation ended between two requests, for the next command. */
  keep(streams: AgentStreams, node: NodeSpec): void {
    if (!this.connection?.isOpen || this.idle.length >= MAX_IDLE_AGENTS) {
      streams.close();
      return;
    }
    const onGone = () => {
      const i = this.idle.indexOf(entry);
      if (i >= 0) this.idle.splice(i, 1);
    };
    // An idle agent says nothing: anything it writes means it is not the agent we left.
    const onData = () => {
      onGone();
      streams.close();
    };
    const entry: IdleAgent = {
      streams,
      key: agentKey(node),
      detach: () => {
        streams.lifecycle.off("close", onGone);
        streams.stdout.off("data", onData);
      },
    };
    streams.lifecycle.on("close", onGone);
    streams.stdout.on("data", onData);
    this.idle.push(entry);
  }

  /** The connection failed at its first use after being handed out: the next open dials. */
  forget(connection: NodeConnection): void {
    if (this.connection === connection) this.dropConnection();
  }

  get hasConnection(): boolean {
    return this.connection?.isOpen ?? false;
  }

  get busy(): boolean {
    return this.lent > 0 || this.dialing !== undefined;
  }

  private dropConnection(): void {
    for (const a of this.idle.splice(0)) {
      a.detach();
      a.streams.close();
    }
    this.connection?.close();
    this.connection = undefined;
    this.connectedAt = undefined;
  }

  close(): void {
    this.dropConnection();
  }

  status(): HeldNodeStatus {
    return {
      host: this.node.host,
      port: this.node.port,
      user: this.node.user,
      names: [...this.names],
      connectedAt: this.hasConnection && this.connectedAt ? this.connectedAt.toISOString() : null,
      lastUsedAt: this.lastUsedAt?.toISOString() ?? null,
      agentsHeld: this.idle.length,
      agentsLent: this.lent,
      dials: this.dials,
    };
  }
}
