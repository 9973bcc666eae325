import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on 127.0.0.1 in front of a worker's sshd that can break the connection the way
 * networks do: reset it after N bytes from the leader, stall it (keep the sockets open and stop
 * forwarding), or slow it down.
 */
export class FaultProxy {
  port = 0;
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private resetAfter: number | undefined;
  private stallAfter: number | undefined;
  private bytesPerSecond: number | undefined;
  private held: (() => void)[] | undefined;
  /** How many connections have stalled so far: a test knows its fault was injected mid-transfer. */
  stalls = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<this> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", () => resolve()));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
    return this;
  }

  /** Connections made from now on are reset after `bytes` bytes from the leader. */
  resetAfterBytes(bytes: number): void {
    this.resetAfter = bytes;
  }

  /** Connections stop forwarding (both ways) after `bytes` bytes from the leader. */
  stallAfterBytes(bytes: number): void {
    this.stallAfter = bytes;
  }

  /** Connections made from now on forward the leader's bytes at about this rate. */
  slow(bytesPerSecond: number): void {
    this.bytesPerSecond = bytesPerSecond;
  }

  /**
   * Every connection, open or new, stops forwarding the leader's bytes (they wait in the proxy)
   * until `release`: a fault can be injected while a transfer is known to be half way.
   */
  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const waiting = this.held ?? [];
    this.held = undefined;
    for (const resume of waiting) resume();
  }

  /** Connections made from now on are forwarded as they come. */
  heal(): void {
    this.resetAfter = undefined;
    this.stallAfter = undefined;
    this.bytesPerSecond = undefined;
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: "127.0.0.1", port: this.target });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const { resetAfter, stallAfter, bytesPerSecond } = this;
    let sent = 0;
    let stalled = false;
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("data", (chunk: Buffer) => {
      if (stalled) return;
      sent += chunk.length;
      if (resetAfter !== undefined && sent > resetAfter) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
        this.pairs.delete(pair);
        return;
      }
      if (stallAfter !== undefined && sent > stallAfter) {
        stalled = true;
        this.stalls++;
        return;
      }
      const forward = () => {
        if (bytesPerSecond) {
          client.pause();
          setTimeout(() => client.resume(), (chunk.length / bytesPerSecond) * 1000);
        }
        upstream.write(chunk);
      };
      if (this.held) {
        client.pause();
        this.held.push(() => {
          forward();
          if (!bytesPerSecond) client.resume();
        });
      } else forward();
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!stalled) client.write(chunk);
    });
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  }

  async stop(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
