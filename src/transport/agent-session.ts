import { readFileSync } from "node:fs";
import type { ClientChannel } from "ssh2";
import { NodeError } from "../core/errors.js";
import { remotePath, shellQuote } from "../core/shell-quote.js";
import type { NodeSpec } from "../inventory/types.js";
import { pythonSourcePath } from "../python-source.js";
import type { NodeConnection } from "./connection.js";

// Small enough that progress moves visibly on a slow link, large enough to cost nothing.
const PROGRESS_SLICE = 256 * 1024;

/**
 * The worker agent (src/worker/agent.py) running on one node over one SSH channel, and the framing
 * of the requests and replies spoken with it (their contents: worker-client.ts). The agent stays up between requests, so watch mode pays
 * for one process start per node, not one per change.
 */

let agentSource: string | undefined;
export function agentCode(): string {
  agentSource ??= readFileSync(pythonSourcePath("worker/agent.py"), "utf8");
  return agentSource;
}

/**
 * The command that starts the agent: with the venv's python (so it knows the venv's site-packages),
 * else the node's python3. Paths are quoted; only a leading `~/` is left for the remote shell.
 */
export function agentCommand(node: NodeSpec): string {
  const venvPython = `${remotePath(node.venv)}/bin/python`;
  const code = shellQuote(agentCode());
  // The agent and the interpreters it starts are no workflow run: they pin no release (agent.py, SELECTOR).
  return `export SYNC_CLUSTER_NO_PIN=1; if [ -x ${venvPython} ]; then exec ${venvPython} -c ${code}; else exec python3 -c ${code}; fi`;
}

export interface AgentReply {
  ok: boolean;
  code?: string;
  message?: string;
  [key: string]: unknown;
}

/** The codes of the agent's refusals (agent.py, Refused and serve); "error" stands for any other. */
export type AgentErrorCode =
  | "bad-request"
  | "bad-path"
  | "bad-manifest"
  | "bad-archive"
  | "corrupt"
  | "corrupt-base"
  | "incomplete"
  | "locked"
  | "no-release"
  | "no-space"
  | "fix-failed"
  | "os-error"
  | "protocol"
  | "error";

const AGENT_ERROR_CODES: readonly AgentErrorCode[] = [
  "bad-request",
  "bad-path",
  "bad-manifest",
  "bad-archive",
  "corrupt",
  "corrupt-base",
  "incomplete",
  "locked",
  "no-release",
  "no-space",
  "fix-failed",
  "os-error",
  "protocol",
  "error",
];

function errorCodeOf(code: unknown): AgentErrorCode {
  return AGENT_ERROR_CODES.find((known) => known === code) ?? "error";
}

export class AgentError extends NodeError {
  constructor(
    node: string,
    readonly code: AgentErrorCode,
    message: string,
  ) {
    super(node, message);
  }
}

/** The byte streams to and from an agent: an SSH channel, or a local process in tests. */
export interface AgentStreams {
  stdin: { write(chunk: Buffer, written?: (error?: Error | null) => void): unknown; end(): unknown };
  stdout: NodeJS.EventEmitter;
  stderr: NodeJS.EventEmitter;
  /** Emits "close" when the agent is gone, "error" on transport failure. */
  lifecycle: NodeJS.EventEmitter;
  close(): void;
  /** Tells why the connection under the agent failed, when it knows (a direct SSH connection). */
  onConnectionFailure?(listener: (reason: Error) => void): void;
}

export function channelStreams(channel: ClientChannel): AgentStreams {
  return {
    stdin: channel,
    stdout: channel,
    stderr: channel.stderr,
    lifecycle: channel,
    close: () => channel.close(),
  };
}

/** Starts the agent on a node's connection; the daemon holds the streams, a session reads them. */
export async function startAgent(connection: NodeConnection): Promise<AgentStreams> {
  return {
    ...channelStreams(await connection.channel(agentCommand(connection.node))),
    onConnectionFailure: (listener) =>
      connection.onClose((reason) => {
        if (reason) listener(reason);
      }),
  };
}

export class AgentSession {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (r: AgentReply) => void; reject: (e: Error) => void }[] = [];
  private ended: Error | undefined;
  private stderr = "";

  constructor(
    readonly node: Pick<NodeSpec, "name">,
    private readonly streams: AgentStreams,
  ) {
    streams.stdout.on("data", (chunk: Buffer) => this.onData(chunk));
    streams.stderr.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
    });
    // The connection's own failure (a stalled network) says more than its channel closing.
    streams.onConnectionFailure?.((reason) => this.fail(reason));
    streams.lifecycle.on("close", () => this.fail(this.endedError()));
    streams.lifecycle.on("error", (e: Error) =>
      this.fail(new NodeError(node.name, `the agent's channel failed: ${e.message}`)),
    );
  }

  static async start(connection: NodeConnection): Promise<AgentSession> {
    return new AgentSession(connection.node, await startAgent(connection));
  }

  private endedError(): Error {
    const detail = this.stderr.trim().split("\n").slice(-3).join(" / ");
    return new NodeError(
      this.node.name,
      detail
        ? `the sync-cluster agent on the node stopped: ${detail}`
        : "the connection to the node's sync-cluster agent closed unexpectedly",
    );
  }

  private fail(error: Error): void {
    if (!this.ended) this.ended = error;
    for (const w of this.waiting.splice(0)) w.reject(error);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (this.buffer.length < 4 + length) break;
      const body = this.buffer.subarray(4, 4 + length).toString("utf8");
      this.buffer = this.buffer.subarray(4 + length);
      const waiter = this.waiting.shift();
      if (!waiter) continue;
      try {
        waiter.resolve(JSON.parse(body) as AgentReply);
      } catch {
        waiter.reject(new NodeError(this.node.name, "the agent sent a reply that is not JSON"));
      }
    }
  }

  /** Sends one request (and its payload) and waits for the reply; a refusal becomes an AgentError. */
  async request(
    message: Record<string, unknown>,
    payload?: Buffer,
    timeoutMs = 0,
    onPayloadSent?: (bytes: number) => void,
  ): Promise<AgentReply> {
    if (this.ended) throw this.ended;
    const body = Buffer.from(
      JSON.stringify(payload ? { ...message, payload: payload.length } : message),
      "utf8",
    );
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length, 0);
    const reply = new Promise<AgentReply>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.streams.stdin.write(header);
    this.streams.stdin.write(body);
    if (payload && payload.length > 0) {
      if (!onPayloadSent) this.streams.stdin.write(payload);
      else {
        // In slices, so the progress follows what the channel has taken, window by window.
        let sent = 0;
        for (let at = 0; at < payload.length; at += PROGRESS_SLICE) {
          const slice = payload.subarray(at, at + PROGRESS_SLICE);
          this.streams.stdin.write(slice, () => {
            sent += slice.length;
            onPayloadSent(sent);
          });
        }
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const answered =
      timeoutMs > 0
        ? Promise.race([
            reply,
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                const error = new NodeError(
                  this.node.name,
                  `the node did not answer within ${timeoutMs / 1000}s`,
                );
                this.fail(error);
                this.streams.close();
                reject(error);
              }, timeoutMs);
            }),
          ])
        : reply;
    try {
      const r = await answered;
      if (!r.ok)
        throw new AgentError(
          this.node.name,
          errorCodeOf(r.code),
          typeof r.message === "string" ? r.message : "the agent refused the request",
        );
      return r;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  get isOpen(): boolean {
    return this.ended === undefined;
  }

  close(): void {
    if (!this.ended) this.ended = new NodeError(this.node.name, "the session was closed");
    this.streams.stdin.end();
  }
}
