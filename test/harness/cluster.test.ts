import assert from "node:assert/strict";
import { test } from "node:test";
import { type Cluster, sshdAvailable, startCluster } from "./cluster.js";

test("the harness starts, stops and restarts real sshd workers", {
  skip: !sshdAvailable() && "sshd is not installed",
}, async () => {
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster({ workers: 2 });
    const [w1, w2] = cluster.workers as [Cluster["workers"][0], Cluster["workers"][0]];
    for (const w of [w1, w2]) assert.equal((await cluster.runOnWorker(w, "echo hi")).stdout, "hi\n");
    const toil = await cluster.runOnWorker(w1, `${w1.python()} -c "import toil, sys; print(sys.prefix)"`);
    assert.equal(toil.stdout.trim(), w1.venv, toil.stderr);
    await w1.stop();
    assert.notEqual((await cluster.runOnWorker(w1, "true")).code, 0);
    await w1.start();
    assert.equal((await cluster.runOnWorker(w1, "echo back")).stdout, "back\n", "same port, same host key");
    const w3 = await cluster.addWorker();
    assert.equal((await cluster.runOnWorker(w3, "echo new")).stdout, "new\n");
    const pids = cluster.workers.map((w) => w.pid()!);
    await cluster.stop();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0));
  } finally {
    await cluster?.stop();
  }
});
