import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { isNodeSetTerm, selectNodes, selectorGroups } from "../../src/core/inventory/node-selector.js";

const node = (name: string, role: NodeSpec["role"] = "worker", host = name): NodeSpec => ({
  name,
  role,
  host,
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
const names = (s: string, nodes = all, groups?: Map<string, string[]>) => {
  const r = selectNodes(nodes, s, groups);
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
  assert.match(String(names("x*")), /no node matches `x\*`/);
  assert.match(String(names(" , ")), /empty/);
  assert.match(String(names("leader", [node("w1")])), /no node matches `leader` \(nodes: w1\)/);
});

describe("node sets and ClusterShell's operators in --nodes", () => {
  const cluster = [node("head", "leader"), ...["01", "02", "03", "04", "12"].map((i) => node(`node${i}`))];
  const w = [node("w1"), node("w2"), node("w12"), node("wa")];

  test("a node set selects its nodes; its commas are no separators", () => {
    assert.deepEqual(names("node[01-03]", cluster), ["node01", "node02", "node03"]);
    assert.deepEqual(names("node[01,04],head", cluster), ["head", "node01", "node04"]);
    assert.deepEqual(names("node[01-04/3]", cluster), ["node01", "node04"]);
  });

  test("every name of a node set must be a node: a typo is not run on the others", () => {
    assert.match(
      String(names("node[01-05]", cluster)),
      /`node\[01-05\]` names a node the inventory does not have: node05 \(nodes: head,node\[01-04,12\]\)/,
    );
    assert.match(String(names("node[05-08]", cluster)), /no node matches `node\[05-08\]`/);
    assert.match(
      String(names("node[5-1]", cluster)),
      /--nodes: in `node\[5-1\]` at character 6: the range `5-1` runs backwards/,
    );
  });

  test("brackets of numbers are a node set, other brackets a glob", () => {
    // As a glob, w[12] would be w1 or w2; as ClusterShell reads it, it is w12.
    assert.deepEqual(names("w[12]", w), ["w12"]);
    assert.deepEqual(names("w[1-2]", w), ["w1", "w2"]);
    assert.deepEqual(names("w[a-z]", w), ["wa"]);
    assert.deepEqual(names("w[^a]", w), ["w1", "w2"]);
    assert.deepEqual(names("w[0-9]*", w), ["w1", "w2", "w12"]);
    assert.deepEqual(names("w{1,a}", w), "no node matches `w{1` (nodes: w1, w2, w12, wa)");
    for (const set of ["w1", "w[12]", "node[01-04]", "n[1, 3]", "r[1-2]n[1-9/2]", "10.0.0.[1-4]"])
      assert.ok(isNodeSetTerm(set), set);
    for (const glob of ["w*", "w?", "w[a-c]", "w[!1]", "w[^1]", "w{1,2}", "w[0-9]*", "+(a|b)"])
      assert.ok(!isNodeSetTerm(glob), glob);
  });

  test("! takes away, & keeps the nodes on both sides, ^ those on one side, left to right", () => {
    assert.deepEqual(names("all!node[01-02]", cluster), ["head", "node03", "node04", "node12"]);
    assert.deepEqual(names("workers&node0*", cluster), ["node01", "node02", "node03", "node04"]);
    assert.deepEqual(names("node[01-03]^node[02-04]", cluster), ["node01", "node04"]);
    assert.deepEqual(names("node01,node02!node01", cluster), ["node02"]);
    assert.deepEqual(names("leader,workers!node1*", cluster), [
      "head",
      "node01",
      "node02",
      "node03",
      "node04",
    ]);
  });

  test("a selector that leaves no node, or lacks an operand, is an error", () => {
    assert.match(String(names("node01!node01", cluster)), /`node01!node01` leaves no node to run on/);
    assert.match(
      String(names("!node01", cluster)),
      /nothing before `!`.*\(to leave nodes out of all of them: `all!node01`\)/,
    );
    assert.match(String(names("node01,", cluster)), /--nodes in `node01,` at character 7: nothing after `,`/);
    assert.match(String(names("node[1-", cluster)), /this bracket is never closed/);
  });
});

describe("ClusterShell groups in --nodes", () => {
  const cluster = [node("head", "leader"), node("node01"), node("n2:2222", "worker", "node02"), node("w9")];
  const groups = new Map([
    ["@compute", ["node01", "node02", "node03"]],
    ["@gpu", ["gpu1"]],
  ]);

  test("selectorGroups names the groups for the edge to look up", () => {
    assert.deepEqual(selectorGroups("w1,@compute!@gpu,@compute"), ["@compute", "@gpu"]);
    assert.deepEqual(selectorGroups("@rack[1-2],@slurm:debug"), ["@rack1", "@rack2", "@slurm:debug"]);
    assert.deepEqual(selectorGroups("w*,node[1-2]"), []);
    assert.deepEqual(selectorGroups("node[1-"), []);
  });

  test("a group selects the inventory's nodes among its hosts, by name or address", () => {
    assert.deepEqual(names("@compute", cluster, groups), ["node01", "n2:2222"]);
    assert.deepEqual(names("@compute!node01", cluster, groups), ["n2:2222"]);
    assert.deepEqual(names("all!@compute", cluster, groups), ["head", "w9"]);
    assert.match(
      String(names("@gpu", cluster, groups)),
      /no node of the inventory is in `@gpu` \(@gpu: gpu1; nodes: head, node01, n2:2222, w9\)/,
    );
    assert.match(
      String(names("@other", cluster, groups)),
      /@other is a ClusterShell group that was not looked up/,
    );
  });
});
