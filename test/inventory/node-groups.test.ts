import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { lookUpNodeGroups, NodeGroupError } from "../../src/inventory/node-groups.js";
import { clusterShellConfig, clusterShellEnv, withoutNodeset } from "../fixtures/clustershell.js";

/** Groups looked up by the real `nodeset`, in a configuration written to a temporary directory. */

/** Whether a process runs after up to 2 s; a zombie waiting for its reaper has stopped. */
async function stillRunning(pid: number): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    if (stat === undefined || / Z /.test(stat.slice(stat.lastIndexOf(")")))) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

async function problem(groups: string[], env: NodeJS.ProcessEnv, timeoutSeconds?: number): Promise<string> {
  try {
    await lookUpNodeGroups(groups, { env, cwd: tmpdir(), ...(timeoutSeconds ? { timeoutSeconds } : {}) });
  } catch (error) {
    assert.ok(error instanceof NodeGroupError, String(error));
    return error.message;
  }
  assert.fail("expected a NodeGroupError");
}

describe("lookUpNodeGroups", { skip: withoutNodeset }, () => {
  test("each group's nodes, as ClusterShell's configuration gives them", async () => {
    const dir = await clusterShellConfig("compute: node[01-04]\ngpu: node[03-04],gpu1\nnested: @gpu,extra\n");
    const members = await lookUpNodeGroups(["@compute", "@local:gpu", "@nested", "@compute"], {
      env: clusterShellEnv(dir),
      cwd: tmpdir(),
    });
    assert.deepEqual(Object.fromEntries(members), {
      "@compute": ["node01", "node02", "node03", "node04"],
      "@local:gpu": ["gpu1", "node03", "node04"],
      "@nested": ["extra", "gpu1", "node03", "node04"],
    });
  });

  test("an unknown group, an empty one and an unknown source are told apart", async () => {
    const dir = await clusterShellConfig("compute: node[01-04]\nempty:\n");
    const env = clusterShellEnv(dir);
    assert.match(
      await problem(["@nope"], env),
      new RegExp(
        `ClusterShell's groups \\(\\$CLUSTERSHELL_CFGDIR=${dir}, .*\\) have no group @nope \\(groups: @compute, @empty\\)`,
      ),
    );
    assert.match(await problem(["@local:nope"], env), /have no group @local:nope \(groups: @local:compute/);
    assert.match(await problem(["@empty"], env), /@empty is empty in ClusterShell's groups/);
    assert.match(
      await problem(["@other:x"], env),
      /`nodeset -e @other:x` exited with status 1; its stderr:\n {2}nodeset: Unknown group source: "other"/,
    );
  });

  test("without ClusterShell installed, the message says what to install", async () => {
    const empty = await mkdtemp(join(tmpdir(), "sc-nopath-"));
    assert.equal(
      await problem(["@compute"], { PATH: empty, HOME: empty }),
      "@compute is a ClusterShell group: install ClusterShell (Debian: clustershell) or list the nodes",
    );
  });

  test("a stuck upcall is killed after the timeout, with what it started", async () => {
    const dir = await clusterShellConfig(
      "",
      // ClusterShell reads `$$` as a `$`; exec leaves one process, the sleep, under that pid.
      "[slow]\nmap: echo $$$$ > $CFGDIR/upcall.pid; exec sleep 60\n",
    );
    const started = Date.now();
    assert.match(
      // Long enough for nodeset (Python) to reach its upcall on a busy machine.
      await problem(["@slow:x"], clusterShellEnv(dir), 5),
      /`nodeset -e @slow:x` did not finish within 5s and was killed \(a slow upcall/,
    );
    assert.ok(Date.now() - started < 20_000);
    const pid = Number((await readFile(join(dir, "upcall.pid"), "utf8")).trim());
    assert.ok(pid > 1);
    assert.equal(await stillRunning(pid), false, "the upcall's sleep is killed too");
  });
});
