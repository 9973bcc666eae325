/**
 * Follows the agent's conversation (agent-session.ts, framing.py Server) from the outside, byte by
 * byte, without taking part: the daemon lends one held agent to one client at a time and must
 * know, when that client goes, whether the agent stands between two requests (it can serve the
 * next client) or in the middle of one (it must be discarded, never reused half way).
 *
 * Requests: 4-byte big-endian length, a JSON object, then `payload` raw bytes when it names a
 * count. Replies: 4-byte length and a JSON object, one per request.
 */

import { holdsLockAfter, leavesAgentStale } from "./worker-protocol.js";

export type AgentRequestInfo = { op: string; payload: number };

/** A request's frame: its length, then its JSON, naming the size of the payload that follows it. */
export function requestFrame(request: { readonly op: string }, payloadBytes?: number): Buffer {
  const body = Buffer.from(
    JSON.stringify(payloadBytes === undefined ? request : { ...request, payload: payloadBytes }),
    "utf8",
  );
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** Reads frames off one direction of the stream; `onFrame` gets each body whole. */
class FrameReader {
  private header = Buffer.alloc(0);
  private body: Buffer[] = [];
  private bodyLeft = -1;
  private payloadLeft = 0;

  constructor(
    private readonly onFrame: (body: Buffer) => number,
    private readonly maxFrame: number,
  ) {}

  /** True between frames: no header, body or payload is partly read. */
  get atBoundary(): boolean {
    return this.header.length === 0 && this.bodyLeft < 0 && this.payloadLeft === 0;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, chunk.length - at);
        this.payloadLeft -= take;
        at += take;
        continue;
      }
      if (this.bodyLeft < 0) {
        const take = Math.min(4 - this.header.length, chunk.length - at);
        this.header = Buffer.concat([this.header, chunk.subarray(at, at + take)]);
        at += take;
        if (this.header.length < 4) continue;
        this.bodyLeft = this.header.readUInt32BE(0);
        this.header = Buffer.alloc(0);
        if (this.bodyLeft > this.maxFrame)
          throw new Error(`a frame of ${this.bodyLeft} bytes is over the limit`);
        this.body = [];
      }
      const take = Math.min(this.bodyLeft, chunk.length - at);
      this.body.push(chunk.subarray(at, at + take));
      this.bodyLeft -= take;
      at += take;
      if (this.bodyLeft === 0) {
        const body = Buffer.concat(this.body);
        this.body = [];
        this.bodyLeft = -1;
        this.payloadLeft = this.onFrame(body);
      }
    }
  }
}

// The agent's own limit (framing.py Server.MAX_FRAME): a longer frame ends its session too.
const MAX_FRAME = 256 * 1024 * 1024;

function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export class AgentFrameFollower {
  private readonly requests: FrameReader;
  private readonly replies: FrameReader;
  /** Requests sent whose reply has not come back yet, oldest first. */
  private readonly unanswered: AgentRequestInfo[] = [];
  private lostTrack = false;
  private holding = false;
  private reusable = true;

  constructor() {
    this.requests = new FrameReader((body) => this.onRequest(body), MAX_FRAME);
    this.replies = new FrameReader((body) => this.onReply(body), MAX_FRAME);
  }

  private onRequest(body: Buffer): number {
    const request = parseObject(body);
    const op = typeof request?.op === "string" ? request.op : "";
    const payload = request?.payload;
    // The agent cannot follow a frame like this either: it ends the session (framing.py, Lost).
    if (payload !== undefined && (typeof payload !== "number" || !Number.isInteger(payload) || payload < 0)) {
      this.lostTrack = true;
      return 0;
    }
    // `fix` may create or change the venv the agent was started from (the declaration's staleAgent).
    if (leavesAgentStale(op)) this.reusable = false;
    this.unanswered.push({ op, payload: payload ?? 0 });
    return payload ?? 0;
  }

  private onReply(body: Buffer): number {
    const request = this.unanswered.shift();
    if (!request) {
      this.lostTrack = true;
      return 0;
    }
    // A prepare that answered "ready" holds the worker's lock and a staging directory until the
    // upload or abort that follows (the declaration's holdsLockWhen); any other reply leaves the
    // agent idle (operations.py, Agent.reset).
    this.holding = holdsLockAfter(request.op, parseObject(body));
    return 0;
  }

  /** Bytes the client sent toward the agent. */
  fromClient(chunk: Buffer): void {
    if (this.lostTrack) return;
    try {
      this.requests.push(chunk);
    } catch {
      this.lostTrack = true;
    }
  }

  /** Bytes the agent sent toward the client. */
  fromAgent(chunk: Buffer): void {
    if (this.lostTrack) return;
    try {
      this.replies.push(chunk);
    } catch {
      this.lostTrack = true;
    }
  }

  /** Every request whole and answered, nothing in flight either way. */
  get settled(): boolean {
    return (
      !this.lostTrack && this.unanswered.length === 0 && this.requests.atBoundary && this.replies.atBoundary
    );
  }

  /** Between a prepare that answered "ready" and its upload or abort: the worker's lock is held. */
  get holdsLock(): boolean {
    return this.holding;
  }

  /** What the daemon does with the agent once its client has gone. */
  get verdict(): "reuse" | "abort-then-reuse" | "discard" {
    if (!this.settled || !this.reusable) return "discard";
    return this.holding ? "abort-then-reuse" : "reuse";
  }
}
