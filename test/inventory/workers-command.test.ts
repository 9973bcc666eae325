import assert from "node:assert/strict";
import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { InventoryError } from "../../src/core/errors.js";
import { loadInventory } from "../../src/inventory/load.js";
import { runCli } from "../fixtures/cli.js";
import { makePackageProject, SYSTEM_PYTHON } from "../fixtures/projects.js";

/** An inventory's workers command, really run: what it prints, and each way it can fail. */

const env = { HOME: "/nonexistent-home", USER: "tester", PATH: process.env.PATH ?? "/usr/bin:/bin" };

async function inventoryWith(
  workers: string,
  files: Record<string, string> = {},
  head = "",
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sc-listed-"));
  await writeFile(join(dir, "sync-cluster.yaml"), `defaults:\n  user: ubuntu\nworkers:\n${workers}${head}`);
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(dir, name), text);
    await chmod(join(dir, name), 0o755);
  }
  return join(dir, "sync-cluster.yaml");
}

async function loadError(file: string): Promise<string> {
  try {
    await loadInventory({ explicitPath: file, env });
  } catch (error) {
    assert.ok(error instanceof InventoryError, String(error));
    return error.message;
  }
  assert.fail("expected an InventoryError");
}

describe("workers listed by a command", () => {
  test("runs in the inventory's directory with sh -c; each printed host becomes a worker", async () => {
    const file = await inventoryWith("  command: ./list | sort -r\n", {
      list: "#!/bin/sh\necho '# from the scheduler'\necho n1\necho alice@n2:2222\n",
    });
    const inventory = await loadInventory({ explicitPath: file, env });
    assert.deepEqual(
      inventory.workers.map((w) => [w.name, w.host, w.port, w.user]),
      [
        ["n1", "n1", 22, "ubuntu"],
        ["n2:2222", "n2", 2222, "alice"],
      ],
    );
    // Not run when no node is to be reached (`resolve`).
    const unlisted = await loadInventory({ explicitPath: file, env, listWorkers: false });
    assert.deepEqual(unlisted.workers, []);
    assert.equal(unlisted.workersSource?.command, "./list | sort -r");
  });

  test("a failing, silent, slow or missing command is an error naming the file, key and stderr", async () => {
    const failing = await inventoryWith("  command: ./list\n", {
      list: "#!/bin/sh\necho one >&2\necho 'sinfo: error: Unable to contact slurm controller' >&2\nexit 4\n",
    });
    assert.equal(
      await loadError(failing),
      `${failing}:4:3 (key workers.command): the workers could not be listed: \`./list\` exited with status 4; its stderr:\n  one\n  sinfo: error: Unable to contact slurm controller`,
    );
    assert.match(
      await loadError(await inventoryWith("  command: 'true'\n")),
      /\(key workers\.command\): the workers could not be listed: `true` printed no host; it printed nothing on stderr$/,
    );
    assert.match(
      await loadError(await inventoryWith("  command: \"echo '# none'\"\n")),
      /`echo '# none'` printed no host, only blank lines and comments/,
    );
    const started = Date.now();
    assert.match(
      await loadError(await inventoryWith("  command: echo waiting >&2; sleep 30 | cat\n  timeout: 0.5\n")),
      /`echo waiting >&2; sleep 30 \| cat` did not finish within 0\.5s and was killed \(raise workers\.timeout if it is only slow\); its stderr:\n {2}waiting/,
    );
    assert.ok(Date.now() - started < 5000, "the timeout kills the whole pipeline");
    assert.match(
      await loadError(await inventoryWith("  slurm: {partition: debug}\n")),
      /\(key workers\.slurm\): the workers could not be listed: `sinfo --Node .*`/,
    );
  });

  test("resolve does not ask for the workers: a failing command does not stop it", async () => {
    const project = await mkdtemp(join(tmpdir(), "sc-listed-project-"));
    await makePackageProject(project);
    const file = await inventoryWith(
      "  command: exit 1\n",
      {},
      `project:\n  root: ${project}\n  python: ${SYSTEM_PYTHON}\n`,
    );
    const resolved = await runCli(["resolve", "-m", "workflow.main", "-i", file], project);
    assert.equal(resolved.code, 0, resolved.stderr);
    const pushed = await runCli(["push", "-m", "workflow.main", "-i", file], project);
    assert.equal(pushed.code, 2);
    assert.match(pushed.stderr, /\(key workers\.command\): the workers could not be listed: `exit 1` exited/);
  });
});
