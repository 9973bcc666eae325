import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadInventory } from "../../src/inventory/load.js";
import { pushAll } from "../../src/push/push.js";
import { leaderExpectations } from "../../src/readiness/leader-expectations.js";
import { AgentSession } from "../../src/transport/agent-session.js";
import type { NodeLinker } from "../../src/transport/node-link.js";
import { processStreams, startBootstrap } from "../fixtures/local-agent.js";
import {
  makePackageProject,
  makeVenv,
  resolveWorkflowMain,
  SYSTEM_PYTHON,
  tempDir,
  writeTree,
} from "../fixtures/projects.js";

const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root" };

/**
 * How many round trips a push costs a worker, counted on the real agent: for each request, how
 * many replies the push had received when it sent it. Requests sent with the same count share one
 * round trip. The verification that ends every push rides with the request before it: with the
 * readiness check on a worker already on the release, behind the upload on one that is not.
 */
describe("round trips of a push to one worker", () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) child.kill("SIGKILL");
  });

  /** The worker's agent as a local process under its venv's python, as the bootstrap starts it over SSH. */
  const localLinker: NodeLinker = {
    async link(node) {
      return {
        node,
        channel: () => Promise.reject(new Error("this test starts no remote command")),
        agent: async () => {
          const child = startBootstrap(join(node.venv, "bin", "python"));
          children.push(child);
          return processStreams(child);
        },
        close: () => {},
      };
    },
  };

  /** Each request's op and the replies received before it was sent, while `work` runs. */
  async function requestsDuring(work: () => Promise<unknown>): Promise<string[]> {
    const sent: string[] = [];
    let replies = 0;
    const request = AgentSession.prototype.request;
    AgentSession.prototype.request = function (this: AgentSession, message, ...rest) {
      sent.push(`${message.op}@${replies}`);
      const reply = request.call(this, message, ...rest);
      // Counted before the push's own code sees the reply, so a request it sends in answer counts it.
      reply.then(
        () => replies++,
        () => replies++,
      );
      return reply;
    };
    try {
      await work();
    } finally {
      AgentSession.prototype.request = request;
    }
    return sent;
  }

  test("a publish sends prepare, upload and verify together; a no-op sends check and verify together", async () => {
    const base = await realpath(await tempDir("round-trips"));
    const project = join(base, "project");
    await makePackageProject(project);
    await makeVenv(join(base, "venv"));
    const inventoryPath = join(base, "inventory.yaml");
    await writeFile(
      inventoryPath,
      [
        "project:",
        `  root: ${project}`,
        "  entry: -m workflow.main",
        "  name: roundtrips",
        `  python: ${SYSTEM_PYTHON}`,
        "workers:",
        "  - name: w1",
        "    host: 127.0.0.1",
        `    venv: ${join(base, "venv")}`,
        `    deployDir: ${join(base, "deploy")}`,
        "",
      ].join("\n"),
    );
    const inventory = await loadInventory({ explicitPath: inventoryPath, env });
    const push = async () => {
      const outcomes = await pushAll(inventory, await resolveWorkflowMain(project, env), {
        links: localLinker,
        leader: leaderExpectations,
      });
      assert.ok(
        outcomes.every((o) => o.ok),
        JSON.stringify(outcomes),
      );
      return outcomes[0]!.result!.status;
    };

    let status: string | undefined;
    const first = await requestsDuring(async () => {
      status = await push();
    });
    assert.equal(status, "published");
    assert.deepEqual(first, ["hello@0", "check@1", "prepare@2", "upload@2", "verify@2"]);

    const again = await requestsDuring(async () => {
      status = await push();
    });
    assert.equal(status, "unchanged");
    // Both only read the node: they may leave in either order.
    assert.deepEqual(again.slice().sort(), ["check@1", "hello@0", "verify@1"]);

    await writeTree(project, { "util/sort/quick.py": "# an edit\n" });
    const edit = await requestsDuring(async () => {
      status = await push();
    });
    assert.equal(status, "published");
    assert.deepEqual(edit, ["hello@0", "check@1", "prepare@2", "upload@2", "verify@2"]);
  });
});
