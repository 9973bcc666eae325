import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on 127.0.0.1 in front of one sshd that counts the bytes passing each way, with no
 * delay: the curve puts one in front of every hop the leader talks to directly (every worker for
 * flat pushes and the anchor, the gateways for the tree), so what the leader sent is read off the
 * proxies it went through, the same way for every tool (SSH's framing and handshakes included).
 */
export class CountingProxy {
  port = 0;
  /** Bytes from the client (the leader's processes) toward the sshd. */
  bytesUp = 0;
  /** Bytes from the sshd back to the client. */
  bytesDown = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(readonly target: number) {}

  async start(): Promise<this> {
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
        if (!socket.readableEnded) close();
      });
    }
    client.on("data", (chunk: Buffer) => {
      this.bytesUp += chunk.length;
    });
    upstream.on("data", (chunk: Buffer) => {
      this.bytesDown += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Bytes sent toward the hops of `proxies` while `during` runs. */
export async function bytesUpDuring<T>(
  proxies: readonly CountingProxy[],
  during: () => Promise<T>,
): Promise<{ value: T; bytes: number }> {
  const sum = () => proxies.reduce((s, p) => s + p.bytesUp, 0);
  const before = sum();
  const value = await during();
  return { value, bytes: sum() - before };
}
