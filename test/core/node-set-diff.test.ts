import assert from "node:assert/strict";
import { test } from "node:test";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { diffNodeSets } from "../../src/core/inventory/node-set-diff.js";

const node = (name: string, extra: Partial<NodeSpec> = {}): NodeSpec => ({
  name,
  role: "worker",
  host: name,
  port: 22,
  user: "me",
  identityFiles: [],
  knownHosts: "/home/me/.ssh/known_hosts",
  venv: "~/venv",
  deployDir: "~/.sync-cluster",
  acceptNewHostKeys: false,
  connectTimeout: 10,
  keep: 3,
  ...extra,
});

const names = (nodes: NodeSpec[]) => nodes.map((n) => n.name);

test("nodes that appear, leave, or changed address or settings are told apart by name", () => {
  const diff = diffNodeSets(
    [node("a"), node("b"), node("c"), node("d", { identityFiles: ["/k1"] })],
    [node("a"), node("c", { port: 2222 }), node("d", { identityFiles: ["/k2"] }), node("e")],
  );
  assert.deepEqual(names(diff.added), ["e"]);
  assert.deepEqual(names(diff.removed), ["b"]);
  assert.deepEqual(names(diff.changed), ["c", "d"]);
});

test("the same set in another order, or a key only written out, is no change", () => {
  const diff = diffNodeSets([node("a"), node("b")], [node("b"), node("a")]);
  assert.deepEqual(diff, { added: [], removed: [], changed: [] });
  assert.deepEqual(diffNodeSets([], []), { added: [], removed: [], changed: [] });
  assert.deepEqual(names(diffNodeSets([], [node("a")]).added), ["a"]);
  assert.deepEqual(names(diffNodeSets([node("a")], []).removed), ["a"]);
});
