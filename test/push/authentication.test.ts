import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { appendFile, chmod, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { NodeError } from "../../src/core/errors.js";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { loadInventory } from "../../src/inventory/load.js";
import { connect } from "../../src/transport/connection.js";
import { waitFor } from "../fixtures/wait.js";
import { type Cluster, sshdAvailable, startCluster } from "../harness/cluster.js";

const execFileAsync = promisify(execFile);
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };
const PASSPHRASE = "correct horse battery staple";

/** Logs in with `node`, runs one command, and closes: the whole path a push takes to start. */
async function loginWorks(node: NodeSpec, agentSocket: string): Promise<void> {
  const connection = await connect(node, { agentSocket });
  try {
    const r = await connection.exec("echo logged-in");
    assert.equal(r.stdout.toString().trim(), "logged-in");
  } finally {
    connection.close();
  }
}

describe("logging in: ssh-agent, identity files and passphrases", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let worker: NodeSpec;
  let lockedKey: string;
  let agent: ChildProcess | undefined;
  let agentSocket: string;
  const deadSocket = "/nonexistent/ssh-agent.sock";

  before(async () => {
    cluster = await startCluster({ workers: 1 });
    const path = cluster.writeInventory({ project: { root: cluster.dir, name: "auth" } });
    worker = (await loadInventory({ explicitPath: path, env })).workers[0]!;
    // A second key, protected by a passphrase, that the worker also accepts.
    lockedKey = join(cluster.dir, "locked_ed25519");
    await execFileAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", lockedKey]);
    await appendFile(
      join(cluster.workers[0]!.dir, "authorized_keys"),
      await readFile(`${lockedKey}.pub`, "utf8"),
    );
    agentSocket = join(cluster.dir, "agent.sock");
  });
  after(async () => {
    if (agent?.pid) process.kill(agent.pid, "SIGTERM");
    await cluster?.stop();
  });

  test("a stale SSH_AUTH_SOCK (no agent there): the identity file is used", async () => {
    await loginWorks(worker, deadSocket);
  });

  test("no agent and no identity file: the error says both are missing and what to do", async () => {
    await assert.rejects(
      connect({ ...worker, identityFiles: [] }, { agentSocket: deadSocket }),
      (e: unknown) =>
        e instanceof NodeError &&
        e.node === worker.name &&
        e.message.includes(`no ssh-agent is listening at ${deadSocket}`) &&
        /ssh-add|identityFile/.test(e.message),
    );
  });

  test("a key the node does not accept: the refusal names what was offered and what to check", async () => {
    const stranger = join(cluster.dir, "stranger_ed25519");
    await execFileAsync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
    await assert.rejects(
      connect({ ...worker, identityFiles: [stranger] }, { agentSocket: "" }),
      (e: unknown) =>
        e instanceof NodeError &&
        e.message ===
          `authentication failed for ${worker.user}@${worker.host}:${worker.port}: the node refused ${stranger}: check the user and that the key is in the node's authorized_keys`,
    );
  });

  test("a key with a passphrase and no terminal: refused with the advice to use ssh-agent", async () => {
    assert.ok(!process.stdin.isTTY, "the tests run without a terminal");
    await assert.rejects(
      connect({ ...worker, identityFiles: [lockedKey] }, { agentSocket: "" }),
      (e: unknown) =>
        e instanceof NodeError &&
        e.message.includes(`the key ${lockedKey} is protected by a passphrase and there is no terminal`) &&
        e.message.includes(`ssh-add ${lockedKey}`),
    );
  });

  test("the same key added to ssh-agent, as advised: the login works and nothing is asked", async () => {
    agent = spawn("ssh-agent", ["-D", "-a", agentSocket], { stdio: "ignore" });
    await waitFor(
      "ssh-agent to start",
      () =>
        readFile(agentSocket).then(
          () => true,
          (e: NodeJS.ErrnoException) => e.code !== "ENOENT",
        ),
      5000,
      20,
    );
    const askpass = join(cluster.dir, "askpass.sh");
    await writeFile(askpass, `#!/bin/sh\necho '${PASSPHRASE}'\n`);
    await chmod(askpass, 0o700);
    await execFileAsync("ssh-add", [lockedKey], {
      env: {
        ...env,
        SSH_AUTH_SOCK: agentSocket,
        SSH_ASKPASS: askpass,
        SSH_ASKPASS_REQUIRE: "force",
        DISPLAY: ":0",
      },
    });
    // The inventory still names the locked key: the agent's copy is used first, like OpenSSH does.
    await loginWorks({ ...worker, identityFiles: [lockedKey] }, agentSocket);
  });
});
