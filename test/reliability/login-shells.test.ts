import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BIN, runCli, startCli } from "../fixtures/cli.js";
import { makePackageProject, SYSTEM_PYTHON, tempDir, writeOtherPython } from "../fixtures/projects.js";
import { underPty } from "../fixtures/pty.js";
import { waitFor } from "../fixtures/wait.js";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../harness/cluster.js";

/**
 * Workers whose login files do what users' login files do: print a banner, print far too much,
 * never finish, hide python, put another python first on PATH. sshd runs every command through
 * the login shell (bash, which reads ~/.bashrc for ssh commands), so each of these meets the agent's
 * start and the `ssh` and `exec` sessions for real. Each worker has a HOME of its own.
 */

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", PYTHONPATH: "" };

describe("login shells that print, hang or change PATH, on real sshd workers", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let project: string;

  const homeOf = (w: WorkerHandle) => w.home!;
  const bashrc = (w: WorkerHandle, text: string) => writeFile(join(homeOf(w), ".bashrc"), text);
  const inventory = (extra: Record<string, unknown> = {}, workers = cluster.workers) =>
    cluster.writeInventory({
      workers,
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
      extra,
    });

  before(async () => {
    cluster = await startCluster({ workers: 3 });
    project = await realpath(await tempDir("login-shells"));
    await makePackageProject(project);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a ~/.bashrc that prints a banner: push succeeds and warns once, naming the node and the line", async () => {
    const [w1, w2, w3] = cluster.workers as [WorkerHandle, WorkerHandle, WorkerHandle];
    await bashrc(
      w1,
      'echo "Welcome to w1: your quota is 80% full"\nprintf "\\033[1mmodule load python/3.11\\033[0m\\n"\n',
    );
    await bashrc(w2, "");
    await bashrc(w3, "");
    try {
      const inv = inventory();
      const push = await runCli(["push", "-i", inv, "--no-check"], project, env);
      assert.equal(push.code, 0, push.stdout + push.stderr);
      const warnings = push.stderr.split("\n").filter((l) => l.startsWith("warning: "));
      assert.equal(warnings.length, 1, push.stderr);
      assert.match(
        warnings[0]!,
        /^warning: w1: the login shell printed 'Welcome to w1: your quota is 80% full' \(and 1 more line\(s\), 70 B in all\) before the sync-cluster agent started \(set aside; commands run over SSH should print nothing: see the README, Troubleshooting\)$/,
      );
      assert.match(push.stdout, /3 worker\(s\) converged/);

      const json = await runCli(["push", "-i", inv, "--no-check", "--json"], project, env);
      assert.equal(json.code, 0, json.stderr);
      const doc = JSON.parse(json.stdout) as { warnings: string[] };
      assert.equal(
        doc.warnings.filter((w) => w.startsWith("w1: the login shell printed 'Welcome to w1")).length,
        1,
      );

      const check = await runCli(["check", "-i", inv], project, env);
      assert.match(check.stdout, /^w1: warning: the login shell printed 'Welcome to w1/m);
      assert.doesNotMatch(check.stdout, /^w[23]: warning/m);
    } finally {
      await bashrc(w1, "");
    }
  });

  test("watch warns once per node about its login shell, however often it reconnects", async () => {
    const w2 = cluster.workers[1]!;
    await bashrc(w2, "echo 'Last login: yesterday'\n");
    try {
      const inv = inventory({}, [w2]);
      const watch = startCli(["watch", "-i", inv, "--json", "--no-check"], project, env);
      try {
        // w2 has the release from the first test: it is in sync as soon as it has said hello.
        const inSync = () => watch.output().split('"phase":"in-sync"').length - 1;
        await waitFor("w2 in sync", () => inSync() >= 1, 60_000);
        // A dropped connection: the syncer reconnects and meets the same shell again.
        await w2.stop();
        await w2.start();
        await waitFor("w2 back in sync", () => inSync() >= 2, 60_000);
      } finally {
        watch.child.kill("SIGTERM");
        await watch.exited;
      }
      const out = watch.output();
      const warnings = out
        .split("\n")
        .filter((l) => l.includes('"node-warning"'))
        .map((l) => JSON.parse(l) as { node: string; message: string });
      assert.equal(warnings.length, 1, out);
      assert.equal(warnings[0]!.node, "w2");
      assert.match(
        warnings[0]!.message,
        /^the login shell printed 'Last login: yesterday' before the sync-cluster agent started/,
      );
    } finally {
      await bashrc(w2, "");
    }
  });

  test("a ~/.bashrc that prints megabytes, or never lets the agent start, fails that node clearly and quickly", async () => {
    const [w1, w2, w3] = cluster.workers as [WorkerHandle, WorkerHandle, WorkerHandle];
    await bashrc(w1, "");
    await bashrc(w2, "head -c 3000000 /dev/zero | tr '\\0' '#'\n");
    await bashrc(w3, "echo 'Press any key to continue'\nsleep 60\n");
    try {
      // The agent has 6 x connectTimeout to announce itself.
      const inv = inventory({ defaults: { connectTimeout: 2 } });
      const started = Date.now();
      const push = await runCli(["push", "-i", inv, "--no-check", "--json"], project, env);
      const took = Date.now() - started;
      assert.equal(push.code, 1, push.stderr);
      const nodes = (JSON.parse(push.stdout) as { nodes: { node: string; ok: boolean; error?: string }[] })
        .nodes;
      const byName = new Map(nodes.map((n) => [n.node, n]));
      assert.equal(byName.get("w1")?.ok, true, byName.get("w1")?.error);
      assert.match(
        byName.get("w2")?.error ?? "",
        /^the login shell on w2 printed '#{120}\.\.\.' \(1\.\d MiB\) and kept on printing: over 1 MiB before the sync-cluster agent started; check that `ssh NODE true` prints nothing/,
      );
      assert.match(
        byName.get("w3")?.error ?? "",
        /^the login shell on w3 printed 'Press any key to continue' and no sync-cluster agent started within 12s; check that `ssh NODE true` prints nothing and returns at once/,
      );
      assert.ok(took < 40_000, `took ${took} ms`);
    } finally {
      await bashrc(w2, "");
      await bashrc(w3, "");
    }
  });

  test("a node with no python: neither the venv's nor python3 on PATH", async () => {
    const w3 = cluster.workers[2]!;
    // A PATH with a shell and nothing else, and a venv that is not there.
    const onlySh = join(homeOf(w3), "only-sh");
    await mkdir(onlySh, { recursive: true });
    await symlink("/bin/sh", join(onlySh, "sh")).catch(() => undefined);
    await bashrc(w3, `PATH=${onlySh}\n`);
    try {
      const inv = inventory({}, [w3]);
      await writeFile(inv, readFileSync(inv, "utf8").replace(`venv: ${w3.venv}`, "venv: /nonexistent/venv"));
      const push = await runCli(["push", "-i", inv, "--no-check"], project, env);
      assert.equal(push.code, 1);
      assert.match(
        push.stdout,
        new RegExp(
          `w3 +FAILED +on w3, the node has no python for the sync-cluster agent: sync-cluster: no python to run the agent: neither /nonexistent/venv/bin/python nor python3 on PATH \\(${onlySh}\\); install python3 there`,
        ),
      );
    } finally {
      await bashrc(w3, "");
    }
  });

  describe("a ~/.bashrc that puts another python first", () => {
    let inv: string;
    let w1: WorkerHandle;

    before(async () => {
      w1 = cluster.workers[0]!;
      inv = inventory();
      const push = await runCli(["push", "-i", inv, "--no-check"], project, env);
      assert.equal(push.code, 0, push.stdout + push.stderr);
      // pyenv's shims, `conda init` and `module load python` all do this.
      const fake = writeOtherPython(
        join(homeOf(w1), "other-python", "bin"),
        (name) => `Python 0.0 (not the venv's: ${name} from ~/.bashrc)`,
        ["python", "python3", "pip"],
      );
      await bashrc(w1, `export PATH="${fake}:$PATH"\nPS1='w1-prompt$ '\n`);
    });
    after(async () => {
      await rm(join(homeOf(w1), "other-python"), { recursive: true, force: true });
      await bashrc(w1, "");
    });

    test("ssh -- CMD and exec run the venv's python", async () => {
      const ssh = await runCli(
        ["ssh", "w1", "-i", inv, "--", "python", "-c", "import util.sort.quick, sys; print(sys.executable)"],
        project,
        env,
      );
      assert.equal(ssh.code, 0, ssh.stdout + ssh.stderr);
      assert.equal(ssh.stdout, `${w1.venv}/bin/python\n`);
      const exec = await runCli(
        [
          "exec",
          "-i",
          inv,
          "--nodes",
          "w1",
          "--",
          "python -c 'import workflow.main, sys; print(sys.executable)' && command -v python3",
        ],
        project,
        env,
      );
      assert.equal(exec.code, 0, exec.stdout + exec.stderr);
      assert.equal(exec.stdout, `w1 | ${w1.venv}/bin/python\nw1 | ${w1.venv}/bin/python3\n`);
    });

    test("the interactive session has the venv's python first and the venv in the prompt", async () => {
      const driven = await underPty(
        [BIN, "ssh", "w1", "-i", inv],
        "command -v python\\npython -c 'import util.sort.quick; print(\"imported\", 6*7)'\\npwd\\nexit 3",
        { cwd: project, env: { ...env, TERM: "xterm" } },
      );
      assert.equal(driven.code, 3, driven.stdout + driven.stderr);
      assert.match(driven.stdout, new RegExp(`^${w1.venv}/bin/python\\r?$`, "m"));
      assert.match(driven.stdout, /imported 42/);
      assert.match(driven.stdout, /\(venv\) w1-prompt\$ /);
      assert.match(driven.stdout, new RegExp(`^${w1.deployDir}/proj\\r?$`, "m"));
      assert.doesNotMatch(driven.stdout, /Python 0\.0/);
    });
  });
});
