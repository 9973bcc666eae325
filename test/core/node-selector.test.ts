import assert from "node:assert/strict";
import { test } from "node:test";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { selectNodes } from "../../src/core/inventory/node-selector.js";

const node = (name: string, role: NodeSpec["role"] = "worker"): NodeSpec => ({
  name,
  role,
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
const all = [node("head", "leader"), node("w1"), node("w2"), node("gpu-1")];
const names = (s: string) => {
  const r = selectNodes(all, s);
  return "problem" in r ? r.problem : r.nodes.map((n) => n.name);
};

test("words, names and globs select nodes in inventory order, without duplicates", () => {
  assert.deepEqual(names("all"), ["head", "w1", "w2", "gpu-1"]);
  assert.deepEqual(names("workers"), ["w1", "w2", "gpu-1"]);
  assert.deepEqual(names("leader"), ["head"]);
  assert.deepEqual(names("w*"), ["w1", "w2"]);
  assert.deepEqual(names("gpu-1, w1 ,w*"), ["w1", "w2", "gpu-1"]);
});

test("a term that matches nothing is an error naming the nodes", () => {
  assert.match(String(names("w9")), /no node matches `w9` \(nodes: head, w1, w2, gpu-1\)/);
  assert.match(String(names(" , ")), /empty/);
});
