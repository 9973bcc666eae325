import { spawnSync } from "node:child_process";
import { realpath } from "node:fs/promises";
import { join } from "node:path";
import { makePackageProject, SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";
import { sshdAvailable, startCluster } from "./cluster.js";

/**
 * `npm run demo`: the seed's package-hierarchy workflow pushed to a local cluster of three real
 * sshd workers, with the real CLI, then run by Toil on a worker.
 */

const BIN = join(process.cwd(), "bin", "sync-cluster");

function step(title: string, args: string[], cwd: string): number {
  process.stdout.write(`\n$ sync-cluster ${args.join(" ")}    # ${title}\n`);
  const r = spawnSync(BIN, args, { cwd, stdio: "inherit", env: { ...process.env, PYTHONPATH: "" } });
  return r.status ?? 1;
}

async function main(): Promise<void> {
  if (!sshdAvailable()) {
    process.stderr.write("The demo needs OpenSSH's sshd: run .ci/install-deps (as root) first.\n");
    process.exit(2);
  }
  process.stdout.write(
    "Starting 3 workers (one sshd each on 127.0.0.1, each with a --system-site-packages venv)...\n",
  );
  const cluster = await startCluster({ workers: 3 });
  try {
    const project = await realpath(await tempDir("demo"));
    await makePackageProject(project);
    const inventory = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "my_project", python: SYSTEM_PYTHON },
    });
    process.stdout.write(`The seed's my_project is in ${project}; the inventory is ${inventory}.\n`);
    const failures = [
      step("the module set, as python -m workflow.main imports it", ["resolve", "-i", inventory], project),
      step("every node ready?", ["check", "-i", inventory], project),
      step("ship it", ["push", "-i", inventory], project),
      step("again: nothing to send", ["push", "-i", inventory], project),
      step(
        "importable on every worker, from any directory",
        [
          "exec",
          "-i",
          inventory,
          "--",
          "cd / && python -c 'import util.sort.quick as q; print(q.quick_sort([3, 1, 2]))'",
        ],
        project,
      ),
      step(
        "a real Toil run on w1",
        [
          "ssh",
          "w1",
          "-i",
          inventory,
          "--",
          "cd $(mktemp -d) && python -m workflow.main ./jobstore --batchSystem single_machine --clean always 2>/dev/null",
        ],
        project,
      ),
      step("what every node runs", ["status", "-i", inventory], project),
    ].filter((code) => code !== 0).length;
    process.stdout.write(
      failures === 0
        ? "\nDemo finished: every step succeeded.\n"
        : `\nDemo finished with ${failures} failed step(s).\n`,
    );
    process.exitCode = failures === 0 ? 0 : 1;
  } finally {
    await cluster.stop();
  }
}

await main();
