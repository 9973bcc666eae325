import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { BIN, type CliRun, runCli } from "../fixtures/cli.js";
import { makePackageProject, SYSTEM_PYTHON, writeTree } from "../fixtures/projects.js";
import { waitFor } from "../fixtures/wait.js";
import {
  type SlurmCluster,
  type SlurmNode,
  startSlurmCluster,
  whySlurmUnavailable,
} from "../harness/slurm-cluster.js";

/**
 * Workers taken from a real Slurm cluster (`workers: {slurm: ...}`): Slurm's node names, mapped to
 * their sshd by an ssh config file, as on a real cluster. A node that comes back during `watch`
 * gets the release; one drained is dropped; a job's nodes are its workers.
 */

const skip = whySlurmUnavailable();
const execFileAsync = promisify(execFile);

describe("workers from a real Slurm cluster", { skip, timeout: 600_000 }, () => {
  let cluster: SlurmCluster;
  let project: string;
  let inventory: string;
  let sshConfig: string;
  // Direct connections: its watch would otherwise start a daemon that outlives the test.
  const cliEnv = () => ({ ...cluster.env(), SYNC_CLUSTER_SSH_CONFIG: sshConfig, SYNC_CLUSTER_DAEMON: "off" });

  const writeInventory = (workers: Record<string, unknown>) =>
    writeFile(
      inventory,
      stringify({
        project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
        defaults: {
          user: "root",
          identityFile: cluster.identityFile,
          knownHosts: cluster.knownHosts,
          venv: "/srv/sc/venv",
          deployDir: "/srv/sc/deploy",
        },
        leader: { name: "leader", host: "127.0.0.1", port: cluster.leader.port },
        workers,
      }),
    );
  const sc = (...args: string[]): Promise<CliRun> => runCli([...args, "-i", inventory], project, cliEnv());
  const scontrol = async (...args: string[]) =>
    execFileAsync("/usr/bin/scontrol", args, { env: cluster.env() });
  const currentOn = async (node: SlurmNode) =>
    (await cluster.ssh(node, 'basename "$(readlink /srv/sc/deploy/proj/current)"')).stdout.trim();

  before(async () => {
    cluster = await startSlurmCluster({ nodes: 2, cpus: 1, memoryMb: 500 });
    project = join(cluster.leader.privateDir, "proj");
    await makePackageProject(project);
    inventory = join(cluster.dir, "sync-cluster.yaml");
    // What a real cluster's ~/.ssh/config says: where each of Slurm's node names is reached.
    sshConfig = join(cluster.dir, "ssh_config");
    await writeFile(
      sshConfig,
      cluster.nodes.map((n) => `Host ${n.hostname}\n  HostName 127.0.0.1\n  Port ${n.port}\n`).join(""),
    );
    await writeInventory({ slurm: { partition: "main" }, refresh: 1 });
    const fixed = await sc("check", "--fix");
    assert.match(
      fixed.stdout,
      /n2: fixed: wrote \/srv\/sc\/venv\/bin\/_toil_worker/,
      fixed.stdout + fixed.stderr,
    );
  });
  after(async () => {
    await cluster?.stop();
  });

  test("push takes the partition's nodes that are up: a drained one is left out", async () => {
    await scontrol("update", "nodename=n2", "state=drain", "reason=sync-cluster test");
    const push = await sc("push");
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assert.match(push.stdout, /^leader\s+published/m);
    assert.match(push.stdout, /^n1\s+published/m);
    assert.doesNotMatch(push.stdout, /^n2/m);
    assert.match(push.stdout, /2 node\(s\) converged/);
  });

  test("under watch, a node resumed in Slurm gets the release; a drained one is dropped; --on-synced runs per release", async () => {
    const runs = join(cluster.dir, "on-synced.runs");
    const watch: ChildProcess = spawn(
      BIN,
      [
        "watch",
        "--json",
        "-i",
        inventory,
        "--on-synced",
        `echo "$SYNC_CLUSTER_RELEASE $SYNC_CLUSTER_NODES" >> ${runs}`,
      ],
      { cwd: project, env: { ...cliEnv(), PYTHONPATH: "" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const events: { type: string; node?: string; release?: string; nodes?: string[]; ok?: boolean }[] = [];
    let buffered = "";
    let stderr = "";
    watch.stdout!.on("data", (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line));
    });
    watch.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const seen = (what: string, match: (e: (typeof events)[number]) => boolean, timeoutMs = 60_000) =>
      waitFor(`${what} (stderr: ${stderr.slice(-500)})`, () => events.find(match), timeoutMs);
    try {
      const first = await seen("every node on the release", (e) => e.type === "all-synced");
      assert.deepEqual(first.nodes, ["leader", "n1"]);
      const release = first.release!;

      await scontrol("update", "nodename=n2", "state=resume");
      await seen("n2 added", (e) => e.type === "node-added" && e.node === "n2");
      await seen("n2 synced", (e) => e.type === "node-synced" && e.node === "n2" && e.release === release);
      assert.equal(await currentOn(cluster.nodes[1]!), release);

      await writeTree(project, { "util/added.py": "ADDED = 1\n" });
      const next = await seen(
        "a new release on every node",
        (e) => e.type === "all-synced" && e.release !== release,
      );
      assert.deepEqual(next.nodes, ["leader", "n1", "n2"]);
      await seen("the on-synced run", (e) => e.type === "on-synced-done" && e.release === next.release);
      assert.deepEqual((await readFile(runs, "utf8")).trim().split("\n"), [
        `${release} leader,n1`,
        `${next.release} leader,n1,n2`,
      ]);

      await scontrol("update", "nodename=n1", "state=drain", "reason=sync-cluster test");
      await seen("n1 left", (e) => e.type === "node-left" && e.node === "n1");
    } finally {
      watch.kill("SIGINT");
      await new Promise((r) => watch.once("exit", r));
      await scontrol("update", "nodename=n1", "state=resume");
    }
  });

  test("a job's nodes: named by id, or `current` inside the job", async () => {
    await waitFor("both nodes idle", async () => {
      const { stdout } = await execFileAsync("/usr/bin/sinfo", ["-N", "-h", "-o", "%N %T"], {
        env: cluster.env(),
      });
      return /n1 idle/.test(stdout) && /n2 idle/.test(stdout);
    });
    const { stdout } = await execFileAsync(
      "/usr/bin/sbatch",
      ["--parsable", "--nodes=2", `--chdir=${cluster.shared}`, "--wrap", "sleep 300"],
      { env: cluster.env() },
    );
    const job = stdout.trim().split(";")[0]!;
    try {
      await waitFor(
        "the job running",
        async () =>
          (
            await execFileAsync("/usr/bin/squeue", ["-h", `--jobs=${job}`, "-o", "%T"], {
              env: cluster.env(),
            })
          ).stdout.trim() === "RUNNING",
        60_000,
      );
      await writeInventory({ slurm: { job: Number(job) } });
      const exec = (env: Record<string, string> = {}) =>
        runCli(["exec", "-i", inventory, "--nodes", "workers", "--", "hostname"], project, {
          ...cliEnv(),
          ...env,
        });
      const byId = await exec();
      assert.equal(byId.code, 0, byId.stdout + byId.stderr);
      assert.deepEqual(byId.stdout.trim().split("\n").sort(), ["n1 | n1", "n2 | n2"]);

      await writeInventory({ slurm: { job: "current" } });
      const outside = await exec();
      assert.equal(outside.code, 2);
      assert.match(
        outside.stderr,
        /\(key workers\.slurm\): `job: current` means the Slurm job .* SLURM_JOB_ID is not set/,
      );
      const inside = await runCli(["status", "--json", "-i", inventory], project, {
        ...cliEnv(),
        SLURM_JOB_ID: job,
      });
      const nodes = (JSON.parse(inside.stdout) as { nodes: { node: string }[] }).nodes.map((n) => n.node);
      assert.deepEqual(nodes, ["leader", "n1", "n2"]);
    } finally {
      await execFileAsync("/usr/bin/scancel", [job], { env: cluster.env() });
    }
  });
});
