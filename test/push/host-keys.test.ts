import assert from "node:assert/strict";
import { readFile, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadInventory } from "../../src/inventory/load.js";
import { pushAll } from "../../src/push/push.js";
import type { Resolution } from "../../src/resolve/resolver.js";
import { makePackageProject, resolveWorkflowMain, run, tempDir } from "../fixtures/projects.js";
import { type Cluster, sshdAvailable, startCluster } from "../harness/cluster.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };
const BIN = join(process.cwd(), "bin", "sync-cluster");

describe("host keys and bad inventories refuse before anything changes", {
  skip: !sshdAvailable() && "sshd is not installed",
}, () => {
  let cluster: Cluster;
  let project: string;
  let resolution: Resolution;

  before(async () => {
    cluster = await startCluster({ workers: 2 });
    project = await realpath(await tempDir("hostkeys"));
    await makePackageProject(project);
    resolution = await resolveWorkflowMain(project, env);
  });
  after(async () => {
    await cluster?.stop();
  });

  async function deployDirsUntouched(): Promise<void> {
    for (const w of cluster.workers) {
      const r = await cluster.runOnWorker(w, `test -e ${w.deployDir}; echo $?`);
      assert.equal(r.stdout.trim(), "1", `${w.name}'s deploy directory was not created`);
    }
  }

  test("an unknown host key is refused with its fingerprint, and nothing is written", async () => {
    const empty = join(cluster.dir, "empty_known_hosts");
    await writeFile(empty, "");
    cluster.writeInventory({
      project: { root: project, name: "p" },
      extra: { defaults: { knownHosts: empty } },
    });
    const inv = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const outcomes = await pushAll(inv, resolution);
    for (const [i, o] of outcomes.entries()) {
      assert.equal(o.ok, false);
      assert.match(o.error ?? "", /is not in .*empty_known_hosts/);
      assert.ok(o.error?.includes(cluster.hostKeyFingerprint(cluster.workers[i]!)), o.error);
    }
    await deployDirsUntouched();
  });

  test("a changed host key is refused, naming the node's key and the known_hosts line", async () => {
    const forged = join(cluster.dir, "forged_known_hosts");
    const real = await readFile(cluster.knownHosts, "utf8");
    // Same names, another key of the same type: what a man in the middle would present.
    const other = join(cluster.dir, "other_key");
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const otherKey = (await readFile(`${other}.pub`, "utf8")).split(" ").slice(0, 2).join(" ");
    const lines = real
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => `${l.split(" ")[0]} ${otherKey}`);
    await writeFile(forged, `${lines.join("\n")}\n`);
    cluster.writeInventory({
      project: { root: project, name: "p" },
      extra: { defaults: { knownHosts: forged } },
    });
    const inv = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const outcomes = await pushAll(inv, resolution);
    for (const o of outcomes) {
      assert.equal(o.ok, false);
      assert.match(o.error ?? "", /HAS CHANGED/);
      assert.match(o.error ?? "", /forged_known_hosts line 1|forged_known_hosts line 2/);
    }
    await deployDirsUntouched();
  });

  test("--accept-new records unknown keys, and the next run verifies against them", async () => {
    const fresh = join(cluster.dir, "fresh_known_hosts");
    await writeFile(fresh, "");
    cluster.writeInventory({
      project: { root: project, name: "p" },
      extra: { defaults: { knownHosts: fresh } },
    });
    const inv = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const outcomes = await pushAll(inv, resolution, { acceptNew: true });
    assert.ok(
      outcomes.every((o) => o.ok),
      JSON.stringify(outcomes),
    );
    const recorded = await readFile(fresh, "utf8");
    for (const w of cluster.workers) assert.ok(recorded.includes(`[127.0.0.1]:${w.port} ssh-ed25519 `));
    const again = await pushAll(inv, resolution);
    assert.ok(again.every((o) => o.ok && o.result?.status === "unchanged"));
  });

  test("a known_hosts file with hashed names (ssh-keygen -H) verifies the workers; a changed key is still refused", async () => {
    const hashed = join(cluster.dir, "hashed_known_hosts");
    await writeFile(hashed, await readFile(cluster.knownHosts, "utf8"));
    await run("ssh-keygen", ["-H", "-f", hashed]);
    const text = await readFile(hashed, "utf8");
    assert.ok(!text.includes("127.0.0.1") && text.includes("|1|"), "every name is hashed");
    cluster.writeInventory({
      project: { root: project, name: "p" },
      extra: { defaults: { knownHosts: hashed } },
    });
    const inv = await loadInventory({ explicitPath: cluster.inventoryPath, env });
    const outcomes = await pushAll(inv, resolution);
    assert.ok(
      outcomes.every((o) => o.ok),
      JSON.stringify(outcomes),
    );
    // The same hashed names with another key: refused as a changed key, not as an unknown host.
    const other = join(cluster.dir, "other_key_hashed");
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const otherKey = (await readFile(`${other}.pub`, "utf8")).split(" ").slice(0, 2).join(" ");
    const forged = text
      .split("\n")
      .filter((l) => l.startsWith("|1|"))
      .map((l) => `${l.split(" ")[0]} ${otherKey}`);
    await writeFile(hashed, `${forged.join("\n")}\n`);
    const refused = await pushAll(inv, resolution);
    for (const o of refused) assert.match(o.error ?? "", /HAS CHANGED/);
  });

  test("a bad inventory stops the CLI with exit 2, naming the line and key, before any node is contacted", async () => {
    const bad = join(cluster.dir, "bad.yaml");
    const good = await readFile(cluster.inventoryPath, "utf8");
    await writeFile(bad, good.replace(/port: (\d+)/, "port: 99999"));
    const result = await run(BIN, ["push", "-m", "workflow.main", "-i", bad], { cwd: project, env }).catch(
      (e) => e,
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /bad\.yaml:\d+/);
    assert.match(result.stderr, /port/);
  });
});
