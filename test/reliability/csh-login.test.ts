import assert from "node:assert/strict";
import { realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BIN, runCli } from "../fixtures/cli.js";
import { makePackageProject, SYSTEM_PYTHON, tempDir, writeOtherPython } from "../fixtures/projects.js";
import { underPty } from "../fixtures/pty.js";
import { type Cluster, sshdAvailable, startCluster, type WorkerHandle } from "../harness/cluster.js";

/**
 * A worker whose login shell is tcsh, as some clusters still give their users. sshd runs every
 * command through it, and csh and tcsh cannot read a newline inside quotes ("Unmatched '") and
 * expand `!` even there: a command line holding either fails on such a node unless it is
 * rewritten for it.
 */

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", PYTHONPATH: "" };

describe("a worker whose login shell is tcsh", { skip: !sshdAvailable() && "sshd is not installed" }, () => {
  let cluster: Cluster;
  let project: string;
  let w1: WorkerHandle;
  let inventory: string;

  before(async () => {
    cluster = await startCluster({ workers: 1, loginShell: "/usr/bin/tcsh" });
    w1 = cluster.workers[0]!;
    project = await realpath(await tempDir("csh-login"));
    await makePackageProject(project);
    inventory = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "proj", python: SYSTEM_PYTHON },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("push, exec, ssh -- CMD and status work through it", async () => {
    // The shell sshd runs is tcsh indeed: it sets $shell, which no POSIX shell does.
    const probe = await cluster.runOnWorker(w1, "echo $shell");
    assert.equal(probe.stdout.trim(), "/usr/bin/tcsh", probe.stderr);

    const push = await runCli(["push", "-i", inventory, "--no-check"], project, env);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    assert.match(push.stdout, /1 worker\(s\) converged/);

    const exec = await runCli(
      [
        "exec",
        "-i",
        inventory,
        "--",
        "python -c 'import workflow.main, sys; print(sys.executable)' && echo \"imported!\"",
      ],
      project,
      env,
    );
    assert.equal(exec.code, 0, exec.stdout + exec.stderr);
    assert.equal(exec.stdout, `w1 | ${w1.venv}/bin/python\nw1 | imported!\n`);

    const ssh = await runCli(
      ["ssh", "w1", "-i", inventory, "--", "python", "-c", "import util.sort.quick as q; print(q.__name__)"],
      project,
      env,
    );
    assert.equal(ssh.code, 0, ssh.stdout + ssh.stderr);
    assert.equal(ssh.stdout, "util.sort.quick\n");

    const status = await runCli(["status", "-i", inventory, "--json"], project, env);
    const report = JSON.parse(status.stdout) as {
      leaderRelease: string;
      nodes: { release?: { current: string | null } }[];
    };
    assert.equal(report.nodes[0]?.release?.current, report.leaderRelease, status.stdout + status.stderr);
  });

  test("the interactive session runs ~/.tcshrc, then activates the venv, which stays first", async () => {
    const push = await runCli(["push", "-i", inventory, "--no-check"], project, env);
    assert.equal(push.code, 0, push.stdout + push.stderr);
    // As `module load python` or conda's csh hook do: another python first on PATH.
    const other = writeOtherPython(join(w1.home!, "other-python"), () => "not the venv");
    await writeFile(join(w1.home!, ".tcshrc"), `setenv PATH "${other}:$PATH"\nset prompt = "w1-tcsh> "\n`);
    const driven = await underPty(
      [BIN, "ssh", "w1", "-i", inventory],
      "which python\\npython -c 'import util.sort.quick; print(6*7)'\\npwd\\nexit 3",
      { cwd: project, env: { ...env, TERM: "xterm" } },
    );
    assert.equal(driven.code, 3, driven.stdout + driven.stderr);
    assert.match(driven.stdout, new RegExp(`^${w1.venv}/bin/python\\r?$`, "m"));
    assert.match(driven.stdout, /^42\r?$/m);
    assert.match(driven.stdout, /\(venv\) w1-tcsh> /);
    assert.match(driven.stdout, new RegExp(`^${w1.deployDir}/proj\\r?$`, "m"));
    assert.doesNotMatch(driven.stdout, /not the venv/);
  });
});
