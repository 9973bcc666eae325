import type { ClientChannel } from "ssh2";
import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import {
  AnnouncementScanner,
  describePreamble,
  PREAMBLE_LIMIT,
  type PreambleSummary,
  summarizePreamble,
} from "../core/protocol/agent-announcement.js";
import { requestFrame } from "../core/protocol/agent-frames.js";
import { AGENT_ERROR_CODES } from "../core/protocol/worker-protocol.js";
import type { AgentErrorCode as DeclaredErrorCode } from "../core/protocol/worker-protocol-types.js";
import {
  agentCommand,
  agentSourceMessage,
  agentStartTimeoutMs,
  NO_PYTHON_MESSAGE,
  PROTOCOL_VERSION,
} from "./agent-bootstrap.js";
import type { NodeConnection } from "./connection.js";

// Small enough that progress moves visibly on a slow link, large enough to cost nothing.
const PROGRESS_SLICE = 256 * 1024;

/**
 * The largest reply frame believed. The largest real one is hello's manifest (withManifest): about
 * 150 bytes a file, so 64 MiB is some 400,000 files. A longer length is garbage in the stream (or a
 * broken agent), and buffering it would only fill the leader's memory.
 */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024;

/**
 * The worker agent (src/worker/sync_cluster_agent/) running on one node over one SSH channel, and
 * the framing of the requests and replies spoken with it (their contents: worker-client.ts). The
 * agent stays up between requests, so watch mode pays for one process start per node, not one per
 * change. It is started through a bootstrap
 * (agent-bootstrap.ts) and announces itself before its first frame (core/protocol/agent-announcement.ts).
 */

/** The bytes from the agent cannot be followed: not its protocol, another version, a frame too long. */
export class ProtocolError extends NodeError {}

export interface AgentReply {
  ok: boolean;
  code?: string;
  message?: string;
  [key: string]: unknown;
}

/**
 * The codes of the agent's refusals, as the protocol declares them (core/protocol/worker-protocol.json);
 * "error" stands for a code this sync-cluster does not know.
 */
export type AgentErrorCode = DeclaredErrorCode | "error";

export function errorCodeOf(code: unknown): AgentErrorCode {
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
  onConnectionFailure?(listener: (reason: Error) => void): () => void;
  /**
   * Set when the agent has announced itself already (startAgent ran the bootstrap): the streams
   * carry frames only, with what the login shell printed before the announcement, if anything.
   */
  announced?: { loginOutput?: PreambleSummary | undefined };
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

export interface AgentSessionOptions {
  /**
   * How long the agent may take to announce itself, from the start of the command
   * (agentStartTimeoutMs over SSH): a login shell that hangs, or a node without python, fails within it.
   * 0 waits as long as the requests do.
   */
  startTimeoutMs?: number;
  /** The agent's source the bootstrap is given (default: this sync-cluster's; a benchmark compares another). */
  source?: Buffer;
}

/**
 * Starts the agent on a node's connection through the bootstrap and waits until it has announced
 * itself: the streams handed on carry frames only, whoever reads them next (a session of this
 * process, or the daemon, which lends them to one command after another).
 */
export async function startAgent(connection: NodeConnection): Promise<AgentStreams> {
  const streams: AgentStreams = {
    ...channelStreams(await connection.channel(agentCommand(connection.node))),
    onConnectionFailure: (listener) =>
      connection.onClose((reason) => {
        if (reason) listener(reason);
      }),
  };
  const bootstrap = new AgentSession(connection.node, streams, {
    startTimeoutMs: agentStartTimeoutMs(connection.node),
  });
  await bootstrap.started;
  return bootstrap.detach();
}

export class AgentSession {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (r: AgentReply) => void; reject: (e: Error) => void }[] = [];
  private ended: Error | undefined;
  private stderr = "";
  // Until the agent has announced itself, stdout is the login shell's.
  private scanner: AnnouncementScanner | undefined = new AnnouncementScanner();
  private startTimer: NodeJS.Timeout | undefined;
  private announcedResolve!: () => void;
  private announcedReject!: (e: Error) => void;
  /** What the user's login shell printed on stdout before the agent started, when it printed anything. */
  loginOutput: PreambleSummary | undefined;
  /** Settles once the agent has announced itself (or has failed to). */
  readonly started: Promise<void>;

  constructor(
    readonly node: Pick<NodeSpec, "name">,
    private readonly streams: AgentStreams,
    options: AgentSessionOptions = {},
  ) {
    this.started = new Promise<void>((resolve, reject) => {
      this.announcedResolve = resolve;
      this.announcedReject = reject;
    });
    this.started.catch(() => {}); // also reported to every request waiting
    streams.stdout.on("data", this.onStdout);
    streams.stderr.on("data", this.onStderr);
    // The connection's own failure (a stalled network) says more than its channel closing.
    this.stopHearingConnection = streams.onConnectionFailure?.((reason) => this.fail(reason));
    streams.lifecycle.on("close", this.onClose);
    streams.lifecycle.on("error", this.onError);
    if (streams.announced) {
      this.scanner = undefined;
      this.loginOutput = streams.announced.loginOutput;
      this.announcedResolve();
      return;
    }
    if (options.startTimeoutMs && options.startTimeoutMs > 0) {
      const seconds = options.startTimeoutMs / 1000;
      this.startTimer = setTimeout(() => {
        this.failAndClose(this.notStartedError(`no sync-cluster agent started within ${seconds}s`));
      }, options.startTimeoutMs);
    }
    // The bootstrap reads the source first; the requests follow it on the same stream.
    streams.stdin.write(agentSourceMessage(options.source));
  }

  private stopHearingConnection: (() => void) | undefined;
  private readonly onStdout = (chunk: Buffer) => this.onData(chunk);
  private readonly onStderr = (chunk: Buffer) => {
    this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4000);
  };
  private readonly onClose = () => this.fail(this.endedError());
  private readonly onError = (e: Error) =>
    this.fail(new NodeError(this.node.name, `the agent's channel failed: ${e.message}`));

  /**
   * Stops reading the streams and hands them on, announced, to the next reader. Only between
   * requests (startAgent calls it right after the announcement).
   */
  detach(): AgentStreams {
    // The next reader hears the connection's failure itself: a listener per reader would pile up
    // on a connection the daemon holds for hours.
    this.stopHearingConnection?.();
    this.streams.stdout.removeListener("data", this.onStdout);
    this.streams.stderr.removeListener("data", this.onStderr);
    this.streams.lifecycle.removeListener("close", this.onClose);
    this.streams.lifecycle.removeListener("error", this.onError);
    this.ended = new NodeError(this.node.name, "the agent's streams were handed on");
    return { ...this.streams, announced: { loginOutput: this.loginOutput } };
  }

  /** Starts the agent on a node through the bootstrap and waits until it has announced itself. */
  static async start(connection: NodeConnection): Promise<AgentSession> {
    return new AgentSession(connection.node, await startAgent(connection));
  }

  /** The last lines the node wrote on stderr, for an error message. */
  private stderrTail(): string {
    return this.stderr.trim().split("\n").slice(-3).join(" / ");
  }

  private endedError(): Error {
    if (this.scanner) {
      const noPython = this.stderr.includes(NO_PYTHON_MESSAGE);
      return this.notStartedError(
        noPython ? "the node has no python for the sync-cluster agent" : "no sync-cluster agent started",
      );
    }
    const detail = this.stderrTail();
    return new NodeError(
      this.node.name,
      detail
        ? `the sync-cluster agent on the node stopped: ${detail}`
        : "the connection to the node's sync-cluster agent closed unexpectedly",
    );
  }

  /** Why the agent never announced itself, with what the login shell said on stdout and stderr. */
  private notStartedError(what: string): Error {
    const printed = this.scanner?.received ?? Buffer.alloc(0);
    const shell =
      printed.length > 0
        ? `the login shell on ${this.node.name} ${describePreamble(summarizePreamble(printed))} and ${what}`
        : `on ${this.node.name}, ${what}`;
    const detail = this.stderrTail();
    const hint = this.stderr.includes(NO_PYTHON_MESSAGE)
      ? "install python3 there, and create the venv (`sync-cluster check --fix` makes it)"
      : "check that `ssh NODE true` prints nothing and returns at once: the login files (~/.bashrc, ~/.profile) must not wait for input or run a program that never ends";
    return new NodeError(this.node.name, `${shell}${detail ? `: ${detail}` : ""}; ${hint}`);
  }

  private fail(error: Error): void {
    if (!this.ended) this.ended = error;
    if (this.startTimer) clearTimeout(this.startTimer);
    this.announcedReject(this.ended);
    for (const w of this.waiting.splice(0)) w.reject(this.ended);
  }

  /** For a stream that cannot be trusted any more: nothing more is read from it. */
  private failAndClose(error: Error): void {
    this.fail(error);
    this.buffer = Buffer.alloc(0);
    this.streams.close();
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    if (this.scanner) {
      const found = this.scanner.push(chunk);
      switch (found.kind) {
        case "waiting":
          return;
        case "overflow":
          this.failAndClose(
            this.notStartedError(
              `kept on printing: over ${PREAMBLE_LIMIT / (1024 * 1024)} MiB before the sync-cluster agent started`,
            ),
          );
          return;
        case "garbled":
          this.failAndClose(
            new ProtocolError(
              this.node.name,
              "the sync-cluster agent's announcement is garbled: the stream from the node is not the agent's",
            ),
          );
          return;
        case "announced":
          if (found.version !== PROTOCOL_VERSION) {
            this.failAndClose(
              new ProtocolError(
                this.node.name,
                `the agent announced protocol ${found.version}, this sync-cluster speaks ${PROTOCOL_VERSION}: the agent is sent by this sync-cluster, so its TypeScript and its Python agent come from different versions; reinstall sync-cluster`,
              ),
            );
            return;
          }
          this.scanner = undefined;
          if (this.startTimer) clearTimeout(this.startTimer);
          if (found.preamble.length > 0) this.loginOutput = summarizePreamble(found.preamble);
          this.announcedResolve();
          if (found.rest.length === 0) return;
          chunk = found.rest;
      }
    }
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (length > MAX_REPLY_BYTES) {
        this.failAndClose(
          new ProtocolError(
            this.node.name,
            `the agent's reply says it is ${length} bytes long, over the limit of ${MAX_REPLY_BYTES / (1024 * 1024)} MiB: the stream from the node is corrupt (bytes starting ${JSON.stringify(this.buffer.subarray(0, 16).toString("latin1"))}); is something else writing to the agent's output?`,
          ),
        );
        return;
      }
      if (this.buffer.length < 4 + length) break;
      const body = this.buffer.subarray(4, 4 + length).toString("utf8");
      this.buffer = this.buffer.subarray(4 + length);
      let reply: AgentReply;
      try {
        reply = JSON.parse(body) as AgentReply;
      } catch {
        this.failAndClose(
          new ProtocolError(
            this.node.name,
            `the agent sent a reply that is not JSON (starting ${JSON.stringify(body.slice(0, 40))}): the stream from the node is corrupt`,
          ),
        );
        return;
      }
      this.waiting.shift()?.resolve(reply);
    }
  }

  /** Sends one request (and its payload) and waits for the reply; a refusal becomes an AgentError. */
  async request(
    message: { readonly op: string; readonly [field: string]: unknown },
    payload?: Buffer,
    timeoutMs = 0,
    onPayloadSent?: (bytes: number) => void,
  ): Promise<AgentReply> {
    if (this.ended) throw this.ended;
    const frame = requestFrame(message, payload?.length);
    const reply = new Promise<AgentReply>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.streams.stdin.write(frame);
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
