import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { DelayProxy } from "./tcp-delay-proxy.js";

/** An echo server that answers the end of the stream with the number of bytes it received. */
async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    let received = 0;
    socket.on("data", (d: Buffer) => {
      received += d.length;
      socket.write(d);
    });
    socket.on("end", () => socket.end(`\ntotal ${received}\n`));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : 0 };
}

function connect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port, allowHalfOpen: true }, () => resolve(socket));
    socket.once("error", reject);
  });
}

describe("DelayProxy", () => {
  let echo: { server: Server; port: number };
  let proxy: DelayProxy;
  before(async () => {
    echo = await echoServer();
    proxy = await new DelayProxy(echo.port, 40).start();
  });
  after(async () => {
    await proxy.stop();
    await new Promise((resolve) => echo.server.close(resolve));
  });

  it("adds the one-way delay in each direction to a round trip", async () => {
    const socket = await connect(proxy.port);
    const trips: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const answered = new Promise((resolve) => socket.once("data", resolve));
      socket.write(`ping ${i}`);
      await answered;
      trips.push(performance.now() - started);
    }
    socket.destroy();
    for (const ms of trips) {
      assert.ok(ms >= 79, `round trip ${ms.toFixed(1)} ms is shorter than 2 x 40 ms`);
      assert.ok(ms < 300, `round trip ${ms.toFixed(1)} ms is far over 2 x 40 ms`);
    }
  });

  it("keeps bytes in order, does not throttle a bulk transfer, and delivers the end of the stream", async () => {
    const payload = randomBytes(32 * 1024 * 1024);
    const socket = await connect(proxy.port);
    const chunks: Buffer[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d));
    const ended = new Promise((resolve) => socket.once("end", resolve));
    const started = performance.now();
    for (let at = 0; at < payload.length; at += 64 * 1024) socket.write(payload.subarray(at, at + 64 * 1024));
    socket.end();
    await ended;
    const seconds = (performance.now() - started) / 1000;
    const received = Buffer.concat(chunks);
    const trailer = `\ntotal ${payload.length}\n`;
    assert.equal(received.length, payload.length + trailer.length);
    assert.ok(
      received.subarray(0, payload.length).equals(payload),
      "the bytes came back changed or reordered",
    );
    assert.equal(received.subarray(payload.length).toString(), trailer);
    // 64 MiB moved (there and back) at 40 ms one way: a window-bound proxy would need far longer.
    assert.ok(seconds < 10, `32 MiB echoed in ${seconds.toFixed(1)} s`);
  });

  it("with no delay forwards at once, and counts the bytes each way", async () => {
    const direct = await new DelayProxy(echo.port, 0).start();
    try {
      const socket = await connect(direct.port);
      const chunks: Buffer[] = [];
      socket.on("data", (d: Buffer) => chunks.push(d));
      const ended = new Promise((resolve) => socket.once("end", resolve));
      socket.end("x".repeat(1000));
      await ended;
      const trailer = "\ntotal 1000\n";
      assert.equal(Buffer.concat(chunks).toString(), "x".repeat(1000) + trailer);
      assert.equal(direct.bytesUp, 1000);
      assert.equal(direct.bytesDown, 1000 + trailer.length);
    } finally {
      await direct.stop();
    }
  });
});
