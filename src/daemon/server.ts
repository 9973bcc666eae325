import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { DEFAULT_IDLE_SECONDS, idleExpired, sleptBetween } from "../core/daemon/daemon-policy.js";
import { encodeFrame, encodeJsonFrame, Frame, FrameDecoder } from "../core/daemon/stream-mux.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { AgentFrameFollower, requestFrame } from "../core/protocol/agent-frames.js";
import type { AbortRequest } from "../core/protocol/worker-protocol-types.js";
import { connectionKey } from "../core/ssh/node-key.js";
import type { AgentStreams } from "../transport/agent-session.js";
import { passphraseKeys } from "../transport/authentication.js";
import { HeldNode } from "./held-node.js";
import { type DaemonPlace, makePrivateDir } from "./place.js";
import {
  type DaemonAnswer,
  type DaemonRequest,
  type DaemonStatus,
  parseDaemonRequest,
  type ResolveRequest,
} from "./protocol.js";
import { WarmResolutions } from "./warm-resolutions.js";

/**
 * The user's daemon: holds one authenticated connection per node and the agents started over
 * them, and serves clients on a unix socket in a private directory. Each client socket carries
 * one stream (a remote command or a lent agent) or one answer (a project's resolution, kept warm
 * by warm-resolutions.ts); the daemon exits after its idle period.
 */

const TICK_MS = 1_000;
// Bytes toward an agent not yet taken by its channel before the client's socket is paused.
const HIGH_WATER = 4 * 1024 * 1024;
// How long an agent left holding the worker's lock gets to answer the abort that releases it.
const ABORT_TIMEOUT_MS = 30_000;

export class DaemonAlreadyRunning extends Error {}

export interface DaemonOptions {
  place: DaemonPlace;
  build: string;
  idleSeconds?: number;
  log?: (line: string) => void;
}

export class Daemon {
  private server: Server | undefined;
  private readonly held = new Map<string, HeldNode>();
  private readonly warm = new WarmResolutions((line) => this.log(line));
  private readonly sockets = new Set<Socket>();
  private openStreams = 0;
  private lastActivity = performance.now();
  private idleSeconds: number;
  private readonly startedAt = new Date();
  private ticker: NodeJS.Timeout | undefined;
  private lastTick = { wall: Date.now(), mono: performance.now() };
  private stopping: Promise<void> | undefined;
  private resolveStopped: () => void = () => {};
  readonly stopped = new Promise<void>((resolve) => {
    this.resolveStopped = resolve;
  });

  constructor(private readonly options: DaemonOptions) {
    this.idleSeconds = options.idleSeconds ?? DEFAULT_IDLE_SECONDS;
  }

  private log(line: string): void {
    this.options.log?.(`${new Date().toISOString()} ${line}`);
  }

  /** Takes the lock, checks the directory and listens; throws DaemonAlreadyRunning or a problem in words. */
  async start(): Promise<void> {
    const { place } = this.options;
    const problem = makePrivateDir(place.dir);
    if (problem) throw new Error(`the daemon will not start: ${problem}`);
    await this.takeLock();
    try {
      unlinkSync(place.socket);
    } catch {
      // No socket left by an earlier daemon.
    }
    const server = createServer((socket) => this.accept(socket));
    // The socket is created 0600: the directory keeps others out, the mode says so twice.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(place.socket, () => {
          server.off("error", reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    this.server = server;
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.log(`listening on ${place.socket} (pid ${process.pid}, idle ${this.idleSeconds}s)`);
  }

  /** The PID lock: created exclusively; one left by a daemon that died is taken over. */
  private async takeLock(): Promise<void> {
    const { lock, socket } = this.options.place;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = openSync(lock, "wx", 0o600);
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const pid = Number.parseInt(readFileSync(lock, "utf8"), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && (alive(pid) || (await answers(socket))))
        throw new DaemonAlreadyRunning(`a daemon already runs (pid ${pid})`);
      unlinkSync(lock);
    }
    throw new Error(`cannot take the daemon's lock ${lock}`);
  }

  private tick(): void {
    const now = { wall: Date.now(), mono: performance.now() };
    if (sleptBetween(now.wall - this.lastTick.wall, now.mono - this.lastTick.mono)) {
      this.log("the machine slept: every held connection is probed before its next use");
      for (const node of this.held.values()) node.noteSleep();
    }
    this.lastTick = now;
    const idleMs = this.idleSeconds * 1000;
    this.warm.expire(now.wall, idleMs);
    for (const [key, node] of this.held) {
      if (!node.busy && node.lastUsedAt && now.wall - node.lastUsedAt.getTime() >= idleMs) {
        node.close();
        this.held.delete(key);
      }
    }
    if (
      idleExpired({
        openStreams: this.openStreams,
        lastActivityMs: this.lastActivity,
        nowMs: now.mono,
        idleMs,
      })
    ) {
      this.log(`unused for ${this.idleSeconds}s: exiting`);
      void this.stop();
    }
  }

  async stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.ticker) clearInterval(this.ticker);
      this.warm.close();
      for (const node of this.held.values()) node.close();
      this.held.clear();
      for (const s of this.sockets) s.destroy();
      await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
      const { place } = this.options;
      try {
        if (readFileSync(place.lock, "utf8").trim() === String(process.pid)) unlinkSync(place.lock);
      } catch {
        // Already gone.
      }
      this.resolveStopped();
    })();
    return this.stopping;
  }

  status(): DaemonStatus {
    return {
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      socket: this.options.place.socket,
      idleSeconds: this.idleSeconds,
      build: this.options.build,
      nodes: [...this.held.values()].map((n) => n.status()),
      projects: this.warm.status(),
    };
  }

  // ---- one client socket ------------------------------------------------------------------

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    this.openStreams += 1;
    this.lastActivity = performance.now();
    const decoder = new FrameDecoder();
    let handler: ((type: number, body: Buffer) => void) | undefined;
    let opening = false;
    const early: { type: number; body: Buffer }[] = [];
    socket.on("error", () => {});
    socket.on("close", () => {
      this.sockets.delete(socket);
      this.openStreams -= 1;
      this.lastActivity = performance.now();
    });
    socket.on("data", (chunk: Buffer) => {
      let frames: { type: number; body: Buffer }[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        if (handler) handler(frame.type, frame.body);
        else if (opening) early.push(frame);
        else if (frame.type === Frame.open) {
          opening = true;
          void this.open(socket, frame.body).then(
            (h) => {
              handler = h;
              if (h) for (const f of early.splice(0)) h(f.type, f.body);
            },
            (error: unknown) =>
              this.answer(
                socket,
                { ok: false, code: "node", message: error instanceof Error ? error.message : String(error) },
                true,
              ),
          );
        } else socket.destroy();
      }
    });
  }

  private answer(socket: Socket, answer: DaemonAnswer, end = false): void {
    if (socket.destroyed) return;
    socket.write(encodeJsonFrame(Frame.open, answer));
    if (end) socket.end();
  }

  /** Answers the open frame; returns the handler of the frames that follow, if the stream is open. */
  private async open(
    socket: Socket,
    body: Buffer,
  ): Promise<((type: number, body: Buffer) => void) | undefined> {
    const request = parseDaemonRequest(body);
    if (typeof request === "string") {
      this.answer(socket, { ok: false, code: "bad-request", message: request }, true);
      return undefined;
    }
    if (request.op === "status") {
      socket.end(encodeJsonFrame(Frame.open, { ok: true, status: this.status() }));
      return undefined;
    }
    if (request.op === "stop") {
      this.log("asked to stop");
      socket.end(encodeJsonFrame(Frame.open, { ok: true }), () => void this.stop());
      return undefined;
    }
    if (request.build !== this.options.build) {
      this.answer(
        socket,
        {
          ok: false,
          code: "build",
          message: `the running daemon comes from another version of sync-cluster (${this.options.build}, this one is ${request.build})`,
        },
        true,
      );
      return undefined;
    }
    this.idleSeconds = request.idleSeconds;
    if (request.op === "resolve") {
      await this.answerResolve(socket, request);
      return undefined;
    }
    const held = this.heldFor(request.node);
    let opened: Awaited<ReturnType<HeldNode["open"]>>;
    try {
      opened = await held.open(request.node, {
        acceptNew: request.acceptNew,
        agentSocket: request.agentSocket,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Only the user's terminal can unlock such a key: the client connects itself and asks.
      const locked = await passphraseKeys(request.node).catch(() => []);
      this.log(`${request.node.name}: could not connect: ${message}`);
      this.answer(
        socket,
        locked.length > 0
          ? {
              ok: false,
              code: "fallback",
              message: `the daemon could not log in to ${request.node.name} and cannot ask for the passphrase of ${locked.join(", ")}`,
            }
          : { ok: false, code: "node", message },
        true,
      );
      return undefined;
    }
    if (opened.dialed)
      this.log(`${request.node.name}: connected to ${request.node.host}:${request.node.port}`);
    if (socket.destroyed) return undefined;
    try {
      return await this.serve(socket, held, opened, request);
    } catch (error) {
      // A held connection that died unnoticed fails its first channel: dialed again, once.
      if (opened.dialed) throw error;
      this.log(
        `${request.node.name}: the held connection failed (${(error as Error).message}): dialing again`,
      );
      held.forget(opened.connection);
      opened = await held.open(request.node, {
        acceptNew: request.acceptNew,
        agentSocket: request.agentSocket,
      });
      return this.serve(socket, held, opened, request);
    }
  }

  /** A project's resolution, kept warm between commands; a failure sends the client to resolve itself. */
  private async answerResolve(socket: Socket, request: ResolveRequest): Promise<void> {
    let answer: DaemonAnswer;
    try {
      answer = { ok: true, resolved: await this.warm.resolve(request.project) };
    } catch (error) {
      answer = { ok: false, code: "resolution", message: (error as Error).message };
    }
    this.answer(socket, answer, true);
  }

  private serve(
    socket: Socket,
    held: HeldNode,
    opened: Awaited<ReturnType<HeldNode["open"]>>,
    request: Extract<DaemonRequest, { op: "channel" | "agent" }>,
  ): Promise<((type: number, body: Buffer) => void) | undefined> {
    if (request.op === "channel") return this.openChannel(socket, held, opened.connection, request);
    return this.lendAgent(socket, held, opened.connection, request.node, opened.dialed);
  }

  /** The HeldNode for this node's key; a node name now asked for under another key drops the old one. */
  private heldFor(node: NodeSpec): HeldNode {
    const key = connectionKey(node);
    let held = this.held.get(key);
    if (!held) {
      for (const [otherKey, other] of this.held) {
        if (other.names.has(node.name) && other.names.size === 1 && !other.busy) {
          this.log(`${node.name}: its inventory entry changed: the old connection is closed`);
          other.close();
          this.held.delete(otherKey);
        }
      }
      held = new HeldNode(
        node,
        () => performance.now(),
        (line) => this.log(line),
      );
      this.held.set(key, held);
    }
    return held;
  }

  private async openChannel(
    socket: Socket,
    held: HeldNode,
    connection: Parameters<HeldNode["agent"]>[0],
    request: Extract<DaemonRequest, { op: "channel" }>,
  ): Promise<((type: number, body: Buffer) => void) | undefined> {
    const channel = await connection.channel(request.command, request.pty);
    held.lent += 1;
    this.answer(socket, { ok: true });
    const forward = (type: typeof Frame.stdout | typeof Frame.stderr) => (chunk: Buffer) => {
      if (!socket.write(encodeFrame(type, chunk))) {
        channel.pause();
        socket.once("drain", () => channel.resume());
      }
    };
    channel.on("data", forward(Frame.stdout));
    channel.stderr.on("data", forward(Frame.stderr));
    channel.on("exit", (code: number | null, signal?: string) => {
      if (!socket.destroyed) socket.write(encodeJsonFrame(Frame.exit, { code, signal }));
    });
    channel.on("close", () => {
      held.lent -= 1;
      held.noteAlive();
      socket.end();
    });
    channel.on("error", (e: Error) => {
      if (!socket.destroyed) socket.write(encodeJsonFrame(Frame.error, { message: e.message }));
    });
    socket.on("close", () => channel.close());
    return (type, body) => {
      if (type === Frame.stdin) channel.write(body);
      else if (type === Frame.stdinEnd) channel.end();
      else if (type === Frame.window) {
        const size = JSON.parse(body.toString("utf8")) as { rows: number; cols: number };
        channel.setWindow(size.rows, size.cols, 0, 0);
      }
    };
  }

  /** Lends an agent to the client; takes it back when the client goes, if it stands between requests. */
  private async lendAgent(
    socket: Socket,
    held: HeldNode,
    connection: Parameters<HeldNode["agent"]>[0],
    node: NodeSpec,
    dialed: boolean,
  ): Promise<((type: number, body: Buffer) => void) | undefined> {
    const agent = await held.agent(connection);
    const { streams } = agent;
    held.lent += 1;
    const follower = new AgentFrameFollower();
    let agentGone = false;
    let unflushed = 0;
    const onStdout = (chunk: Buffer) => {
      follower.fromAgent(chunk);
      if (!socket.destroyed) socket.write(encodeFrame(Frame.stdout, chunk));
    };
    const onStderr = (chunk: Buffer) => {
      if (!socket.destroyed) socket.write(encodeFrame(Frame.stderr, chunk));
    };
    const onGone = () => {
      agentGone = true;
      socket.end();
    };
    streams.stdout.on("data", onStdout);
    streams.stderr.on("data", onStderr);
    streams.lifecycle.on("close", onGone);
    streams.lifecycle.on("error", onGone);
    let returned = false;
    const giveBack = () => {
      if (returned) return;
      returned = true;
      streams.stdout.off("data", onStdout);
      streams.stderr.off("data", onStderr);
      streams.lifecycle.off("close", onGone);
      streams.lifecycle.off("error", onGone);
      held.lent -= 1;
      const verdict = follower.verdict;
      if (agentGone || verdict === "discard") {
        if (!agentGone)
          this.log(`${node.name}: its client left in the middle of a request: the agent is stopped`);
        streams.close();
        return;
      }
      held.noteAlive();
      if (verdict === "reuse") held.keep(streams, node);
      else void this.abortThenKeep(held, streams, node);
    };
    socket.on("close", giveBack);
    const loginOutput = agent.reused ? undefined : streams.announced?.loginOutput;
    this.answer(socket, {
      ok: true,
      dialed,
      reusedAgent: agent.reused,
      ...(loginOutput ? { loginOutput } : {}),
    });
    return (type, body) => {
      if (type === Frame.stdin) {
        follower.fromClient(body);
        unflushed += body.length;
        streams.stdin.write(body, () => {
          unflushed -= body.length;
          if (unflushed < HIGH_WATER && socket.isPaused()) socket.resume();
        });
        if (unflushed >= HIGH_WATER) socket.pause();
      } else if (type === Frame.stdinEnd) socket.end();
    };
  }

  /** A client that left between a prepare and its upload: the agent releases the worker's lock first. */
  private async abortThenKeep(held: HeldNode, streams: AgentStreams, node: NodeSpec): Promise<void> {
    const follower = new AgentFrameFollower();
    const abort: AbortRequest = { op: "abort" };
    const frame = requestFrame(abort);
    follower.fromClient(frame);
    const answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), ABORT_TIMEOUT_MS);
      const onData = (chunk: Buffer) => {
        follower.fromAgent(chunk);
        if (follower.settled) done(true);
      };
      const onClose = () => done(false);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        streams.stdout.off("data", onData);
        streams.lifecycle.off("close", onClose);
        resolve(ok);
      };
      streams.stdout.on("data", onData);
      streams.lifecycle.on("close", onClose);
      streams.stdin.write(frame);
    });
    if (answered) held.keep(streams, node);
    else {
      this.log(`${node.name}: the agent did not answer the abort that releases the worker's lock: stopped`);
      streams.close();
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(socket);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
