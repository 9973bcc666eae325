import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on 127.0.0.1 that puts a network's distance between the leader and a worker: every
 * byte arrives `oneWayMs` after it was sent, in each direction (10 ms each way is a 20 ms round
 * trip), in order, and the end of a stream too. The kernel here has no netem, so this stands in.
 *
 * Bandwidth is not limited: bytes are forwarded as fast as they come, only later. What may be in
 * flight per direction is bounded by `windowBytes` (as TCP's window bounds it on a real link; the
 * default, 16 MiB, allows 1.6 GB/s at 10 ms one way), past which the sender is paused. With no
 * delay it forwards at once. It counts the bytes each way (the bench reads what the leader sent).
 */
export class DelayProxy {
  port = 0;
  /** Bytes from the client (the leader's processes) toward the sshd. */
  bytesUp = 0;
  /** Bytes from the sshd back to the client. */
  bytesDown = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly target: number,
    readonly oneWayMs: number,
    private readonly windowBytes = 16 * 1024 * 1024,
  ) {}

  async start(): Promise<this> {
    // Half-open allowed: each end of a stream is delayed like its bytes, not answered at once.
    this.server = createServer({ allowHalfOpen: true }, (client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", () => resolve()));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this;
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: "127.0.0.1", port: this.target, allowHalfOpen: true });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on("error", close);
      socket.on("close", () => {
        this.sockets.delete(socket);
        // A socket that closed before its peer's end arrived was reset or lost: so is the other
        // one, as on a link that went down. One that ended cleanly leaves the other direction's
        // queue to be delivered, and then its end.
        if (!socket.readableEnded) close();
      });
    }
    client.on("data", (chunk: Buffer) => {
      this.bytesUp += chunk.length;
    });
    upstream.on("data", (chunk: Buffer) => {
      this.bytesDown += chunk.length;
    });
    if (this.oneWayMs > 0) {
      this.pipe(client, upstream);
      this.pipe(upstream, client);
    } else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
  }

  /** Forwards `from` to `to`, each chunk `oneWayMs` after it arrived, in arrival order. */
  private pipe(from: Socket, to: Socket): void {
    // Chunks and the end of the stream (null), with the time each is due; due times only grow,
    // so one timer for the head of the queue keeps the order.
    const queue: { due: number; chunk: Buffer | null }[] = [];
    let queued = 0;
    let scheduled = false;
    const flush = () => {
      scheduled = false;
      const now = performance.now();
      while (queue.length && queue[0]!.due <= now) {
        const { chunk } = queue.shift()!;
        if (chunk === null) {
          if (!to.destroyed) to.end();
          continue;
        }
        queued -= chunk.length;
        if (!to.destroyed) to.write(chunk);
      }
      if (queued <= this.windowBytes && from.isPaused()) from.resume();
      if (queue.length) schedule();
    };
    const schedule = () => {
      scheduled = true;
      setTimeout(flush, Math.max(0, queue[0]!.due - performance.now()));
    };
    const enqueue = (chunk: Buffer | null) => {
      queue.push({ due: performance.now() + this.oneWayMs, chunk });
      if (chunk) queued += chunk.length;
      if (queued > this.windowBytes) from.pause();
      if (!scheduled) schedule();
    };
    from.on("data", (chunk: Buffer) => enqueue(chunk));
    from.on("end", () => enqueue(null));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
