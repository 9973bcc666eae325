import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { NodeError } from "../../src/core/errors.js";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { connect } from "../../src/transport/connection.js";
import { run, tempDir } from "../fixtures/projects.js";

/**
 * A node that breaks the SSH handshake (a dying sshd, a proxy that cuts, something else on the
 * port) must fail that node with an error, however many error events ssh2 emits: one left
 * without a listener kills the whole process, and every other node's push with it.
 */
describe("connection errors during the handshake", () => {
  let server: Server;
  let port: number;
  let node: NodeSpec;

  before(async () => {
    // Each connection breaks the handshake another way: garbage after the banner, a reset after
    // it (ECONNRESET, then the loss of the connection), a reset before it.
    let nth = 0;
    server = createServer((socket) => {
      socket.on("error", () => {});
      const way = nth++ % 3;
      // ssh2 then emits two errors: ECONNRESET, and "Connection lost before handshake".
      if (way === 2) return void setTimeout(() => socket.resetAndDestroy(), 50);
      socket.write("SSH-2.0-OpenSSH_9.2\r\n");
      if (way === 0) {
        socket.write(Buffer.alloc(64, 0xff));
        setTimeout(() => socket.destroy(), 20);
      } else socket.once("data", () => socket.resetAndDestroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    port = typeof address === "object" && address ? address.port : 0;
    const dir = await tempDir("conn-errors");
    await writeFile(join(dir, "known_hosts"), "");
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")]);
    node = {
      name: "broken",
      role: "worker",
      host: "127.0.0.1",
      port,
      user: "root",
      identityFiles: [join(dir, "key")],
      knownHosts: join(dir, "known_hosts"),
      venv: "/v",
      deployDir: "/d",
      acceptNewHostKeys: false,
      connectTimeout: 5,
      keep: 3,
    };
  });
  after(() => server.close());

  test("a broken handshake rejects the connection, and no error event escapes", async () => {
    const escaped: unknown[] = [];
    const onUncaught = (error: unknown) => escaped.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      for (let i = 0; i < 9; i++) {
        await assert.rejects(connect(node, { agentSocket: "" }), (e: unknown) => e instanceof NodeError);
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      process.off("uncaughtException", onUncaught);
    }
    assert.deepEqual(escaped.map(String), []);
  });
});
