import assert from "node:assert/strict";
import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { InventoryError } from "../../src/core/errors.js";
import { loadInventory } from "../../src/inventory/load.js";
import { clusterShellConfig, clusterShellEnv, withoutNodeset } from "../fixtures/clustershell.js";

/** Node sets and ClusterShell groups in an inventory read from a file, groups asked of the real nodeset. */

const GROUPS = "compute: node[01-04]\ngpu: node[03-04],gpu1\nempty:\n";

async function inventoryWith(text: string, files: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sc-nodesets-"));
  await writeFile(join(dir, "sync-cluster.yaml"), text);
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), content);
    await chmod(join(dir, name), 0o755);
  }
  return join(dir, "sync-cluster.yaml");
}

async function loadError(file: string, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    await loadInventory({ explicitPath: file, env });
  } catch (error) {
    assert.ok(error instanceof InventoryError, String(error));
    return error.message;
  }
  assert.fail("expected an InventoryError");
}

describe("an inventory with node sets and ClusterShell groups", { skip: withoutNodeset }, () => {
  test("listed workers: a node set, a group and a set operation, each node with its entry's keys", async () => {
    const env = clusterShellEnv(await clusterShellConfig(GROUPS));
    const file = await inventoryWith(
      [
        "defaults:",
        "  user: ubuntu",
        "workers:",
        "  - head[1-2]",
        "  - host: '@compute!@gpu'",
        "    port: 2222",
        "  - '@gpu'",
        "",
      ].join("\n"),
    );
    const inventory = await loadInventory({ explicitPath: file, env });
    assert.deepEqual(
      inventory.workers.map((w) => [w.name, w.host, w.port, w.user]),
      [
        ["head1", "head1", 22, "ubuntu"],
        ["head2", "head2", 22, "ubuntu"],
        ["node01:2222", "node01", 2222, "ubuntu"],
        ["node02:2222", "node02", 2222, "ubuntu"],
        ["gpu1", "gpu1", 22, "ubuntu"],
        ["node03", "node03", 22, "ubuntu"],
        ["node04", "node04", 22, "ubuntu"],
      ],
    );
  });

  test("a group that cannot be looked up names the file, line and key", async () => {
    const env = clusterShellEnv(await clusterShellConfig(GROUPS));
    const file = await inventoryWith("workers:\n  - w1\n  - host: '@nope'\n  - '@empty'\n");
    assert.match(
      await loadError(file, env),
      /sync-cluster\.yaml:3:5 \(key workers\[1\]\.host\): ClusterShell's groups \(.*\) have no group @nope \(groups: @compute, @empty, @gpu\)/,
    );
    const empty = await inventoryWith("workers:\n  - w1\n  - '@empty'\n");
    assert.match(
      await loadError(empty, env),
      /sync-cluster\.yaml:3:5 \(key workers\[1\]\): @empty is empty in ClusterShell's groups/,
    );
  });

  test("without ClusterShell, a group is an error saying what to install; plain node sets need nothing", async () => {
    const noPath = { PATH: await mkdtemp(join(tmpdir(), "sc-nopath-")), HOME: "/nonexistent-home" };
    const file = await inventoryWith("workers:\n  - node[1-2]\n  - '@compute'\n");
    assert.match(
      await loadError(file, noPath),
      /sync-cluster\.yaml:3:5 \(key workers\[1\]\): @compute is a ClusterShell group: install ClusterShell \(Debian: clustershell\) or list the nodes/,
    );
    const plain = await inventoryWith("workers:\n  - node[1-2]\n");
    const inventory = await loadInventory({ explicitPath: plain, env: noPath });
    assert.deepEqual(
      inventory.workers.map((w) => w.name),
      ["node1", "node2"],
    );
    // Commands that reach no node (`resolve`) do not ask ClusterShell.
    const unlisted = await loadInventory({ explicitPath: file, env: noPath, listWorkers: false });
    assert.deepEqual(
      unlisted.workers.map((w) => w.name),
      ["node1", "node2"],
    );
  });

  test("a workers command may print node sets and groups, one a line", async () => {
    const env = { ...clusterShellEnv(await clusterShellConfig(GROUPS)), USER: "tester" };
    const file = await inventoryWith("workers:\n  command: ./list\n", {
      list: "#!/bin/sh\necho 'n[1-2]'\necho 'alice@@gpu:2222'\necho '@compute!node0[1-3]'\n",
    });
    const inventory = await loadInventory({ explicitPath: file, env });
    assert.deepEqual(
      inventory.workers.map((w) => [w.name, w.user, w.port]),
      [
        ["n1", "tester", 22],
        ["n2", "tester", 22],
        ["gpu1:2222", "alice", 2222],
        ["node03:2222", "alice", 2222],
        ["node04:2222", "alice", 2222],
        ["node04", "tester", 22],
      ],
    );
    const unknown = await inventoryWith("workers:\n  command: echo n1; echo @nope\n");
    assert.match(
      await loadError(unknown, env),
      /sync-cluster\.yaml:2:3 \(key workers\.command\): line 2 of the output of `echo n1; echo @nope` \(`@nope`\): ClusterShell's groups .* have no group @nope/,
    );
  });
});
