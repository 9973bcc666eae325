import assert from "node:assert/strict";
import { test } from "node:test";
import { parseHostList } from "../../src/core/inventory/host-list.js";
import {
  defaultNodeName,
  isProjectDirectoryName,
  mergeNodeSettings,
  nodeNameProblem,
  validateInventory,
} from "../../src/core/inventory/inventory-schema.js";
import { schemaContext } from "../fixtures/schema-context.js";

const fallback = { user: "me", homeDir: "/home/me", keep: 3 };

test("a node's own key beats ~/.ssh/config, which beats defaults, which beat the built-in value", () => {
  const merged = mergeNodeSettings(
    { user: "own" },
    { port: 2200, user: "ssh", identityFiles: ["/k/ssh"] },
    { port: 2300, user: "defaults", identityFiles: { files: ["/k/defaults"], path: ["defaults"] }, keep: 5 },
    fallback,
  );
  assert.equal(merged.user, "own");
  assert.equal(merged.port, 2200);
  assert.deepEqual(merged.identityFiles, ["/k/ssh"]);
  assert.equal(merged.keep, 5);
  assert.equal(merged.knownHosts, "/home/me/.ssh/known_hosts");
});

test("an empty IdentityFile list from ~/.ssh/config leaves the keys to defaults", () => {
  const merged = mergeNodeSettings(
    {},
    { identityFiles: [] },
    { identityFiles: { files: ["/k/d"], path: ["defaults"] } },
    fallback,
  );
  assert.deepEqual(merged.identityFiles, ["/k/d"]);
  assert.deepEqual(mergeNodeSettings({}, undefined, {}, fallback), {
    port: 22,
    user: "me",
    identityFiles: [],
    knownHosts: "/home/me/.ssh/known_hosts",
    venv: "~/venv",
    deployDir: "~/.sync-cluster",
    acceptNewHostKeys: false,
    connectTimeout: 10,
    keep: 3,
  });
});

test("a node is named by its alias, with a port other than 22 unless the alias was written bare", () => {
  assert.equal(defaultNodeName("w1", 22, false), "w1");
  assert.equal(defaultNodeName("w1", 2222, false), "w1:2222");
  assert.equal(defaultNodeName("w1", 2222, true), "w1");
});

test("a node name must be typeable in --nodes and not be a role word, except the leader's own", () => {
  for (const bad of ["a b", "a,b", "w*", "w?", "w[1]", "w{1}", "w(1)", "!w"])
    assert.match(nodeNameProblem(bad, "worker") ?? "", /cannot be typed in --nodes/);
  assert.match(nodeNameProblem("all", "worker") ?? "", /means a group of nodes/);
  assert.match(nodeNameProblem("leader", "worker") ?? "", /means a group of nodes/);
  assert.equal(nodeNameProblem("leader", "leader"), undefined);
  assert.equal(nodeNameProblem("w-1.cluster", "worker"), undefined);
});

test("a project's name stays one directory under DEPLOYDIR", () => {
  for (const good of ["pipeline", "my_project-2.0"]) assert.ok(isProjectDirectoryName(good));
  for (const bad of [".", "..", "a/b", "a b", ""]) assert.ok(!isProjectDirectoryName(bad), bad);
});

test("each listing of a workers command starts from the inventory's names alone", () => {
  const { workersFrom } = validateInventory(
    { leader: "head", workers: { command: "list" } },
    schemaContext(),
  );
  assert.ok(workersFrom);
  assert.deepEqual(
    workersFrom(parseHostList("a\nb\n")).map((n) => n.name),
    ["a", "b"],
  );
  // The same hosts listed again are no duplicates of the first listing...
  assert.deepEqual(
    workersFrom(parseHostList("b\na\n")).map((n) => n.name),
    ["b", "a"],
  );
  // ...but a host listed twice in one listing is, and one named like the leader is left out.
  assert.throws(() => workersFrom(parseHostList("x@a\ny@a\n")), /used twice/);
  assert.deepEqual(
    workersFrom(parseHostList("head\nc\n")).map((n) => n.name),
    ["c"],
  );
});
