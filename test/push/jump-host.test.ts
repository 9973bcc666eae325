import assert from "node:assert/strict";
import { readFile, readlink, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { loadInventory } from "../../src/inventory/load.js";
import { connect, type NodeConnection } from "../../src/transport/connection.js";
import { runCli, startCli } from "../fixtures/cli.js";
import { makePackageProject, QUICK_SORT, SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";
import { commandName, descendantsOf, keygen } from "../harness/cluster.js";
import { type JumpNetwork, netnsUnavailable, sshPeers, startJumpNetwork } from "../harness/jump-network.js";

/**
 * A worker whose sshd only the jump host can reach (network namespaces: test/harness/jump-network.ts),
 * reached through the inventory's `jump` key, ~/.ssh/config's ProxyJump, two hops, and ProxyCommand.
 */

const unavailable = netnsUnavailable();

/** `text` as a regular expression matching exactly it (addresses have dots, keys have + and /). */
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/** A TCP relay for ProxyCommand, run inside the jump host's namespace: stdin/stdout to HOST PORT. */
const RELAY = `import socket, sys, threading
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((host, port), timeout=5)
except OSError as e:
    sys.stderr.write("relay: cannot connect to %s:%d: %s\\n" % (host, port, e))
    sys.exit(1)
s.settimeout(None)
def up():
    while True:
        data = sys.stdin.buffer.read1(65536)
        if not data:
            break
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while True:
    data = s.recv(65536)
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
`;

describe("a worker reachable only through a jump host", { skip: unavailable }, () => {
  let net: JumpNetwork;
  let project: string;
  let relay: string;
  // Never the machine's own ~/.ssh/config: each test names its own.
  const env: Record<string, string> = { SYNC_CLUSTER_SSH_CONFIG: "/nonexistent-ssh-config" };

  before(async () => {
    net = await startJumpNetwork();
    project = await realpath(await tempDir("jump"));
    await makePackageProject(project);
    relay = join(net.dir, "relay.py");
    await writeFile(relay, RELAY);
  });
  after(async () => {
    await net?.stop();
  });

  /** An inventory for the worker; `node` adds to (or overrides) its entry, `defaults` to the defaults. */
  const inventory = async (
    name: string,
    node: Record<string, unknown> = {},
    defaults: Record<string, unknown> = {},
  ) => {
    const file = join(net.dir, `${name}.yaml`);
    const doc = {
      project: {
        root: project,
        entry: "-m workflow.main",
        name: "proj",
        python: SYSTEM_PYTHON,
        batchSystem: "single_machine",
      },
      defaults: {
        user: "root",
        identityFile: net.identityFile,
        knownHosts: net.knownHosts,
        connectTimeout: 5,
        ...defaults,
      },
      workers: [
        {
          name: "w1",
          host: net.workerAddress,
          venv: net.worker.venv,
          deployDir: net.worker.deployDir,
          ...node,
        },
      ],
    };
    await writeFile(file, stringify(doc));
    return file;
  };
  const sshConfig = async (name: string, text: string) => {
    const file = join(net.dir, `${name}.ssh_config`);
    await writeFile(file, text);
    return { SYNC_CLUSTER_SSH_CONFIG: file };
  };
  const sc = (inv: string, args: string[], extraEnv: Record<string, string> = {}) =>
    runCli([...args.slice(0, 1), "-i", inv, ...args.slice(1)], project, { ...env, ...extraEnv });
  const workerFile = (path: string) => readFile(join(net.worker.deployDir, "proj", "current", path), "utf8");
  const saveQuick = (marker: string) =>
    writeFile(join(project, "util", "sort", "quick.py"), `${QUICK_SORT}\nMARKER = "${marker}"\n`);

  /** push, check, status, exec, ssh -- CMD and watch, each through whatever route `inv` gives w1. */
  async function everyCommandWorks(inv: string, extraEnv: Record<string, string> = {}) {
    const marker = `m${Date.now()}`;
    await saveQuick(`${marker}-push`);
    const push = await sc(inv, ["push"], extraEnv);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assert.match(await workerFile("util/sort/quick.py"), new RegExp(`${marker}-push`));

    const check = await sc(inv, ["check", "--json"], extraEnv);
    assert.equal(check.code, 0, check.stdout + check.stderr);

    const status = await sc(inv, ["status", "--json"], extraEnv);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    const doc = JSON.parse(status.stdout) as {
      leaderRelease: string;
      nodes: { node: string; reachable: boolean; release?: { current: string | null; inSync: boolean } }[];
    };
    assert.equal(doc.nodes[0]?.release?.current, doc.leaderRelease);
    assert.equal(doc.nodes[0]?.release?.inSync, true);
    const current = await readlink(join(net.worker.deployDir, "proj", "current"));
    assert.ok(current.endsWith(doc.leaderRelease), `${current} is not ${doc.leaderRelease}`);

    // The commands run in the worker's namespace: it has the worker's address, not the jump host's.
    const exec = await sc(inv, ["exec", "--", "ip -4 -o addr show"], extraEnv);
    assert.equal(exec.code, 0, exec.stdout + exec.stderr);
    assert.match(exec.stdout, new RegExp(escaped(net.workerAddress)));
    assert.doesNotMatch(exec.stdout, new RegExp(escaped(net.jumpAddress)));
    const ssh = await sc(
      inv,
      ["ssh", "w1", "--", "python -c 'import util.sort.quick as q; print(q.MARKER)'"],
      extraEnv,
    );
    assert.equal(ssh.code, 0, ssh.stdout + ssh.stderr);
    assert.equal(ssh.stdout.trim(), `${marker}-push`);

    // watch: its first sync, then one save, reach the worker.
    await saveQuick(`${marker}-watch1`);
    // Direct connections, as every command of this file (runCli): a daemon would hold the
    // bastion connection that the tests below count.
    const watch = startCli(["watch", "-i", inv, "--json"], project, { ...env, ...extraEnv });
    const out = () => watch.output();
    try {
      for (const step of ["watch1", "watch2"]) {
        if (step === "watch2") await saveQuick(`${marker}-watch2`);
        await waitFor(
          `the watch's ${step} on the worker (watch said: ${out().slice(-600)})`,
          async () => (await workerFile("util/sort/quick.py")).includes(`${marker}-${step}`),
          // The first sync starts the agent through login files that take seconds here, more under load.
          120_000,
          100,
        );
      }
    } finally {
      watch.child.kill("SIGTERM");
    }
    assert.equal(await watch.exited, 0, out());
  }

  test("the worker cannot be reached from the leader's namespace directly", async () => {
    const inv = await loadInventory({ explicitPath: await inventory("direct"), env: { HOME: net.dir } });
    const worker = inv.workers[0]!;
    assert.equal(worker.route, undefined);
    await assert.rejects(connect(worker), /unreachable from here|timed out|no SSH handshake/);
  });

  test("through the inventory's jump key: push, check, status, exec, ssh -- CMD and watch", async () => {
    await everyCommandWorks(await inventory("jump-key", {}, { jump: `root@${net.jumpAddress}:22` }));
  });

  test("through ProxyJump in the ssh config: push, check, status, exec, ssh -- CMD and watch", async () => {
    const config = await sshConfig(
      "proxyjump",
      [
        "Host w1",
        `  HostName ${net.workerAddress}`,
        "  ProxyJump bastion",
        "Host bastion",
        `  HostName ${net.jumpAddress}`,
        "  User root",
        `  IdentityFile ${net.identityFile}`,
        "",
      ].join("\n"),
    );
    const inv = await inventory("proxyjump", { host: "w1" });
    const loaded = await loadInventory({ explicitPath: inv, env: { ...config, HOME: net.dir } });
    assert.deepEqual(
      loaded.workers[0]!.route?.hops.map((h) => h.label),
      ["bastion:22"],
    );
    await everyCommandWorks(inv, config);
    // `jump: none` in the inventory turns the ssh config's ProxyJump off: the worker is out of reach.
    const direct = await sc(
      await inventory("proxyjump-none", { host: "w1", jump: "none" }),
      ["exec", "--", "true"],
      config,
    );
    assert.equal(direct.code, 1);
    assert.match(direct.stdout + direct.stderr, /unreachable from here/);
  });

  test("errors name the hop: a jump host that refuses, a node the jump host cannot reach", async () => {
    const refused = await sc(await inventory("jump-refused", {}, { jump: `${net.jumpAddress}:2` }), [
      "exec",
      "--",
      "true",
    ]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stdout + refused.stderr,
      new RegExp(
        `jump host ${escaped(net.jumpAddress)}:2: connection refused by ${escaped(net.jumpAddress)}:2: is sshd running there`,
      ),
    );
    const wrongPort = await sc(await inventory("worker-refused", { port: 9 }, { jump: net.jumpAddress }), [
      "exec",
      "--",
      "true",
    ]);
    assert.equal(wrongPort.code, 1);
    assert.match(
      wrongPort.stdout + wrongPort.stderr,
      new RegExp(
        `jump host ${escaped(net.jumpAddress)}:22 could not connect to ${escaped(net.workerAddress)}:9 \\(.+\\): is sshd running there, and is the address right as seen from ${escaped(net.jumpAddress)}:22\\?`,
      ),
    );
  });

  test("through two hops: the bastion, then a second sshd inside the bastion's namespace", async () => {
    const inv = await inventory("two-hops", { jump: `${net.jumpAddress},${net.innerJumpAddress}` });
    const r = await sc(inv, ["exec", "--", "ip -4 -o addr show"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(escaped(net.workerAddress)));
  });

  test("through a ProxyCommand run in the bastion's namespace, with and without a shell", async () => {
    for (const [name, command] of [
      ["argv", `ip netns exec ${net.jumpNs} ${SYSTEM_PYTHON} ${relay} %h %p`],
      ["shell", `ip netns exec ${net.jumpNs} ${SYSTEM_PYTHON} "${relay}" %h %p`],
    ] as const) {
      const config = await sshConfig(
        name,
        `Host w1\n  HostName ${net.workerAddress}\n  ProxyCommand ${command}\n  ProxyJump ignored-because-second\n`,
      );
      const inv = await inventory(`command-${name}`, { host: "w1" });
      const r = await sc(inv, ["ssh", "w1", "--", "ip -4 -o addr show"], config);
      assert.equal(r.code, 0, `${name}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, new RegExp(escaped(net.workerAddress)));
    }
  });

  test("a failing ProxyCommand's own words are in the error; a running one is stopped when the connection closes", async () => {
    const failing = await sshConfig(
      "failing",
      `Host w1\n  HostName ${net.workerAddress}\n  ProxyCommand ip netns exec ${net.jumpNs} ${SYSTEM_PYTHON} ${relay} %h 9\n`,
    );
    const r = await sc(await inventory("command-failing", { host: "w1" }), ["exec", "--", "true"], failing);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(
        `the ProxyCommand \`ip netns exec ${net.jumpNs} ${escaped(SYSTEM_PYTHON)} ${escaped(relay)} ${escaped(net.workerAddress)} 9\` exited with status 1: relay: cannot connect to ${escaped(net.workerAddress)}:9`,
      ),
    );

    const working = await sshConfig(
      "working",
      `Host w1\n  HostName ${net.workerAddress}\n  ProxyCommand ip netns exec ${net.jumpNs} ${SYSTEM_PYTHON} ${relay} %h %p\n`,
    );
    const inv = await loadInventory({
      explicitPath: await inventory("command-working", { host: "w1" }),
      env: { ...working, HOME: net.dir },
    });
    const connection = await connect(inv.workers[0]!);
    const relays = descendantsOf(process.pid).filter((pid) => commandName(pid).startsWith("python"));
    assert.equal(relays.length, 1, "one relay process per connection");
    assert.equal((await connection.exec("echo hi")).stdout.toString(), "hi\n");
    connection.close();
    await waitFor("the relay to be stopped", () => !descendantsOf(process.pid).includes(relays[0]!));
  });

  test("nodes through the same jump host share one connection to it, closed with the last node", async () => {
    const inv = await loadInventory({
      explicitPath: await inventory("shared", {}, { jump: net.jumpAddress }),
      env: { HOME: net.dir },
    });
    const w = inv.workers[0]!;
    const nodes = [w, { ...w, name: "w1-again" }, { ...w, name: "w1-third" }];
    const connections: NodeConnection[] = await Promise.all(nodes.map((n) => connect(n)));
    const atJump = await sshPeers(net.jumpNs);
    assert.deepEqual(
      atJump,
      ["10.231." + net.jumpAddress.split(".")[2] + ".2"],
      "one connection on the bastion",
    );
    assert.equal((await sshPeers(net.workerNs)).length, 3, "three on the worker");
    connections[0]!.close();
    connections[1]!.close();
    assert.equal((await connections[2]!.exec("echo still")).stdout.toString(), "still\n");
    connections[2]!.close();
    await waitFor("the bastion connection to close", async () => (await sshPeers(net.jumpNs)).length === 0);
  });

  test("exec on six nodes behind one bastion logs in to the bastion once", async () => {
    const file = await inventory("six", {}, { jump: net.jumpAddress });
    const doc = parse(await readFile(file, "utf8")) as { workers: Record<string, unknown>[] };
    doc.workers = Array.from({ length: 6 }, (_, i) => ({ ...doc.workers[0], name: `n${i + 1}` }));
    await writeFile(file, stringify(doc));
    let sampling = true;
    let mostAtJump = 0;
    let mostAtWorker = 0;
    const sampler = (async () => {
      while (sampling) {
        mostAtJump = Math.max(mostAtJump, (await sshPeers(net.jumpNs)).length);
        mostAtWorker = Math.max(mostAtWorker, (await sshPeers(net.workerNs)).length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const r = await sc(file, ["exec", "-j", "6", "--", "sleep 1; echo done"]);
    sampling = false;
    await sampler;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.match(/done/g)?.length, 6, r.stdout);
    assert.ok(mostAtWorker >= 2, `the nodes ran one at a time (${mostAtWorker})`);
    assert.equal(mostAtJump, 1);
  });

  test("a jump host's key is checked like a worker's: a changed key and an unknown key are refused", async () => {
    const spare = join(net.dir, "spare_host_key");
    await keygen(spare);
    const wrongKey = (await readFile(`${spare}.pub`, "utf8")).trim().split(/\s+/).slice(0, 2).join(" ");
    const changed = join(net.dir, "known_hosts_changed");
    await writeFile(
      changed,
      `${net.jumpAddress} ${wrongKey}\n${net.workerAddress} ${net.hostKey(net.worker)}\n`,
    );
    const r = await sc(await inventory("changed-key", {}, { jump: net.jumpAddress, knownHosts: changed }), [
      "push",
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(
        `jump host ${escaped(net.jumpAddress)}:22: THE HOST KEY OF ${escaped(net.jumpAddress)}:22 HAS CHANGED: it now presents ssh-ed25519 SHA256:`,
      ),
    );

    const unknown = join(net.dir, "known_hosts_unknown");
    await writeFile(unknown, `${net.workerAddress} ${net.hostKey(net.worker)}\n`);
    const inv = await inventory("unknown-key", {}, { jump: net.jumpAddress, knownHosts: unknown });
    const refused = await sc(inv, ["exec", "--", "true"]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stdout + refused.stderr,
      new RegExp(
        `jump host ${escaped(net.jumpAddress)}:22: the host key of ${escaped(net.jumpAddress)}:22 is not in ${unknown}`,
      ),
    );
    const accepted = await sc(inv, ["exec", "--accept-new", "--", "true"]);
    assert.equal(accepted.code, 0, accepted.stdout + accepted.stderr);
    assert.match(
      await readFile(unknown, "utf8"),
      new RegExp(`^${escaped(`${net.jumpAddress} ${net.hostKey(net.jump)}`)}$`, "m"),
    );
  });
});
