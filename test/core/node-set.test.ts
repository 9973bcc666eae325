import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  expandNodeSet,
  foldedIfShorter,
  foldNodeSet,
  type GroupMembers,
  groupReferences,
  NODE_SET_LIMIT,
  NodeSetError,
  sortNodeNames,
  splitNodeSet,
} from "../../src/core/inventory/node-set.js";

/*
 * Expectations written by hand and checked once against ClusterShell 1.9's `nodeset -e` and
 * `nodeset -f`; the tests do not run it.
 */

const expand = (text: string, groups?: GroupMembers) => expandNodeSet(text, groups).join(" ");

/** The message of the NodeSetError that expanding `text` throws, with its column checked. */
function refusal(text: string, column: number): string {
  try {
    expandNodeSet(text);
  } catch (error) {
    assert.ok(error instanceof NodeSetError, String(error));
    assert.equal(error.column, column, `column of ${error.message}`);
    assert.equal(error.text, text);
    return error.problem;
  }
  assert.fail(`expected \`${text}\` to be refused`);
}

describe("expandNodeSet: plain sets", () => {
  test("names without brackets, joined by commas at the top level, spaces around them ignored", () => {
    assert.equal(expand("w13"), "w13");
    assert.equal(expand("a,b"), "a b");
    assert.equal(expand(" a , b "), "a b");
    assert.equal(expand("10.0.0.11"), "10.0.0.11");
    assert.equal(expand("fe80::1"), "fe80::1");
    assert.equal(expand("a@b"), "a@b");
    assert.equal(expand("a,a"), "a");
  });

  test("ranges and lists in brackets, with what comes after", () => {
    assert.equal(expand("node[1-4]"), "node1 node2 node3 node4");
    assert.equal(expand("node[1,3,7-9]"), "node1 node3 node7 node8 node9");
    assert.equal(expand("node[1-2]-ib"), "node1-ib node2-ib");
    assert.equal(expand("[1-3]node"), "1node 2node 3node");
    assert.equal(expand("10.0.0.[11-12]"), "10.0.0.11 10.0.0.12");
    assert.equal(expand("n[1-3]:2222"), "n1:2222 n2:2222 n3:2222");
    assert.equal(expand("node[ 1 - 3 , 5 ]"), "node1 node2 node3 node5");
    assert.equal(expand("node[1-3,2-4]"), "node1 node2 node3 node4");
    assert.equal(expand("node[1-2] , node5"), "node1 node2 node5");
    assert.equal(expand("n[7]"), "n7");
  });

  test("zero padding is kept, and its width comes from the first number", () => {
    assert.equal(expand("node[08-10]"), "node08 node09 node10");
    assert.equal(expand("node[8-10]"), "node8 node9 node10");
    assert.equal(expand("n[007]"), "n007");
    assert.equal(expand("n[098-100]"), "n098 n099 n100");
    assert.equal(expand("n[0-00]"), "n0");
    const many = expandNodeSet("node[001-128]");
    assert.equal(many.length, 128);
    assert.deepEqual([many[0], many[9], many[127]], ["node001", "node010", "node128"]);
    // Different widths are different nodes, as for ClusterShell.
    assert.equal(expand("node1,node01,node001"), "node1 node01 node001");
  });

  test("steps", () => {
    assert.equal(expand("node[1-9/2]"), "node1 node3 node5 node7 node9");
    assert.equal(expand("n[1-3/ 2]"), "n1 n3");
    assert.equal(expand("n[1-3/1]"), "n1 n2 n3");
    assert.equal(expand("n[00-10/5]"), "n00 n05 n10");
    assert.equal(expand("n[1-3/2]x"), "n1x n3x");
  });

  test("several brackets in one name give every combination", () => {
    assert.equal(expand("r[1-2]n[1-3]"), "r1n1 r1n2 r1n3 r2n1 r2n2 r2n3");
    assert.equal(expand("x[1-3]y[1-2]z"), "x1y1z x1y2z x2y1z x2y2z x3y1z x3y2z");
    assert.equal(expand("a[1-3]b[2]"), "a1b2 a2b2 a3b2");
    assert.equal(expand("n[2-3]-[4-5]x"), "n2-4x n2-5x n3-4x n3-5x");
    assert.equal(expand("n[1-2]r[1-3],m1"), "m1 n1r1 n1r2 n1r3 n2r1 n2r2 n2r3");
  });

  test("digits touching a bracket join its numbers", () => {
    assert.equal(expand("node0[1-3]"), "node01 node02 node03");
    assert.equal(expand("n1[0-5]"), "n10 n11 n12 n13 n14 n15");
    assert.equal(expand("n1[8,10]"), "n18 n110");
    assert.equal(expand("node[1-3]0"), "node10 node20 node30");
    assert.equal(expand("n[1-2]9"), "n19 n29");
  });

  test("ClusterShell's order: by the text around the numbers, then by the numbers", () => {
    assert.equal(expand("b1,a2,a10"), "a2 a10 b1");
    assert.equal(expand("node10,node9,node09"), "node9 node09 node10");
    assert.equal(expand("b,a1,a,a-1,A2,_x"), "A2 _x a a1 a-1 b");
    assert.deepEqual(sortNodeNames(["w10", "w2", "head"]), ["head", "w2", "w10"]);
  });
});

describe("expandNodeSet: operators, left to right", () => {
  test("! removes, & keeps the common nodes, ^ keeps those on one side only", () => {
    assert.equal(expand("node[1-4]!node2"), "node1 node3 node4");
    assert.equal(expand("node[1-4]&node[3-6]"), "node3 node4");
    assert.equal(expand("node[1-4]^node[3-6]"), "node1 node2 node5 node6");
    assert.equal(expand("node[1-3]^node2"), "node1 node3");
    assert.equal(expand("x & y"), "");
    assert.equal(expand("a!b"), "a");
  });

  test("each operator applies to everything before it, as in ClusterShell", () => {
    assert.equal(expand("node[1-3],node[5-6]!node[2-5]"), "node1 node6");
    assert.equal(expand("a[1-2]!a1,a5"), "a2 a5");
    assert.equal(expand("a!b!c,d"), "a d");
    assert.equal(expand("r[1-2]n[1-3]!r1n2"), "r1n1 r1n3 r2n1 r2n2 r2n3");
  });

  test("splitNodeSet gives each operand with its operator and column", () => {
    assert.deepEqual(splitNodeSet("n[1,2], m !x"), [
      { operator: ",", text: "n[1,2]", column: 1 },
      { operator: ",", text: "m", column: 9 },
      { operator: "!", text: "x", column: 12 },
    ]);
  });
});

describe("expandNodeSet: what is refused, and where", () => {
  test("ranges", () => {
    assert.match(refusal("node[5-1]", 6), /the range `5-1` runs backwards; write `1-5`/);
    assert.match(refusal("node[08-100]", 6), /`08-100` mixes widths.*`008-100`/);
    assert.match(refusal("x[01-2]", 3), /mixes widths.*`01-02`/);
    assert.match(refusal("n[00-0]", 3), /mixes widths/);
    assert.match(
      refusal("node[a-b]", 6),
      /`a-b` is not a number \(`7`\), a range \(`1-4`\) or a range with a step/,
    );
    assert.match(refusal("node[-5]", 6), /`-5` is negative/);
    assert.match(refusal("h[::1]", 3), /an IPv6 address is written without brackets/);
    assert.match(refusal("node[3/2]", 6), /a step needs a range, as in `1-9\/2`, not `3\/2`/);
    assert.match(refusal("node[1-5/0]", 6), /the step of `1-5\/0` must be 1 or more/);
    assert.match(refusal("node[1, 3-x]", 9), /`3-x` is not a number/);
  });

  test("brackets", () => {
    assert.match(refusal("node[1-3", 5), /this bracket is never closed/);
    assert.match(refusal("node1-3]", 8), /this `]` closes no bracket/);
    assert.match(refusal("n[1-2]]", 7), /closes no bracket/);
    assert.match(refusal("node[[1]]", 6), /a bracket opens inside another one/);
    assert.match(refusal("node[]", 5), /the brackets are empty/);
    assert.match(refusal("node[ ]", 5), /the brackets are empty/);
    assert.match(refusal("node[1,,2]", 8), /nothing between these commas/);
    assert.match(refusal("node[1-2][3-4]", 10), /two brackets side by side/);
    assert.match(refusal("node[1-5/2]0", 12), /digits right after a range with a step/);
    // ClusterShell reads n1[8-10] as the range 18-110 and refuses n0[8-10]: neither is what it looks like.
    assert.match(refusal("n1[8-10]", 3), /`9` and `10` differ in width/);
    assert.match(refusal("n0[8-10]", 3), /the digits `0` before the bracket/);
  });

  test("operators without an operand, empty sets, spaces and wildcards in names", () => {
    assert.match(refusal("", 1), /the node set is empty/);
    assert.match(refusal("  ", 1), /the node set is empty/);
    assert.match(refusal("a,,b", 2), /nothing after `,`/);
    assert.match(refusal("a,", 2), /nothing after `,`/);
    assert.match(refusal("a &", 3), /nothing after `&`/);
    assert.match(refusal(",a", 1), /nothing before `,`, which adds/);
    assert.match(refusal("!a", 1), /nothing before `!`, which takes the nodes after it away/);
    assert.match(refusal("a b", 2), /a node name cannot contain spaces/);
    assert.match(refusal("x,node[1-2] b", 12), /cannot contain spaces/);
    assert.match(refusal("node*", 5), /`\*` is a ClusterShell wildcard/);
    assert.match(refusal("n?[1-2]", 2), /wildcard/);
  });

  test(`more than ${NODE_SET_LIMIT.toLocaleString("en-US")} names, however they are written`, () => {
    assert.match(
      refusal("node[1-1000000]", 6),
      /`1-1000000` stands for 1,000,000 names, more than the limit of 100,000/,
    );
    assert.match(
      refusal("n[1-99999999999999999999999]", 3),
      /stands for 99,999,999,999,999,999,999,999 names/,
    );
    assert.match(refusal("r[1-1000]n[1-1000]", 1), /stands for 1,000,000 names/);
    assert.match(refusal("node[1-100000],x", 16), /100,001 names/);
    assert.match(
      refusal("n[1-60000,60001-100001]", 2),
      /`\[1-60000,60001-100001\]` stands for 100,001 names/,
    );
    assert.equal(expandNodeSet("node[1-100000]").length, NODE_SET_LIMIT);
    assert.equal(expandNodeSet("n[1-60000,1-60000]").length, 60_000);
    // Big numbers are exact: no floating point on the way.
    assert.equal(
      expand("n[99999999999999999998-99999999999999999999]"),
      "n99999999999999999998 n99999999999999999999",
    );
  });

  test("the message quotes the text and the character", () => {
    assert.throws(
      () => expandNodeSet("node[5-1]"),
      (error: Error) =>
        error.message === "in `node[5-1]` at character 6: the range `5-1` runs backwards; write `1-5`",
    );
    const long = `${"a,".repeat(60)}b[9-1]`;
    assert.throws(() => expandNodeSet(long), /in `\.\.\.,?(a,)+b\[9-1\]` at character 123/);
  });

  test("anything that is not a node set is a NodeSetError, never another error", () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."ab01-[],!&^@:/ *") }), (text) => {
        try {
          expandNodeSet(text, new Map([["@a", ["x"]]]));
        } catch (error) {
          assert.ok(error instanceof NodeSetError, String(error));
          assert.ok(error.column >= 1 && error.column <= Math.max(1, text.length), error.message);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("groups", () => {
  const groups: GroupMembers = new Map([
    ["@compute", ["node01", "node02", "node03", "node04"]],
    ["@gpu", ["gpu1", "node03", "node04"]],
    ["@slurm:debug", ["node01"]],
    ["@rack1", ["r1a"]],
    ["@rack2", ["r2a"]],
    ["@*", ["node01", "gpu1"]],
  ]);

  test("groupReferences names each group once, as nodeset is asked about it", () => {
    assert.deepEqual(groupReferences("node[1-2]"), []);
    assert.deepEqual(groupReferences("@compute!@gpu,@compute"), ["@compute", "@gpu"]);
    assert.deepEqual(groupReferences("@slurm:debug"), ["@slurm:debug"]);
    assert.deepEqual(groupReferences("@rack[1-2]"), ["@rack1", "@rack2"]);
    assert.deepEqual(groupReferences("@src:rack[1-2]"), ["@src:rack1", "@src:rack2"]);
    assert.deepEqual(groupReferences("@*,@slurm:*"), ["@*", "@slurm:*"]);
    // An @ inside a name is no group.
    assert.deepEqual(groupReferences("a@b"), []);
  });

  test("a group's members take part in the operators like any node set", () => {
    assert.equal(expand("@compute", groups), "node01 node02 node03 node04");
    assert.equal(expand("@compute!@gpu", groups), "node01 node02");
    assert.equal(expand("@gpu&node[01-03]", groups), "node03");
    assert.equal(expand("@slurm:debug,extra", groups), "extra node01");
    assert.equal(expand("@rack[1-2]", groups), "r1a r2a");
    assert.equal(expand("@*", groups), "gpu1 node01");
  });

  test("a group that was not looked up, or written wrongly, is refused", () => {
    assert.throws(
      () => expandNodeSet("a,@other", groups),
      /at character 3: `@other` is a ClusterShell group/,
    );
    assert.throws(() => expandNodeSet("@@slurm"), /`@@source` lists ClusterShell's group names, not nodes/);
    assert.throws(() => expandNodeSet("@"), /a group needs a name after `@`/);
    assert.throws(() => expandNodeSet("@slurm:"), /a group needs a name after `@slurm:`/);
    assert.throws(() => expandNodeSet("@:gpu"), /no group source before `:`/);
    assert.throws(() => groupReferences("@gp u"), /cannot contain spaces/);
    assert.throws(() => groupReferences("@rack[2-1]"), /at character 7: the range `2-1` runs backwards/);
  });
});

describe("foldNodeSet", () => {
  test("as nodeset -f writes them", () => {
    assert.equal(
      foldNodeSet(["node1", "node2", "node3", "node5", "node08", "node09", "node10"]),
      "node[1-3,5,08-10]",
    );
    assert.equal(foldNodeSet(["node1", "node2", "node01", "node10"]), "node[1-2,01,10]");
    assert.equal(foldNodeSet(["n9", "n10", "n11", "n09"]), "n[9,09-11]");
    assert.equal(foldNodeSet(["n1", "n3", "n5", "n7"]), "n[1,3,5,7]");
    assert.equal(foldNodeSet(["a", "b", "a1", "a01", "a001", "a-1", "A2"]), "A2,a,a[1,01,001],a-1,b");
    assert.equal(foldNodeSet(["1", "2", "3", "x"]), "[1-3],x");
    assert.equal(foldNodeSet(["node1-ib", "node2-ib"]), "node[1-2]-ib");
    assert.equal(foldNodeSet(["h:2222", "h2:2222", "h3:2222"]), "h[2-3]:2222,h:2222");
    assert.equal(foldNodeSet(["w1"]), "w1");
    assert.equal(foldNodeSet([]), "");
  });

  test("several numbers in a name fold one axis at a time", () => {
    const grid = ["r1n1", "r1n2", "r1n3", "r2n1", "r2n2", "r2n3"];
    assert.equal(foldNodeSet(grid), "r[1-2]n[1-3]");
    assert.equal(foldNodeSet(grid.slice(0, 5)), "r1n[1-3],r2n[1-2]");
    assert.equal(foldNodeSet(["r1n1", "r1n2", "r2n1", "r2n2", "r3n5"]), "r[1-2]n[1-2],r3n5");
    assert.equal(foldNodeSet(["x1y1z", "x2y1z", "x3y2z"]), "x[1-2]y1z,x3y2z");
    assert.equal(
      foldNodeSet(["a1", "b", "c2", "c3", "10.0.0.11", "10.0.0.12", "10.0.1.11", "10.0.1.12"]),
      "10.0.[0-1].[11-12],a1,b,c[2-3]",
    );
  });

  test("a name a node set cannot hold is refused", () => {
    assert.throws(() => foldNodeSet(["a,b"]), /this name cannot be part of a node set/);
    assert.throws(() => foldNodeSet(["@gpu"]), /starts with @/);
    assert.throws(() => foldNodeSet(["a b"]), NodeSetError);
    assert.throws(() => foldNodeSet([""]), /an empty name/);
  });

  test("foldedIfShorter folds a line of names only when the brackets make it shorter", () => {
    assert.equal(foldedIfShorter(["node01", "node02", "node03", "node04"]), "node[01-04]");
    assert.equal(foldedIfShorter(["a", "b"]), "a, b");
    assert.equal(foldedIfShorter(["w1", "w3"]), "w1, w3");
    assert.equal(foldedIfShorter(["w1", "w2"], " "), "w1 w2");
    assert.equal(foldedIfShorter(["w1", "w2", "w3"], " "), "w[1-3]");
    assert.equal(foldedIfShorter(["node1"]), "node1");
    assert.equal(foldedIfShorter(["a,b", "c1", "c2", "c3"]), "a,b, c1, c2, c3");
  });

  const nameUnit = fc.constantFrom(..."ab-.:_0123456789");
  const names = fc.array(fc.string({ unit: nameUnit, minLength: 1, maxLength: 8 }), { maxLength: 40 });

  test("expanding a fold gives the names back, in ClusterShell's order (property)", () => {
    fc.assert(
      fc.property(names, (list) => {
        const folded = foldNodeSet(list);
        assert.deepEqual(list.length === 0 ? [] : expandNodeSet(folded), sortNodeNames(new Set(list)));
        if (list.length > 0) assert.equal(foldNodeSet(expandNodeSet(folded)), folded);
      }),
      { numRuns: 3000 },
    );
  });

  test("numbered names of one or two axes fold back exactly, padding and all (property)", () => {
    const index = fc.oneof(
      fc.nat({ max: 120 }).map(String),
      fc.nat({ max: 120 }).map((n) => String(n).padStart(3, "0")),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(index, index), { minLength: 1, maxLength: 60 }),
        fc.boolean(),
        (pairs, twoAxes) => {
          const list = pairs.map(([a, b]) => (twoAxes ? `r${a}n${b}` : `node${a}-ib`));
          const folded = foldNodeSet(list);
          assert.deepEqual(expandNodeSet(folded), sortNodeNames(new Set(list)));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
