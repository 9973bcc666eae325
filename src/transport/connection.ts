import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import ssh2, { type ClientChannel, type ConnectConfig, type PseudoTtyOptions } from "ssh2";
import { NodeError } from "../core/errors.js";
import {
  fingerprintSha256,
  type KnownHostEntry,
  knownHostsLine,
  parseKnownHosts,
  verifyHostKey,
} from "../core/known-hosts.js";
import type { NodeSpec } from "../inventory/types.js";
import { LoginPlan } from "./authentication.js";

/**
 * One SSH connection to one node: host key checked against known_hosts before anything is sent,
 * keys from ssh-agent or identity files, keepalives, and errors that say what to do.
 */

/** Keepalives a node may leave unanswered before its connection is declared dead. */
const KEEPALIVE_COUNT_MAX = 3;

export interface ConnectOptions {
  /** Path of the ssh-agent socket; default $SSH_AUTH_SOCK. */
  agentSocket?: string | undefined;
  /** Accept and record unknown host keys (--accept-new), in addition to the node's own setting. */
  acceptNew?: boolean;
  /** Keepalive interval in ms; 0 disables. */
  keepaliveMs?: number;
}

export interface ExecResult {
  code: number;
  signal?: string | undefined;
  stdout: Buffer;
  stderr: Buffer;
}

export class NodeConnection {
  private closed = false;
  private readonly closeListeners: ((reason: Error | undefined) => void)[] = [];

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

  onClose(listener: (reason: Error | undefined) => void): void {
    this.closeListeners.push(listener);
  }

  /** Starts a remote command and returns its channel (stdin/stdout/stderr streams); `pty` asks for a terminal. */
  channel(command: string, pty?: PseudoTtyOptions): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, pty ? { pty } : {}, (error, stream) => {
        if (error) reject(new NodeError(this.node.name, `could not start a command: ${error.message}`));
        else resolve(stream);
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

async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** The key type written inside an SSH public key blob (its first string). */
function keyTypeOf(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString("latin1");
}

function describeConnectError(node: NodeSpec, error: Error & { code?: string; level?: string }): string {
  const where = `${node.host}:${node.port}`;
  switch (error.code) {
    case "ECONNREFUSED":
      return `connection refused by ${where}: is sshd running there, and is the port right?`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `the host name ${node.host} could not be resolved (DNS): check the inventory's host or ~/.ssh/config`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${where} is unreachable from here: check the network or a VPN`;
    case "ECONNRESET":
      return `the connection to ${where} was reset`;
    case "ETIMEDOUT":
      return `connecting to ${where} timed out after ${node.connectTimeout}s`;
  }
  if (error.level === "client-timeout" || /Timed out while waiting for handshake/.test(error.message)) {
    return `no SSH handshake from ${where} within ${node.connectTimeout}s`;
  }
  return `cannot connect to ${where}: ${error.message}`;
}

export async function connect(node: NodeSpec, options: ConnectOptions = {}): Promise<NodeConnection> {
  const entries = await readKnownHosts(node.knownHosts);
  const login = await LoginPlan.for(node, options.agentSocket ?? process.env.SSH_AUTH_SOCK);
  const acceptNew = node.acceptNewHostKeys || (options.acceptNew ?? false);
  let hostKeyProblem: string | undefined;
  let recordKey: string | undefined;

  const config: ConnectConfig = {
    host: node.host,
    port: node.port,
    username: node.user,
    readyTimeout: node.connectTimeout * 1000,
    // A node silent for three intervals is dead; a short connectTimeout means the user wants to know soon.
    keepaliveInterval: options.keepaliveMs ?? Math.min(15_000, node.connectTimeout * 1000),
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    hostVerifier: (key: Buffer) => {
      const type = keyTypeOf(key);
      const base64 = key.toString("base64");
      const verdict = verifyHostKey(entries, node.host, node.port, type, base64);
      switch (verdict.kind) {
        case "match":
          return true;
        case "revoked":
          hostKeyProblem = `the host key of ${node.host}:${node.port} (${fingerprintSha256(base64)}) is marked @revoked in ${node.knownHosts} line ${verdict.line}`;
          return false;
        case "mismatch":
          hostKeyProblem =
            `THE HOST KEY OF ${node.host}:${node.port} HAS CHANGED: it now presents ${type} ${fingerprintSha256(base64)}, ` +
            `which differs from ${node.knownHosts} line ${verdict.lines.join(", ")}. Someone could be intercepting the connection, or the node was reinstalled. ` +
            `If you know why it changed, remove the old entry (ssh-keygen -R '${node.port === 22 ? node.host : `[${node.host}]:${node.port}`}' -f ${node.knownHosts}) and connect again.`;
          return false;
        case "unknown":
          if (acceptNew) {
            recordKey = knownHostsLine(node.host, node.port, type, base64);
            return true;
          }
          hostKeyProblem =
            `the host key of ${node.host}:${node.port} is not in ${node.knownHosts} (${type} ${fingerprintSha256(base64)}). ` +
            `Verify the fingerprint, then add it (ssh-keyscan -p ${node.port} ${node.host} >> ${node.knownHosts}), set acceptNewHostKeys: true for the node, or pass --accept-new.`;
          return false;
      }
    },
  };
  config.authHandler = login.next as ConnectConfig["authHandler"];

  const client = new ssh2.Client();
  // ssh2 may emit several errors for one broken handshake (ECONNRESET, then "Connection lost
  // before handshake"): the first decides, the others must still find a listener, or they
  // would kill the process and every other node's work with it.
  client.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    const fail = (error: Error & { code?: string; level?: string }) => {
      client.removeAllListeners("ready");
      client.end();
      const message =
        hostKeyProblem ??
        (error.level === "client-authentication"
          ? login.refusal(`${node.host}:${node.port}`)
          : describeConnectError(node, error));
      reject(new NodeError(node.name, message));
    };
    client.once("ready", () => {
      client.removeListener("error", fail);
      resolve();
    });
    client.once("error", fail);
    if (login.empty) {
      reject(login.emptyError());
      return;
    }
    client.connect(config);
    // Requests are small and answered at once: Nagle's algorithm would hold the second write of
    // each (and of the handshake) until the worker's delayed ACK, 40 ms on Linux.
    client.setNoDelay(true);
  });
  if (recordKey) {
    await mkdir(dirname(node.knownHosts), { recursive: true, mode: 0o700 });
    await appendFile(node.knownHosts, `${recordKey}\n`, { mode: 0o600 });
  }
  // Errors after the handshake are reported per operation (the listener above keeps the process alive).
  return new NodeConnection(node, client, config.keepaliveInterval ?? 0);
}
