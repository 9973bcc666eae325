import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { agentSourcePath } from "../../src/package-files.js";
import { SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";

/**
 * The agent's modules (src/worker/sync_cluster_agent/) as the node gets them, joined into one
 * source by the build, and their own unit tests (src/worker/tests/, the standard library's
 * unittest, so they need nothing installed either).
 */

const worker = join(process.cwd(), "src", "worker");
const modules = join(worker, "sync_cluster_agent");

test("the agent's Python unit tests pass", () => {
  const run = spawnSync(SYSTEM_PYTHON, ["-m", "unittest", "discover", "-s", "tests", "-t", "."], {
    cwd: worker,
    encoding: "utf8",
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stderr, /^Ran \d+ tests/m);
});

test("the agent the bootstrap streams is the build's join of the modules as they are", async () => {
  const fresh = join(await tempDir("joined-agent"), "agent.py");
  const join_ = spawnSync(process.execPath, [join(process.cwd(), "bin", "join-agent.mjs"), fresh], {
    encoding: "utf8",
  });
  assert.equal(join_.status, 0, join_.stderr);
  assert.equal(readFileSync(agentSourcePath(), "utf8"), readFileSync(fresh, "utf8"), "run `npm run build`");
});

test("no module of the agent is over 700 lines", () => {
  for (const name of readdirSync(modules).filter((n) => n.endsWith(".py"))) {
    const lines = readFileSync(join(modules, name), "utf8").split("\n").length;
    assert.ok(lines <= 700, `${name} has ${lines} lines`);
  }
});
