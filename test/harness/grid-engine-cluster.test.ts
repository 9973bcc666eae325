import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  type GridEngineCluster,
  startGridEngineCluster,
  whyGridEngineUnavailable,
} from "./grid-engine-cluster.js";

const LEADER_PATH = "/srv/sc/venv/bin:/leader-only/bin:/usr/bin:/bin";
const skip = whyGridEngineUnavailable();
if (skip && process.env.CI === "true") throw new Error(`CI must run the Grid Engine tests: ${skip}`);
let cluster: GridEngineCluster;

before(async () => {
  if (skip) return;
  cluster = await startGridEngineCluster({ nodes: 2 });
  for (const n of [cluster.leader, ...cluster.nodes]) writeFileSync(join(n.privateDir, "marker"), n.name);
});

after(async () => {
  await cluster?.stop();
});

test("every node's sshd, at its own address, logs in to that node: its hostname, its /srv/sc, its venv", {
  skip,
}, async () => {
  for (const n of [cluster.leader, ...cluster.nodes]) {
    const r = await cluster.ssh(
      n,
      "hostname; cat /srv/sc/marker; echo; /srv/sc/venv/bin/python -c 'import sys, toil; print(sys.prefix)'",
    );
    assert.equal(r.stdout, `${n.name}\n${n.name}\n/srv/sc/venv\n`, r.stderr);
  }
});

test("qsub -V -b y on each exec host: its hostname and /srv/sc, the leader's variables, but a login shell's PATH", {
  skip,
}, async () => {
  for (const n of cluster.nodes) {
    const out = join(cluster.shared, `job-${n.name}.out`);
    const r = await cluster.leader.exec(
      `cd ${cluster.shared} && qsub -sync y -V -b y -j y -cwd -o ${out} -l hostname=${n.name} ` +
        `sh -c 'hostname; cat /srv/sc/marker; echo; echo "$SC_PROBE"; echo "$SGE_O_PATH"; echo "$PATH"'`,
      { PATH: LEADER_PATH, SC_PROBE: "from the leader" },
      60_000,
    );
    assert.equal(r.code, 0, `qsub on ${n.name}: ${r.stdout}${r.stderr}\n${cluster.logs()}`);
    const [host, marker, probe, leaderPath, path] = readFileSync(out, "utf8").trim().split("\n");
    assert.deepEqual([host, marker, probe, leaderPath], [n.name, n.name, "from the leader", LEADER_PATH]);
    // The queue's /bin/sh ran as a login shell: /etc/profile set PATH (the leader's is only SGE_O_PATH).
    assert.ok(!path!.includes("/srv/sc/venv/bin"), path);
    assert.match(path!, /(^|:)\/usr\/bin(:|$)/);
  }
});
