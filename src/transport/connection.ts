import type ssh2 from "ssh2";
import type { ClientChannel, PseudoTtyOptions } from "ssh2";
import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { openRoute } from "./jump-route.js";
import { keepExitForLateListeners } from "./late-exit.js";
import {
  type HandshakeOptions,
  handshake,
  KEEPALIVE_COUNT_MAX,
  keepaliveIntervalMs,
} from "./ssh-handshake.js";

/**
 * One SSH connection to one node: directly, or through its jump hosts or ProxyCommand
 * (jump-route.ts); host key checked against known_hosts before anything is sent, keys from
 * ssh-agent or identity files, keepalives, and errors that say what to do (ssh-handshake.ts).
 */

export type ConnectOptions = HandshakeOptions;

export interface ExecResult {
  code: number;
  signal?: string | undefined;
  stdout: Buffer;
  stderr: Buffer;
}

export class NodeConnection {
  private closed = false;
  private readonly closeListeners = new Set<(reason: Error | undefined) => void>();

  constructor(
    readonly node: NodeSpec,
    private readonly client: ssh2.Client,
    /** The keepalive interval in ms (0: none), to say how long a stalled node was waited for. */
    private readonly keepaliveMs = 0,
  ) {
    client.on("close", () => {
      this.closed = true;
      for (const l of this.closeListeners) l(undefined);
    });
    client.on("error", (error: Error & { level?: string }) => {
      const lost = new NodeError(node.name, this.describeLoss(error));
      for (const l of this.closeListeners) l(lost);
    });
  }

  private describeLoss(error: Error & { level?: string }): string {
    if (error.level === "client-timeout" || /keepalive/i.test(error.message)) {
      const waited = this.keepaliveMs > 0 ? ` for ${(this.keepaliveMs * KEEPALIVE_COUNT_MAX) / 1000}s` : "";
      return `the node stopped answering (no reply to SSH keepalives${waited}): the network stalled, or the node is suspended or overloaded`;
    }
    return `the connection to the node was lost: ${error.message}`;
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /** Calls `listener` when the connection fails or closes; returns what stops that. */
  onClose(listener: (reason: Error | undefined) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /** Starts a remote command and returns its channel (stdin/stdout/stderr streams); `pty` asks for a terminal. */
  channel(command: string, pty?: PseudoTtyOptions): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, pty ? { pty } : {}, (error, stream) => {
        if (error) {
          reject(new NodeError(this.node.name, `could not start a command: ${error.message}`));
          return;
        }
        keepExitForLateListeners(stream);
        resolve(stream);
      });
    });
  }

  /** Runs a remote command to completion, collecting its output. */
  async exec(
    command: string,
    options: { stdin?: Buffer | string; timeoutMs?: number } = {},
  ): Promise<ExecResult> {
    const stream = await this.channel(command);
    return new Promise((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let code = -1;
      let signal: string | undefined;
      const timer =
        options.timeoutMs !== undefined
          ? setTimeout(() => {
              stream.close();
              reject(
                new NodeError(
                  this.node.name,
                  `the command did not finish within ${options.timeoutMs! / 1000}s`,
                ),
              );
            }, options.timeoutMs)
          : undefined;
      stream.on("data", (d: Buffer) => stdout.push(d));
      stream.stderr.on("data", (d: Buffer) => stderr.push(d));
      stream.on("exit", (c: number | null, s?: string) => {
        code = c ?? -1;
        signal = s;
      });
      stream.on("close", () => {
        if (timer) clearTimeout(timer);
        resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });
      });
      stream.on("error", (e: Error) => {
        if (timer) clearTimeout(timer);
        reject(new NodeError(this.node.name, e.message));
      });
      if (options.stdin !== undefined) stream.end(options.stdin);
      else stream.end();
    });
  }

  /**
   * Whether the node still answers over this connection, within `timeoutMs`. Asks the server to
   * stop a port forwarding we never set up: a request with no effect that any live server answers
   * (with a refusal), with no process started on the node.
   */
  probe(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      try {
        this.client.unforwardIn("127.0.0.1", 1, () => {
          clearTimeout(timer);
          resolve(!this.closed);
        });
      } catch {
        clearTimeout(timer);
        resolve(false);
      }
    });
  }

  close(): void {
    if (!this.closed) this.client.end();
    this.closed = true;
  }
}

export async function connect(node: NodeSpec, options: ConnectOptions = {}): Promise<NodeConnection> {
  const route = await openRoute(node, options);
  let client: ssh2.Client;
  try {
    client = await handshake(node, options, route.sock, route.explainFailure);
  } catch (error) {
    route.release();
    throw error;
  }
  // Closing the node's connection lets go of its hops (the last node through them closes them).
  client.once("close", () => route.release());
  return new NodeConnection(node, client, keepaliveIntervalMs(node, options));
}
