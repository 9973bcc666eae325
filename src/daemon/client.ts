import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { Duplex, PassThrough } from "node:stream";
import type { PseudoTtyOptions } from "ssh2";
import { encodeFrame, encodeJsonFrame, Frame, FrameDecoder, frameHeader } from "../core/daemon/stream-mux.js";
import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { packagePath } from "../package-files.js";
import { agentCode } from "../transport/agent-bootstrap.js";
import type { AgentStreams } from "../transport/agent-session.js";
import type { ConnectOptions } from "../transport/connection.js";
import { directLinker, type NodeLink, type NodeLinker, type RemoteChannel } from "../transport/node-link.js";
import { type DaemonPlace, makePrivateDir, privateDirProblem } from "./place.js";
import {
  DAEMON_PROTOCOL,
  type DaemonAnswer,
  type DaemonRequest,
  type DaemonStatus,
  type NodeRequest,
} from "./protocol.js";

/**
 * The client side of the daemon: links to nodes whose connections and agents the user's daemon
 * holds, started on first use. Whenever the daemon cannot be reached, started or used for a node,
 * the link connects directly instead, and says why to whoever listens (--verbose).
 */

// A daemon starts in a fraction of a second (seconds on a loaded machine); past this the command goes on without it.
const START_TIMEOUT_MS = 15_000;
// Larger writes toward the daemon are cut into frames of this size (one socket write each).
const STDIN_SLICE = 1024 * 1024;

let build: string | undefined;
/** This sync-cluster's build as the daemon sees it: its protocol and its code. */
export function daemonBuild(): string {
  build ??= `${DAEMON_PROTOCOL}-${buildId()}`;
  return build;
}

/** This build's name (bin/build-id.mjs); without one, the agent it sends stands for it. */
function buildId(): string {
  try {
    return readFileSync(packagePath("dist/build-id"), "utf8").trim();
  } catch {
    return createHash("sha256").update(agentCode()).digest("hex").slice(0, 16);
  }
}

interface Opened {
  socket: Socket;
  answer: DaemonAnswer & { status?: DaemonStatus };
  /** Frames that arrived with the answer, and the decoder for the rest. */
  rest: { type: number; body: Buffer }[];
  decoder: FrameDecoder;
}

/** Connects to the daemon's socket and sends one request; resolves with its answer. */
export function openStream(place: DaemonPlace, request: DaemonRequest): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(place.socket);
    const decoder = new FrameDecoder();
    let answered = false;
    const onData = (chunk: Buffer) => {
      let frames: { type: number; body: Buffer }[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        socket.destroy();
        reject(error);
        return;
      }
      const first = frames.shift();
      if (!first) return;
      answered = true;
      socket.off("data", onData);
      socket.pause();
      if (first.type !== Frame.open) {
        socket.destroy();
        reject(new Error("the daemon answered out of turn"));
        return;
      }
      resolve({ socket, answer: JSON.parse(first.body.toString("utf8")), rest: frames, decoder });
    };
    socket.on("data", onData);
    socket.once("error", (error) => {
      if (!answered) reject(error);
    });
    socket.once("close", () => {
      if (!answered) reject(new Error("the daemon closed the connection without answering"));
    });
    socket.once("connect", () => socket.write(encodeJsonFrame(Frame.open, request)));
  });
}

/** Delivers the frames of an opened stream, those that came with the answer first. */
function onFrames(opened: Opened, handle: (type: number, body: Buffer) => void, onEnd: () => void): void {
  const { socket, decoder } = opened;
  // After the caller has attached its listeners: the frames wait until then.
  setImmediate(() => {
    for (const f of opened.rest.splice(0)) handle(f.type, f.body);
    socket.on("data", (chunk: Buffer) => {
      try {
        for (const f of decoder.push(chunk)) handle(f.type, f.body);
      } catch {
        socket.destroy();
      }
    });
    socket.once("close", onEnd);
    socket.resume();
  });
}

/**
 * Each slice is written after its header as a view of the caller's buffer, never copied: an
 * archive sent to many workers at once stays one archive in memory, not one copy per worker.
 */
export function writeStdin(
  socket: Pick<Socket, "write">,
  chunk: Buffer,
  written?: (error?: Error | null) => void,
): boolean {
  let ok = true;
  for (let at = 0; at < chunk.length || at === 0; at += STDIN_SLICE) {
    const slice = chunk.subarray(at, at + STDIN_SLICE);
    const last = at + STDIN_SLICE >= chunk.length;
    socket.write(frameHeader(Frame.stdin, slice.length));
    ok = socket.write(slice, last ? written : undefined);
    if (chunk.length === 0) break;
  }
  return ok;
}

/** A remote command run by the daemon, with the streams and events of an SSH channel. */
class DaemonChannel extends Duplex implements RemoteChannel {
  readonly stderr = new PassThrough();

  constructor(private readonly opened: Opened) {
    super();
    onFrames(
      opened,
      (type, body) => {
        if (type === Frame.stdout) {
          if (!this.push(body)) opened.socket.pause();
        } else if (type === Frame.stderr) this.stderr.write(body);
        else if (type === Frame.exit) {
          const exit = JSON.parse(body.toString("utf8")) as { code: number | null; signal?: string };
          this.emit("exit", exit.code, exit.signal);
        } else if (type === Frame.error) {
          this.emit("error", new Error((JSON.parse(body.toString("utf8")) as { message: string }).message));
        }
      },
      () => {
        this.push(null);
        this.stderr.end();
        // After the last output has been read, as ssh2's channel does.
        setImmediate(() => this.emit("close"));
      },
    );
  }

  override _read(): void {
    this.opened.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    writeStdin(this.opened.socket, chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.opened.socket.write(encodeFrame(Frame.stdinEnd), () => callback());
  }

  setWindow(rows: number, cols: number): void {
    this.opened.socket.write(encodeJsonFrame(Frame.window, { rows, cols }));
  }

  close(): void {
    this.opened.socket.destroy();
  }
}

/** An agent the daemon lends: ending stdin gives it back (it stays up for the next command). */
function lentAgent(opened: Opened): AgentStreams {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const lifecycle = new PassThrough();
  const { socket } = opened;
  socket.on("error", (error) => lifecycle.emit("error", error));
  onFrames(
    opened,
    (type, body) => {
      if (type === Frame.stdout) stdout.write(body);
      else if (type === Frame.stderr) stderr.write(body);
    },
    () => lifecycle.emit("close"),
  );
  return {
    stdin: {
      write: (chunk: Buffer, written?: (error?: Error | null) => void) => writeStdin(socket, chunk, written),
      end: () => socket.end(),
    },
    stdout,
    stderr,
    lifecycle,
    close: () => socket.end(),
    // The daemon ran the bootstrap when it started the agent; only frames travel here.
    announced: { loginOutput: opened.answer.ok ? opened.answer.loginOutput : undefined },
  };
}

/** Why the daemon could not serve: the command connects itself. */
class Fallback extends Error {}

export interface DaemonLinkerOptions {
  place: DaemonPlace;
  idleSeconds: number;
  /** Told how each node is reached and why a node falls back (--verbose). */
  note?: (message: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** Links through the daemon (started if need be), each falling back to a direct connection. */
export class DaemonLinker implements NodeLinker {
  private ready: Promise<string | undefined> | undefined;

  constructor(readonly options: DaemonLinkerOptions) {}

  /** Undefined when the daemon answers (started if need be, once); else why the command connects directly. */
  reachable(): Promise<string | undefined> {
    this.ready ??= ensureDaemon(this.options.place, this.options.idleSeconds).then(
      (state) => {
        this.options.note?.(
          `daemon: through the daemon at ${this.options.place.socket}${state === "started" ? " (started now)" : ""}`,
        );
        return undefined;
      },
      (error: Error) => {
        this.options.note?.(`daemon: direct connections: ${error.message}`);
        return error.message;
      },
    );
    return this.ready;
  }

  async link(node: NodeSpec, options: ConnectOptions): Promise<NodeLink> {
    if ((await this.reachable()) !== undefined) return directLinker.link(node, options);
    return new DaemonLink(node, options, this.options, (reason) =>
      this.options.note?.(`daemon: ${node.name}: connected directly: ${reason}`),
    );
  }
}

class DaemonLink implements NodeLink {
  private direct: Promise<NodeLink> | undefined;
  private readonly streams = new Set<Socket>();

  constructor(
    readonly node: NodeSpec,
    private readonly connectOptions: ConnectOptions,
    private readonly options: DaemonLinkerOptions,
    private readonly fellBack: (reason: string) => void,
  ) {}

  /** What every request for this node says: the node, how to reach it, and this client's build. */
  private nodeRequest(): NodeRequest {
    const env = this.options.env ?? process.env;
    return {
      node: this.node,
      acceptNew: this.connectOptions.acceptNew ?? false,
      agentSocket: this.connectOptions.agentSocket ?? env.SSH_AUTH_SOCK,
      idleSeconds: this.options.idleSeconds,
      build: daemonBuild(),
    };
  }

  /** Opens a stream through the daemon; a Fallback when the daemon cannot serve this node. */
  private async open(request: DaemonRequest): Promise<Opened> {
    let opened: Opened;
    try {
      opened = await openStream(this.options.place, request);
    } catch (error) {
      throw new Fallback(`the daemon did not answer (${(error as Error).message})`);
    }
    const { answer } = opened;
    if (answer.ok) {
      this.streams.add(opened.socket);
      opened.socket.once("close", () => this.streams.delete(opened.socket));
      return opened;
    }
    if (answer.code === "build") {
      // An older daemon: asked to make way, so the next command starts this version's.
      void openStream(this.options.place, { op: "stop" }).catch(() => undefined);
      throw new Fallback(answer.message);
    }
    if (answer.code === "node") throw new NodeError(this.node.name, answer.message);
    throw new Fallback(answer.message);
  }

  private directLink(reason: string): Promise<NodeLink> {
    if (!this.direct) {
      this.fellBack(reason);
      this.direct = directLinker.link(this.node, this.connectOptions);
    }
    return this.direct;
  }

  async channel(command: string, pty?: PseudoTtyOptions): Promise<RemoteChannel> {
    if (this.direct) return (await this.direct).channel(command, pty);
    try {
      return new DaemonChannel(
        await this.open({ ...this.nodeRequest(), op: "channel", command, ...(pty ? { pty } : {}) }),
      );
    } catch (error) {
      if (!(error instanceof Fallback)) throw error;
      return (await this.directLink(error.message)).channel(command, pty);
    }
  }

  async agent(): Promise<AgentStreams> {
    if (this.direct) return (await this.direct).agent();
    try {
      return lentAgent(await this.open({ ...this.nodeRequest(), op: "agent" }));
    } catch (error) {
      if (!(error instanceof Fallback)) throw error;
      return (await this.directLink(error.message)).agent();
    }
  }

  close(): void {
    for (const s of this.streams) s.end();
    void this.direct?.then(
      (d) => d.close(),
      () => undefined,
    );
  }
}

/** Whether a daemon answers on the socket (after checking its directory), else starts one. */
export async function ensureDaemon(place: DaemonPlace, idleSeconds: number): Promise<"running" | "started"> {
  const problem = makePrivateDir(place.dir);
  if (problem) throw new Error(problem);
  if (await pingDaemon(place)) return "running";
  startDaemonProcess(place, idleSeconds);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    if (await pingDaemon(place)) return "started";
  }
  throw new Error(`the daemon did not start within ${START_TIMEOUT_MS / 1000}s (see ${place.log})`);
}

/** True when a daemon answers a status request on the socket. */
export async function pingDaemon(place: DaemonPlace): Promise<boolean> {
  if (privateDirProblem(place.dir) !== undefined) return false;
  try {
    const opened = await openStream(place, { op: "status" });
    opened.socket.destroy();
    return opened.answer.ok;
  } catch {
    return false;
  }
}

/** The running daemon's status, or undefined when none answers. */
export async function daemonStatus(place: DaemonPlace): Promise<DaemonStatus | undefined> {
  if (!existsSync(place.dir)) return undefined;
  const problem = privateDirProblem(place.dir);
  if (problem) throw new Error(problem);
  try {
    const opened = await openStream(place, { op: "status" });
    opened.socket.destroy();
    return opened.answer.status;
  } catch {
    return undefined;
  }
}

/** Asks the daemon to stop; resolves once its socket no longer answers. */
export async function stopDaemon(place: DaemonPlace): Promise<boolean> {
  const status = await daemonStatus(place);
  if (!status) return false;
  const opened = await openStream(place, { op: "stop" });
  await new Promise<void>((resolve) => {
    opened.socket.once("close", () => resolve());
    opened.socket.resume();
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline && (await pingDaemon(place))) await new Promise((r) => setTimeout(r, 25));
  return true;
}

/** `sync-cluster daemon run` as a process of its own, outliving this command; output to its log. */
export function startDaemonProcess(place: DaemonPlace, idleSeconds: number): number | undefined {
  const bin = packagePath("bin/sync-cluster");
  const log = openSync(place.log, "a", 0o600);
  try {
    const child = spawn(process.execPath, [bin, "daemon", "run", "--idle", String(idleSeconds)], {
      detached: true,
      // Not the user's directory: a daemon must not keep a file system busy.
      cwd: "/",
      stdio: ["ignore", log, log],
      env: { ...process.env, SYNC_CLUSTER_DAEMON_DIR: place.dir },
    });
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}
