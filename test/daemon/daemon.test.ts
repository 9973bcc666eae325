import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { chmod, cp, mkdir, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, afterEach, before, describe, test } from "node:test";
import { PROBE_AFTER_MS } from "../../src/core/daemon/daemon-policy.js";
import { BIN, type CliRun, runCli, startCli } from "../fixtures/cli.js";
import { makePackageProject, SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import { isRoot, openForNobody } from "../fixtures/unprivileged.js";
import { waitFor } from "../fixtures/wait.js";
import {
  type Cluster,
  commandName,
  daemonPidIn,
  descendantsOf,
  processAlive,
  sshdAvailable,
  startCluster,
} from "../harness/cluster.js";
import { FaultProxy } from "../harness/tcp-fault-proxy.js";
import { verifiedCurrent } from "../harness/verified-current.js";

/**
 * The daemon against real sshd workers: started by the first command, its connections reused by
 * the next ones, redialed when the inventory, the worker or the connection changes, gone after its
 * idle period, closed to other users, and never in the way: without it commands connect directly.
 * Every daemon a test starts is stopped by its PID (afterEach).
 */

const NAME = "proj";

/** The client ports of the TCP connections established to `port` now: the same port is the same connection. */
function connectionsTo(port: number): string[] {
  const peers: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== "01") continue; // 01: ESTABLISHED
      if (Number.parseInt(f[1]!.split(":")[1]!, 16) === port) peers.push(f[2]!);
    }
  }
  return peers.sort();
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once("exit", () => r()));
}

describe("the daemon on real sshd workers", { skip: !sshdAvailable() && "sshd is not installed" }, () => {
  let cluster: Cluster;
  let project: string;
  let inventory: string;
  let daemonDir: string;
  const env = () => ({ SYNC_CLUSTER_DAEMON: "on", SYNC_CLUSTER_DAEMON_DIR: daemonDir });
  const cli = (args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> =>
    runCli(args, project, { ...env(), ...extraEnv });
  const writeInventory = (extra: Record<string, unknown> = {}) =>
    cluster.writeInventory({
      project: {
        root: project,
        entry: "-m workflow.main",
        name: NAME,
        python: SYSTEM_PYTHON,
        include: ["data/*"],
      },
      extra: { daemon: 600, ...extra },
    });
  const daemonPid = () => daemonPidIn(daemonDir);
  const status = async () => {
    const r = await cli(["daemon", "status", "--json"]);
    return JSON.parse(r.stdout) as {
      pid: number;
      nodes: {
        names: string[];
        port: number;
        connectedAt: string | null;
        agentsHeld: number;
        agentsLent: number;
        dials: number;
      }[];
    } | null;
  };

  /** `status` through the daemon: every node reached (in sync with the leader or not). */
  const reachAll = async (file = inventory) => {
    const r = await cli(["status", "-i", file, "--json"]);
    const nodes = (JSON.parse(r.stdout) as { nodes: { node: string; reachable: boolean }[] }).nodes;
    assert.deepEqual(
      nodes.filter((n) => !n.reachable).map((n) => n.node),
      [],
      r.stderr,
    );
  };

  before(async () => {
    cluster = await startCluster({ workers: 2 });
    project = await realpath(await tempDir("daemon"));
    await makePackageProject(project);
    await mkdir(join(project, "data"));
    // The cluster's directory is 0700: only root enters; the daemon makes its own directory in it.
    daemonDir = join(cluster.dir, "daemon");
    inventory = writeInventory();
  });
  afterEach(async () => {
    const pid = daemonPid();
    if (pid !== undefined && processAlive(pid)) {
      process.kill(pid, "SIGTERM");
      await waitFor("the daemon to stop", () => !processAlive(pid), 10_000);
    }
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the first command starts the daemon; the next ones reuse its connections and agents", async () => {
    const [w1, w2] = cluster.workers;
    const first = await cli(["push", "-i", inventory, "-v"]);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    assert.match(first.stderr, /daemon: through the daemon at .*daemon\.sock \(started now\)/);
    const pid = daemonPid();
    assert.ok(pid && processAlive(pid), "the daemon runs after the command ended");
    const held = [connectionsTo(w1!.port), connectionsTo(w2!.port)];
    assert.deepEqual(
      held.map((c) => c.length),
      [1, 1],
      "the daemon holds one connection per worker",
    );

    const again = await cli(["status", "-i", inventory, "-v"]);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stderr, /daemon: through the daemon at /);
    assert.doesNotMatch(again.stderr, /started now/);
    await writeTree(project, { "util/added.py": "ADDED = 1\n" });
    const push = await cli(["push", "-i", inventory, "--json"]);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    // No new SSH connection: the same client ports, one dial per node.
    assert.deepEqual([connectionsTo(w1!.port), connectionsTo(w2!.port)], held);
    const s = await status();
    assert.equal(s?.pid, pid);
    assert.deepEqual(s?.nodes.map((n) => [n.dials, n.agentsHeld > 0]).sort(), [
      [1, true],
      [1, true],
    ]);

    // Remote commands: stdout and stderr apart and the exit status kept, as over a direct connection.
    const command = (...options: string[]) => [
      "exec",
      "-i",
      inventory,
      "--json",
      ...options,
      "--",
      "printf 'to stdout'; printf 'to stderr' >&2; exit 3",
    ];
    const outcomes = async (r: CliRun) =>
      (JSON.parse(r.stdout) as { nodes: { status: number; stdout: string; stderr: string }[] }).nodes.map(
        (o) => [o.status, o.stdout, o.stderr],
      );
    const throughDaemon = await cli(command());
    assert.equal(throughDaemon.code, 1);
    assert.deepEqual(await outcomes(throughDaemon), await outcomes(await cli(command("--no-daemon"))));
    assert.deepEqual(await outcomes(throughDaemon), [
      [3, "to stdout", "to stderr"],
      [3, "to stdout", "to stderr"],
    ]);
    // One word is a command line for the node's shell.
    const ssh = await cli([
      "ssh",
      "w1",
      "-i",
      inventory,
      "--",
      "python -c 'import util.added; print(util.added.ADDED)'",
    ]);
    assert.deepEqual([ssh.code, ssh.stdout], [0, "1\n"]);
    assert.deepEqual([connectionsTo(w1!.port), connectionsTo(w2!.port)], held);
  });

  test("watch shares the daemon's connections with one-shot commands, and gives its agents back when it stops", async () => {
    const [w1, w2] = cluster.workers;
    await reachAll();
    const held = [connectionsTo(w1!.port), connectionsTo(w2!.port)];
    assert.deepEqual(
      held.map((c) => c.length),
      [1, 1],
    );
    const watch = startCli(["watch", "-i", inventory, "--json", "-v"], project, env());
    const synced = (marker: string) =>
      waitFor(
        `both workers to hold ${marker} (watch said: ${watch.output().slice(-800)})`,
        async () =>
          (
            await Promise.all(
              cluster.workers.map((w) =>
                readFile(join(w.deployDir, NAME, "current", "util", "watched.py"), "utf8").catch(() => ""),
              ),
            )
          ).every((content) => content.includes(marker)),
        60_000,
        100,
      );
    try {
      await writeTree(project, { "util/watched.py": "MARK = 'first'\n" });
      await synced("first");
      assert.match(watch.output(), /daemon: through the daemon at /);
      const lent = await status();
      assert.deepEqual(
        lent?.nodes.map((n) => n.agentsLent),
        [1, 1],
        "watch holds one agent per worker, lent by the daemon",
      );
      // A one-shot command while watch runs: the same connections, another agent beside watch's.
      await reachAll();
      await writeTree(project, { "util/watched.py": "MARK = 'second'\n" });
      await synced("second");
      assert.deepEqual([connectionsTo(w1!.port), connectionsTo(w2!.port)], held);
    } finally {
      watch.child.kill("SIGINT");
    }
    assert.equal(await watch.exited, 0, watch.output());
    await waitFor("the daemon to have the watch's agents back", async () =>
      (await status())?.nodes.every((n) => n.agentsLent === 0 && n.agentsHeld > 0),
    );
    assert.deepEqual(
      (await status())?.nodes.map((n) => n.dials),
      [1, 1],
    );
  });

  test("an edited inventory means new connections; the old ones are closed", async () => {
    const w1 = cluster.workers[0]!;
    await reachAll();
    const before = connectionsTo(w1.port);
    writeInventory({ defaults: { connectTimeout: 9 } });
    const r = await cli(["status", "-i", inventory]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await waitFor("one new connection to w1", () => {
      const now = connectionsTo(w1.port);
      return now.length === 1 && now[0] !== before[0];
    });
    assert.equal((await status())?.nodes.length, 2, "the old connections are no longer held");
    writeInventory();
  });

  test("a restarted worker and a killed connection are redialed", async () => {
    const [w1, w2] = cluster.workers;
    await reachAll();
    await w1!.stop();
    await w1!.start();
    // The sshd process serving the daemon's connection to w2 dies; its listener stays.
    const sessions = descendantsOf(w2!.pid()!).filter((p) => commandName(p).startsWith("sshd"));
    assert.ok(sessions.length > 0, "the daemon's connection has an sshd process on w2");
    for (const p of sessions) process.kill(p, "SIGKILL");
    await writeTree(project, { "util/after_restart.py": "X = 1\n" });
    const r = await cli(["push", "-i", inventory, "--json"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(
      (await status())?.nodes.map((n) => n.dials),
      [2, 2],
    );
  });

  test("a held connection that stopped answering (a frozen sshd, as after a suspend) is probed and redialed", async () => {
    const w2 = cluster.workers[1]!;
    const pushed = await cli(["push", "-i", inventory]);
    assert.equal(pushed.code, 0, pushed.stdout + pushed.stderr);
    const frozen = descendantsOf(w2.pid()!).filter((p) => commandName(p).startsWith("sshd"));
    assert.ok(frozen.length > 0);
    for (const p of frozen) process.kill(p, "SIGSTOP");
    try {
      // Past the quiet time after which a held connection must answer a probe before use.
      await new Promise((r) => setTimeout(r, PROBE_AFTER_MS + 1000));
      const r = await cli(["status", "-i", inventory]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      // Found by the probe, not after SSH keepalives gave up on it (about a minute).
      assert.match(
        readFileSync(join(daemonDir, "daemon.log"), "utf8"),
        /w2: the held connection did not answer a probe within 3s: dialing again/,
      );
      const w2Status = (await status())?.nodes.find((n) => n.port === w2.port);
      assert.equal(w2Status?.dials, 2);
    } finally {
      for (const p of frozen) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
  });

  test("a push killed mid-upload: the node keeps a complete release, and the next push works at once", async () => {
    const w1 = cluster.workers[0]!;
    assert.equal((await cli(["push", "-i", inventory])).code, 0);
    const before = await verifiedCurrent(cluster, w1, NAME);
    // w1 behind a slow proxy, so the upload is still in flight when the client is killed.
    const proxy = await new FaultProxy(w1.port).start();
    try {
      const proxied = join(cluster.dir, "proxied.yaml");
      const [type, key] = (await readFile(join(w1.dir, "host_ed25519.pub"), "utf8")).trim().split(/\s+/);
      await writeFile(cluster.knownHosts, `[127.0.0.1]:${proxy.port} ${type} ${key}\n`, { flag: "a" });
      await writeFile(
        proxied,
        (await readFile(inventory, "utf8")).replace(`port: ${w1.port}`, `port: ${proxy.port}`),
      );
      proxy.slow(50_000);
      await reachAll(proxied);
      await writeFile(join(project, "data", "blob.bin"), randomBytes(1 << 20));
      const child = spawn(BIN, ["push", "-i", proxied, "--no-check"], {
        cwd: project,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env() },
        stdio: "ignore",
      });
      const staging = async () =>
        (
          await cluster.runOnWorker(w1, `ls -a ${w1.deployDir}/${NAME} | grep '^\\.staging-' || true`)
        ).stdout.trim();
      await waitFor(
        "the upload to w1 in flight",
        async () => {
          if (child.exitCode !== null) throw new Error(`the push ended first (exit ${child.exitCode})`);
          return (await staging()) !== "";
        },
        60_000,
      );
      child.kill("SIGKILL");
      await exited(child);
      assert.equal(await verifiedCurrent(cluster, w1, NAME), before, "w1 kept the release it had");
      // Through the daemon again (w1 directly this time, not at the proxy's pace): a lock left
      // behind would hold this push for its whole lock timeout, then fail it.
      const started = Date.now();
      const again = await cli(["push", "-i", inventory, "--json", "--no-check"]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.ok(Date.now() - started < 60_000, "the killed push's lock did not hold up the next one");
      assert.match(await verifiedCurrent(cluster, w1, NAME), /^complete /);
      assert.equal(await staging(), "", "nothing of the killed push is left");
      assert.match(
        readFileSync(join(daemonDir, "daemon.log"), "utf8"),
        /left in the middle of a request: the agent is stopped/,
      );
    } finally {
      await proxy.stop();
    }
  });

  test("the daemon exits after its idle period", async () => {
    writeInventory({ daemon: 2 });
    await reachAll();
    const pid = daemonPid()!;
    assert.ok(processAlive(pid));
    await waitFor("the idle daemon to exit", () => !processAlive(pid), 15_000);
    assert.equal(connectionsTo(cluster.workers[0]!.port).length, 0, "its connections are closed");
    assert.ok(!existsSync(join(daemonDir, "daemon.pid")), "it removed its lock");
    writeInventory();
  });

  test("a daemon of another build of sync-cluster is asked to make way, whatever changed", async () => {
    // The same package but for its build id, as a checkout updated while its daemon runs.
    const other = await tempDir("other-build");
    await cp(join(process.cwd(), "dist"), join(other, "dist"), { recursive: true });
    for (const dir of ["bin", "src"])
      await cp(join(process.cwd(), dir), join(other, dir), { recursive: true });
    await cp(join(process.cwd(), "package.json"), join(other, "package.json"));
    await symlink(join(process.cwd(), "node_modules"), join(other, "node_modules"));
    await writeFile(join(other, "dist", "build-id"), "0123456789abcdef\n");
    const old = await new Promise<CliRun>((resolve) =>
      execFile(
        join(other, "bin", "sync-cluster"),
        ["status", "-i", inventory, "--json"],
        { cwd: project, env: { ...process.env, ...env() } },
        (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
      ),
    );
    const reached = JSON.parse(old.stdout) as { nodes: { reachable: boolean }[] };
    assert.ok(
      reached.nodes.every((n) => n.reachable),
      old.stdout + old.stderr,
    );
    const oldPid = daemonPid()!;
    assert.ok(processAlive(oldPid));
    // This build's command goes on directly, and asks the other build's daemon to stop...
    const direct = await cli(["status", "-i", inventory, "-v", "--json"]);
    assert.match(direct.stderr, /comes from another version of sync-cluster/);
    await waitFor("the other build's daemon to stop", () => !processAlive(oldPid), 10_000);
    // ... so that the next one starts this build's.
    await reachAll();
    const pid = daemonPid()!;
    assert.notEqual(pid, oldPid);
    assert.ok(processAlive(pid));
    assert.ok(!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(other), "this build's daemon");
    await rm(other, { recursive: true, force: true });
  });

  test("without a daemon, commands connect directly and say why", async () => {
    const off = await cli(["status", "-i", inventory, "-v", "--no-daemon"]);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stderr, /daemon: direct connections: --no-daemon/);
    assert.equal(daemonPid(), undefined, "no daemon was started");
    writeInventory({ daemon: "off" });
    const inventoryOff = await cli(["status", "-i", inventory, "-v"]);
    assert.match(inventoryOff.stderr, /direct connections: the inventory says `daemon: off`/);
    writeInventory();
    // A daemon directory that cannot exist (under a file): the command goes on without it.
    const file = join(cluster.dir, "a-file");
    await writeFile(file, "");
    const r = await cli(["push", "-i", inventory, "-v"], { SYNC_CLUSTER_DAEMON_DIR: join(file, "d") });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /daemon: direct connections: cannot create .*a-file\/d/);
  });

  test("the socket lets in nobody but its user; a directory open to others is refused", {
    skip: !isRoot && "needs root to act as another user",
  }, async () => {
    // A directory others may walk through, with the daemon's own private directory inside.
    const open = await tempDir("daemon-open");
    await openForNobody(open);
    const previous = daemonDir;
    daemonDir = join(open, "d");
    try {
      await reachAll();
      const socket = join(daemonDir, "daemon.sock");
      const probe = spawnSync(
        process.execPath,
        [
          "-e",
          `require("node:net").createConnection(${JSON.stringify(socket)}).on("connect", () => { console.log("connected"); process.exit(0); }).on("error", (e) => { console.log(e.code); process.exit(1); })`,
        ],
        { uid: 65534, gid: 65534, encoding: "utf8", timeout: 20_000 },
      );
      assert.equal(probe.stdout.trim(), "EACCES", probe.stderr);

      // Opened to others, the directory is refused by the daemon and by its clients.
      await chmod(daemonDir, 0o755);
      const run = await cli(["daemon", "run"]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /is open to other users \(mode 755\).*chmod 700/);
      const client = await cli(["status", "-i", inventory, "-v"]);
      assert.equal(client.code, 0, client.stderr);
      assert.match(client.stderr, /daemon: direct connections: .* is open to other users/);
    } finally {
      const pid = daemonPid();
      if (pid !== undefined && processAlive(pid)) {
        process.kill(pid, "SIGTERM");
        await waitFor("the daemon to stop", () => !processAlive(pid), 10_000);
      }
      daemonDir = previous;
    }
  });
});
