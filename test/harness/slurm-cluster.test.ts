import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type SlurmCluster, startSlurmCluster, whySlurmUnavailable } from "./slurm-cluster.js";

function toilMissing(): string | false {
  try {
    execFileSync("/usr/bin/python3", ["-c", "import toil.batchSystems.slurm"], { stdio: "pipe" });
    return false;
  } catch {
    return "Toil is not installed for /usr/bin/python3 (see .ci/install-deps)";
  }
}

const skip = whySlurmUnavailable();
let cluster: SlurmCluster;

before(async () => {
  if (skip) return;
  // Two CPUs a node whatever the machine: four one-core Toil jobs fill both nodes.
  cluster = await startSlurmCluster({ nodes: 2, cpus: 2, memoryMb: 1000 });
  for (const n of [cluster.leader, ...cluster.nodes]) writeFileSync(join(n.privateDir, "marker"), n.name);
});

after(async () => {
  await cluster?.stop();
});

test("every node's sshd logs in to that node: its hostname, its /srv/sc, its venv", { skip }, async () => {
  for (const n of [cluster.leader, ...cluster.nodes]) {
    const r = await cluster.ssh(
      n,
      "hostname; cat /srv/sc/marker; echo; /srv/sc/venv/bin/python -c 'import sys, toil; print(sys.prefix)'",
    );
    assert.equal(r.stdout, `${n.name}\n${n.name}\n/srv/sc/venv\n`, r.stderr);
  }
});

test("a Slurm job on each node sees that node's hostname and private /srv/sc", { skip }, async () => {
  const results = await Promise.all(
    cluster.nodes.map(async (n) => {
      const out = join(cluster.shared, `job-${n.name}.out`);
      const r = await cluster.leader.exec(
        `sbatch --wait --parsable -w ${n.name} -o ${out} --wrap 'hostname; cat /srv/sc/marker'`,
      );
      assert.equal(r.code, 0, `sbatch on ${n.name}: ${r.stdout}${r.stderr}\n${cluster.logs()}`);
      return { node: n.name, jobId: r.stdout.trim(), out: readFileSync(out, "utf8") };
    }),
  );
  for (const { node, jobId, out } of results) {
    assert.deepEqual(out.trim().split("\n"), [node, node]);
    const job = await cluster.leader.exec(`scontrol show job ${jobId}`);
    assert.match(job.stdout, /JobState=COMPLETED/);
    assert.match(job.stdout, new RegExp(`\\bNodeList=${node}\\b`));
  }
});

const WORKFLOW = `
import json, socket, sys, time
from toil.common import Toil
from toil.job import Job

def child(job, i):
    time.sleep(1)
    return socket.gethostname()

def root(job, n):
    return [job.addChildJobFn(child, i).rv() for i in range(n)]

if __name__ == "__main__":
    parser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    with Toil(options) as toil:
        hosts = toil.start(Job.wrapJobFn(root, 4))
    with open(options.out, "w") as f:
        json.dump(hosts, f)
`;

test("Toil 5.9 runs a workflow with --batchSystem slurm across the nodes", {
  skip: skip || toilMissing(),
  // About 40 s alone; a machine shared with other suites has taken over 100 s.
  timeout: 300_000,
}, async () => {
  const wf = join(cluster.shared, "wf.py");
  const out = join(cluster.shared, "hosts.json");
  writeFileSync(wf, WORKFLOW);
  const r = await cluster.leader.exec(
    [
      `/usr/bin/python3 ${wf} ${join(cluster.shared, "jobstore")} --out ${out}`,
      "--batchSystem slurm --statePollingWait 1 --maxLocalJobs 8",
      "--defaultMemory 100M --defaultDisk 10M --clean always --logLevel INFO",
    ].join(" "),
  );
  const log = r.stderr
    .split("\n")
    .filter((l) => !l.includes("accounting storage is disabled"))
    .join("\n");
  assert.equal(r.code, 0, `${log}\n${cluster.logs()}`);
  const hosts = JSON.parse(readFileSync(out, "utf8")) as string[];
  assert.equal(hosts.length, 4);
  for (const h of hosts) assert.ok(["n1", "n2"].includes(h), `job ran on ${h}`);
  assert.ok(new Set(hosts).size >= 2, `all jobs ran on ${hosts[0]}: ${log}`);
});
