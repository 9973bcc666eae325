import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { chooseNodes } from "../../src/cli/node-selection.js";
import { UsageError } from "../../src/core/errors.js";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { clusterShellConfig, clusterShellEnv, withoutNodeset } from "../fixtures/clustershell.js";

/** --nodes with ClusterShell groups, looked up by the real nodeset before selecting. */

const node = (name: string): NodeSpec => ({
  name,
  role: "worker",
  host: name,
  port: 22,
  user: "u",
  identityFiles: [],
  knownHosts: "/k",
  venv: "~/venv",
  deployDir: "~/.sync-cluster",
  acceptNewHostKeys: false,
  connectTimeout: 10,
  keep: 3,
});
const nodes = ["node01", "node02", "node03", "w1"].map(node);

async function refusal(selector: string, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    await chooseNodes(nodes, selector, env);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  assert.fail("expected a UsageError");
}

describe("chooseNodes", { skip: withoutNodeset }, () => {
  test("groups are asked of nodeset, then combined with the other terms", async () => {
    const env = clusterShellEnv(await clusterShellConfig("compute: node[01-08]\ngpu: node03\n"));
    const picked = await chooseNodes(nodes, "@compute!@gpu,w1", env);
    assert.deepEqual(
      picked.map((n) => n.name),
      ["node01", "node02", "w1"],
    );
    assert.match(await refusal("@nope", env), /^`@nope`: ClusterShell's groups .* have no group @nope/);
    // A selector without groups does not need ClusterShell.
    const noPath = { PATH: await mkdtemp(join(tmpdir(), "sc-nopath-")) };
    assert.deepEqual(
      (await chooseNodes(nodes, "node[01-02]", noPath)).map((n) => n.name),
      ["node01", "node02"],
    );
    assert.match(
      await refusal("@compute", noPath),
      /@compute is a ClusterShell group: install ClusterShell \(Debian: clustershell\) or list the nodes/,
    );
  });
});
