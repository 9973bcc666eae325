import { spawnSync } from "node:child_process";
import { mkdir, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BIN } from "../fixtures/cli.js";
import { makePackageProject, QUICK_SORT, SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";
import {
  type JobReport,
  REPORTING_WORKFLOW,
  type ToilRun,
  toilRunOnGridEngine,
  toilRunOnSlurm,
} from "../fixtures/reporting-workflow.js";
import { sshdAvailable, startCluster } from "./cluster.js";
import { startGridEngineCluster, whyGridEngineUnavailable } from "./grid-engine-cluster.js";
import { startSlurmCluster, whySlurmUnavailable } from "./slurm-cluster.js";

/**
 * `npm run demo`: the seed's package-hierarchy workflow on a local cluster with the real CLI.
 * Where Slurm can start (root, Debian's slurm and munge), a Toil run with --batchSystem slurm
 * whose jobs land on several nodes; elsewhere three sshd workers and a Toil run on one of them.
 * `--scheduler grid_engine` runs the same on a Grid Engine cluster, with TOIL_CHECK_ENV=True.
 */

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Runs the CLI; returns whether its exit status was the expected one. */
function step(
  title: string,
  args: string[],
  cwd: string,
  expected = 0,
  env: Record<string, string> = {},
): boolean {
  const shown = Object.entries(env).map(([k, v]) => `${k}=${v} `);
  say(`\n$ ${shown.join("")}sync-cluster ${args.join(" ")}    # ${title}`);
  const r = spawnSync(BIN, args, { cwd, stdio: "inherit", env: { ...process.env, PYTHONPATH: "", ...env } });
  return (r.status ?? 1) === expected;
}

function jobTable(jobs: readonly JobReport[]): string {
  const rows = [
    ["job", "node", "python", "version", "imported from"],
    ...[...jobs]
      .sort((a, b) => a.tag.localeCompare(b.tag))
      .map((j) => [j.tag, j.host, j.python, String(j.version), j.file]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function slurmDemo(): Promise<boolean> {
  say(
    "Starting a Slurm cluster: munged, slurmctld, and the nodes leader, n1, n2, n3, each a Linux UTS\n" +
      "and mount namespace with its own hostname, sshd and private /srv/sc (its venv and deploy dir)...",
  );
  const cluster = await startSlurmCluster({ nodes: 3, cpus: 1, memoryMb: 1000 });
  try {
    const project = join(cluster.leader.privateDir, "my_project");
    await makePackageProject(project);
    await writeTree(project, {
      "workflow/main.py": REPORTING_WORKFLOW,
      "util/sort/quick.py": `${QUICK_SORT}\nVERSION = 1\n`,
    });
    const inventory = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "my_project", python: SYSTEM_PYTHON },
    });
    say(`The seed's my_project is the leader's /srv/sc/my_project; the inventory is ${inventory}.`);
    const sc = (title: string, args: string[], expected = 0) =>
      step(title, [...args, "-i", inventory], project, expected);
    const toil = async (title: string): Promise<boolean> => {
      say(
        `\n[leader]$ . /srv/sc/venv/bin/activate && python -m workflow.main ./jobstore --batchSystem slurm ...    # ${title}`,
      );
      const run = await toilRunOnSlurm(cluster);
      if (run.code !== 0) {
        say(`the run failed:\n${run.log}`);
        return false;
      }
      say(jobTable(run.jobs));
      return true;
    };
    const results = [
      sc("the module set, as python -m workflow.main imports it", ["resolve"]),
      sc("not ready yet: jobs would run /usr/bin/_toil_worker under the system python", ["check"], 1),
      sc("give every venv Toil's worker entry point", ["check", "--fix"]),
      sc("ship it to the leader and every node", ["push"]),
      await toil("every job on a Slurm node imports the release"),
    ];
    say("\n# an edit: util/sort/quick.py now says VERSION = 2");
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 2\n`);
    results.push(
      sc("only the changed file travels", ["push"]),
      await toil("the next run imports the new code"),
      sc("what every node runs", ["status"]),
    );
    return results.every(Boolean);
  } finally {
    await cluster.stop();
  }
}

async function gridEngineDemo(): Promise<boolean> {
  say(
    "Starting a Grid Engine cluster: sge_qmaster on the leader and the exec hosts g1, g2, each a Linux\n" +
      "network, UTS and mount namespace with its own address, hostname, sshd and private /srv/sc...",
  );
  const cluster = await startGridEngineCluster({ nodes: 2, slots: 1 });
  try {
    const project = join(cluster.leader.privateDir, "my_project");
    await makePackageProject(project);
    await writeTree(project, {
      "workflow/main.py": REPORTING_WORKFLOW,
      "util/sort/quick.py": `${QUICK_SORT}\nVERSION = 1\n`,
    });
    // qsub -cwd starts jobs in the leader's working directory: here an empty one on each exec host.
    for (const n of cluster.nodes) await mkdir(join(n.privateDir, "my_project"));
    const inventory = cluster.writeInventory({
      project: {
        root: project,
        entry: "-m workflow.main",
        name: "my_project",
        python: SYSTEM_PYTHON,
        batchSystem: "grid_engine",
      },
    });
    say(`The seed's my_project is the leader's /srv/sc/my_project; the inventory is ${inventory}.`);
    const sc = (title: string, args: string[], expected = 0, env: Record<string, string> = {}) =>
      step(title, [...args, "-i", inventory], project, expected, env);
    const checkEnv = { TOIL_CHECK_ENV: "True" };
    const toil = async (title: string): Promise<boolean> => {
      say(
        `\n[leader]$ . /srv/sc/venv/bin/activate && export TOIL_CHECK_ENV=True && python -m workflow.main ./jobstore --batchSystem grid_engine ...    # ${title}`,
      );
      return showRun(await toilRunOnGridEngine(cluster));
    };
    const results = [
      sc("the module set, as python -m workflow.main imports it", ["resolve"]),
      sc(
        "give every venv Toil's worker entry point (the run's environment is not there yet)",
        ["check", "--fix"],
        1,
      ),
      sc("ship it to the leader and every exec host", ["push"]),
      sc("still not ready: Grid Engine's login shell never puts the venv on a job's PATH", ["check"], 1),
      sc("ready: Toil will submit /srv/sc/venv/bin/_toil_worker", ["check"], 0, checkEnv),
      await toil("every job on an exec host imports the release"),
    ];
    say("\n# an edit: util/sort/quick.py now says VERSION = 2");
    await writeFile(join(project, "util/sort/quick.py"), `${QUICK_SORT}\nVERSION = 2\n`);
    results.push(
      sc("only the changed file travels", ["push"]),
      await toil("the next run imports the new code"),
      sc("what every node runs", ["status"]),
    );
    return results.every(Boolean);
  } finally {
    await cluster.stop();
  }
}

function showRun(run: ToilRun): boolean {
  if (run.code !== 0) {
    say(`the run failed:\n${run.log}`);
    return false;
  }
  say(jobTable(run.jobs));
  return true;
}

async function sshDemo(): Promise<boolean> {
  say("Starting 3 workers (one sshd each on 127.0.0.1, each with a --system-site-packages venv)...");
  const cluster = await startCluster({ workers: 3 });
  try {
    const project = await realpath(await tempDir("demo"));
    await makePackageProject(project);
    const inventory = cluster.writeInventory({
      project: { root: project, entry: "-m workflow.main", name: "my_project", python: SYSTEM_PYTHON },
    });
    say(`The seed's my_project is in ${project}; the inventory is ${inventory}.`);
    const sc = (title: string, args: string[]) => step(title, [...args, "-i", inventory], project);
    return [
      sc("the module set, as python -m workflow.main imports it", ["resolve"]),
      sc("every node ready?", ["check"]),
      sc("ship it", ["push"]),
      sc("again: nothing to send", ["push"]),
      sc("importable on every worker, from any directory", [
        "exec",
        "--",
        "cd / && python -c 'import util.sort.quick as q; print(q.quick_sort([3, 1, 2]))'",
      ]),
      sc("a real Toil run on w1", [
        "ssh",
        "w1",
        "--",
        "cd $(mktemp -d) && python -m workflow.main ./jobstore --batchSystem single_machine --clean always 2>/dev/null",
      ]),
      sc("what every node runs", ["status"]),
    ].every(Boolean);
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { scheduler: { type: "string", default: "slurm" } } });
  if (values.scheduler !== "slurm" && values.scheduler !== "grid_engine") {
    process.stderr.write(`--scheduler must be slurm or grid_engine, not ${values.scheduler}\n`);
    process.exit(2);
  }
  if (!sshdAvailable()) {
    process.stderr.write("The demo needs OpenSSH's sshd: run .ci/install-deps (as root) first.\n");
    process.exit(2);
  }
  if (values.scheduler === "grid_engine") {
    const noGridEngine = whyGridEngineUnavailable();
    if (noGridEngine) {
      process.stderr.write(`Grid Engine cannot start here (${noGridEngine}).\n`);
      process.exit(2);
    }
    say("This is the Grid Engine demo: Toil's --batchSystem grid_engine on a local Grid Engine cluster.\n");
    const ok = await gridEngineDemo();
    say(
      `\nGrid Engine demo finished: ${ok ? "every step did what it should." : "some steps failed (above)."}`,
    );
    process.exitCode = ok ? 0 : 1;
    return;
  }
  const noSlurm = whySlurmUnavailable();
  if (noSlurm) say(`Slurm cannot start here (${noSlurm}): this is the SSH-only demo.\n`);
  else say("This is the Slurm demo: Toil's --batchSystem slurm on a local Slurm cluster.\n");
  const ok = noSlurm ? await sshDemo() : await slurmDemo();
  say(
    `\n${noSlurm ? "SSH-only" : "Slurm"} demo finished: ${ok ? "every step did what it should." : "some steps failed (above)."}`,
  );
  process.exitCode = ok ? 0 : 1;
}

await main();
