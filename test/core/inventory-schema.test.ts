import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  didYouMean,
  type SchemaContext,
  type SshHostConfig,
  validateInventory,
} from "../../src/core/inventory-schema.js";
import { InventoryError } from "../../src/errors.js";

const ctx = (ssh: Record<string, SshHostConfig> = {}): SchemaContext => ({
  file: "/inv/cluster.yaml",
  baseDir: "/inv",
  homeDir: "/home/me",
  defaultUser: "me",
  locate: (path) => ({ line: path.length + 1, column: 1 }),
  sshHost: (alias) => ssh[alias],
});

const problem = (doc: unknown) => {
  try {
    validateInventory(doc, ctx());
  } catch (error) {
    assert.ok(error instanceof InventoryError);
    return error.message;
  }
  assert.fail("expected an InventoryError");
};

describe("validateInventory", () => {
  test("defaults are merged into each node; node keys win; built-in defaults fill the rest", () => {
    const { inventory } = validateInventory(
      {
        project: { entry: "-m workflow.main", root: "proj", python: "venv/bin/python" },
        defaults: { user: "ubuntu", identityFile: "~/.ssh/id", venv: "/opt/venv" },
        workers: [{ host: "10.0.0.1" }, { host: "10.0.0.2", port: 2222, user: "other", venv: "~/v2" }],
      },
      ctx(),
    );
    assert.equal(inventory.project.root, "/inv/proj");
    assert.equal(inventory.project.python, "/inv/venv/bin/python");
    assert.equal(inventory.project.name, "proj");
    assert.equal(inventory.concurrency, 8);
    const [a, b] = inventory.workers;
    assert.deepEqual(a, {
      name: "10.0.0.1",
      role: "worker",
      host: "10.0.0.1",
      port: 22,
      user: "ubuntu",
      identityFiles: ["/home/me/.ssh/id"],
      knownHosts: "/home/me/.ssh/known_hosts",
      venv: "/opt/venv",
      deployDir: "~/.sync-cluster",
      acceptNewHostKeys: false,
      connectTimeout: 10,
    });
    assert.equal(b?.name, "10.0.0.2:2222");
    assert.equal(b?.user, "other");
    assert.equal(b?.venv, "~/v2");
  });

  test("bare names and hosts go through ~/.ssh/config, which beats defaults but not node keys", () => {
    const { inventory } = validateInventory(
      {
        defaults: { user: "ubuntu", port: 22 },
        workers: ["w13", { host: "w14", user: "mine" }],
        leader: "head",
      },
      ctx({
        w13: { hostName: "10.0.0.13", port: 2200, user: "centos", identityFiles: ["~/.ssh/w13"] },
        w14: { hostName: "10.0.0.14", user: "centos" },
      }),
    );
    const [w13, w14] = inventory.workers;
    assert.deepEqual(
      [w13?.name, w13?.host, w13?.port, w13?.user, w13?.identityFiles],
      ["w13", "10.0.0.13", 2200, "centos", ["/home/me/.ssh/w13"]],
    );
    assert.deepEqual([w14?.name, w14?.host, w14?.user], ["w14", "10.0.0.14", "mine"]);
    assert.equal(inventory.leader?.role, "leader");
    assert.equal(inventory.leader?.host, "head");
  });

  test("each mistake names its key", () => {
    assert.match(
      problem({ workers: [{ host: "a" }, { host: "b", port: "x" }] }),
      /key workers\[1\]\.port\): must be a whole number from 1 to 65535, not the text "x"/,
    );
    assert.match(problem({ workers: [{ host: "a", port: 70000 }] }), /workers\[0\]\.port/);
    assert.match(problem({ workers: [{ hots: "a" }] }), /unknown key `hots`; did you mean `host`\?/);
    assert.match(problem({ wrokers: [] }), /did you mean `workers`/);
    assert.match(problem({ workers: [{ port: 22 }] }), /workers\[0\]\): this node has no `host`/);
    assert.match(
      problem({ workers: [{ host: "a" }, "a"] }),
      /workers\[1\]\): the node name `a` is used twice \(first at workers\[0\], line 3\)/,
    );
    assert.match(problem({ workers: "a" }), /workers\): must be a list/);
    assert.match(problem({ defaults: { host: "x" } }), /defaults\.host\): unknown key/);
    assert.match(problem({ workers: [{ host: "-oProxyCommand=x" }] }), /not a host name/);
    assert.match(problem({ concurrency: 0 }), /concurrency\): must be a whole number from 1/);
    assert.match(problem({ defaults: { acceptNewHostKeys: "yes" } }), /must be true or false/);
    assert.match(problem({ project: { name: "a/b" } }), /project\.name\)/);
    assert.match(problem(null), /the inventory is empty/);
    assert.match(problem([1, 2]), /must be a mapping/);
  });

  test("thousands of workers validate quickly", () => {
    const workers = Array.from({ length: 20_000 }, (_, i) => ({
      host: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`,
    }));
    assert.equal(validateInventory({ workers }, ctx()).inventory.workers.length, 20_000);
  });

  test("anything that is not a valid inventory fails with an InventoryError, never another error", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (doc) => {
        try {
          validateInventory(doc, ctx());
        } catch (error) {
          assert.ok(error instanceof InventoryError, String(error));
        }
      }),
      { numRuns: 1000 },
    );
    const nodeish = fc.record(
      {
        host: fc.oneof(fc.string(), fc.integer()),
        port: fc.oneof(fc.integer(), fc.string()),
        name: fc.string(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(nodeish, { maxLength: 5 }), (workers) => {
        try {
          validateInventory({ workers }, ctx());
        } catch (error) {
          assert.ok(error instanceof InventoryError, String(error));
        }
      }),
      { numRuns: 1000 },
    );
  });

  test("didYouMean suggests only close keys", () => {
    assert.equal(didYouMean("identityfile", ["identityFile", "host"]), "identityFile");
    assert.equal(didYouMean("zzzzzz", ["host", "port"]), undefined);
  });
});
