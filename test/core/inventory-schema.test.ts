import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { InventoryError } from "../../src/core/errors.js";
import {
  didYouMean,
  type SshHostConfig,
  validateInventory,
} from "../../src/core/inventory/inventory-schema.js";
import type { NodeSpec } from "../../src/core/inventory/inventory-types.js";
import { schemaContext } from "../fixtures/schema-context.js";

const ctx = schemaContext;

const problem = (doc: unknown, ssh: Record<string, SshHostConfig> = {}) => {
  try {
    validateInventory(doc, ctx(ssh));
  } catch (error) {
    assert.ok(error instanceof InventoryError);
    return error.message;
  }
  assert.fail("expected an InventoryError");
};

const pick = (n: NodeSpec | undefined) => [n?.name, n?.host, n?.port, n?.user, n?.identityFiles];

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
      keep: 3,
    });
    assert.equal(b?.name, "10.0.0.2:2222");
    assert.equal(b?.user, "other");
    assert.equal(b?.venv, "~/v2");
  });

  test("keep: project-wide in `project`, overridden by `defaults`, overridden on a node; checked", () => {
    const keeps = (doc: Record<string, unknown>) =>
      validateInventory(doc, ctx()).inventory.workers.map((w) => w.keep);
    assert.deepEqual(keeps({ workers: ["a"] }), [3]);
    assert.deepEqual(keeps({ project: { keep: 5 }, workers: ["a", { host: "b", keep: 1 }] }), [5, 1]);
    assert.deepEqual(
      keeps({ project: { keep: 5 }, defaults: { keep: 7 }, workers: ["a", { host: "b", keep: 2 }] }),
      [7, 2],
    );
    assert.match(problem({ project: { keep: 0 }, workers: ["a"] }), /project\.keep/);
    assert.match(problem({ workers: [{ host: "a", keep: "3" }] }), /workers\[0\]\.keep.*without quotes/);
    assert.match(problem({ defaults: { keep: 2.5 }, workers: ["a"] }), /defaults\.keep/);
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
    assert.match(problem({ defaults: { host: "x" } }), /defaults\.host\): `host` cannot be a default/);
    assert.match(problem({ defaults: { name: "x" } }), /defaults\.name\): `name` cannot be a default/);
    assert.match(problem({ workers: [{ host: "-oProxyCommand=x" }] }), /not a host name/);
    assert.match(problem({ concurrency: 0 }), /concurrency\): must be a whole number from 1/);
    assert.match(problem({ defaults: { acceptNewHostKeys: "yes" } }), /must be true or false/);
    assert.match(problem({ project: { name: "a/b" } }), /project\.name\)/);
    assert.match(problem(null), /the inventory is empty/);
    assert.match(problem([1, 2]), /must be a mapping/);
  });

  test("habits from the ssh command line get advice", () => {
    assert.match(
      problem({ workers: [{ host: "ubuntu@10.0.0.1" }] }),
      /workers\[0\]\.host\): .*write `host: 10\.0\.0\.1` and `user: ubuntu`/,
    );
    assert.match(
      problem({ workers: ["10.0.0.1:2222"] }),
      /workers\[0\]\): .*`host: 10\.0\.0\.1` and `port: 2222`/,
    );
    assert.match(
      problem({ workers: [{ host: "a", port: "2222" }] }),
      /not the text "2222" \(write it without quotes\)/,
    );
    assert.match(
      problem({ workers: [{ host: "a", name: 7 }] }),
      /name\): .*not number 7 \(write it in quotes: "7"\)/,
    );
    assert.match(
      problem({ workers: [{ host: "a", user: "-oX" }] }),
      /workers\[0\]\.user\): `-oX` is not a user name/,
    );
    assert.match(problem({ workers: [{ host: "a b" }] }), /workers\[0\]\.host\): `a b` is not a host name/);
    // IPv6 addresses have colons too, and are fine.
    assert.equal(validateInventory({ workers: ["fe80::1"] }, ctx()).inventory.workers[0]?.host, "fe80::1");
  });

  test("node names must be typeable in --nodes and must not shadow its role words", () => {
    assert.match(
      problem({ workers: [{ host: "a", name: "a,b" }] }),
      /workers\[0\]\.name\): .*cannot be typed in --nodes/,
    );
    assert.match(problem({ workers: [{ host: "a", name: "gpu*" }] }), /cannot be typed in --nodes/);
    // Operators of node sets, and the @ of a group.
    assert.match(problem({ workers: [{ host: "a", name: "a&b" }] }), /cannot be typed in --nodes/);
    assert.match(problem({ workers: [{ host: "a", name: "x^y" }] }), /cannot be typed in --nodes/);
    assert.match(problem({ workers: [{ host: "a", name: "@gpu" }] }), /a leading @/);
    assert.match(problem({ workers: ["all"] }), /workers\[0\]\): `all` means a group of nodes/);
    assert.match(
      problem({ workers: [{ host: "x", name: "leader" }] }),
      /workers\[0\]\.name\): `leader` means/,
    );
    // A leader called "leader" is what --nodes leader picks anyway.
    assert.equal(validateInventory({ leader: "leader" }, ctx()).inventory.leader?.name, "leader");
    assert.match(
      problem({ leader: { host: "h" }, workers: [{ host: "x", name: "h" }] }),
      /workers\[0\]\): the node name `h` is used twice \(first at leader, line 2\)/,
    );
  });

  test("project: root and python relative to the inventory, ~ expanded, name from the root", () => {
    const at = (project: unknown) => validateInventory({ project }, ctx()).inventory.project;
    assert.deepEqual(at(undefined), {
      root: "/inv",
      include: [],
      exclude: [],
      name: "inv",
      batchSystem: "slurm",
    });
    assert.deepEqual(at(null), at({}));
    const p = at({ root: "~/work/flow", python: "python3", include: ["a/*.json"], exclude: "tests/**" });
    assert.deepEqual(
      [p.root, p.python, p.name, p.include, p.exclude],
      ["/home/me/work/flow", "python3", "flow", ["a/*.json"], ["tests/**"]],
    );
    assert.equal(at({ python: "~/venv/bin/python" }).python, "/home/me/venv/bin/python");
    assert.equal(at({ root: "/abs", name: "other_name-1.0" }).name, "other_name-1.0");
    assert.equal(at({ batchSystem: "lsf" }).batchSystem, "lsf");
    assert.match(
      problem({ project: { batchSystem: "slrum" } }),
      /project\.batchSystem\): must be one of Toil's batch systems: slurm, .*; not `slrum`/,
    );
    assert.match(
      problem({ project: { root: "/" } }),
      /project\.root\): `` cannot name the project.*set project\.name/,
    );
    assert.match(problem({ project: { name: ".." } }), /project\.name\)/);
    assert.match(problem({ project: { entyr: "x.py" } }), /did you mean `entry`/);
    assert.match(problem({ project: { include: [1] } }), /project\.include\[0\]\)/);
  });

  test("node settings: lists of keys, ~ expansion, remote paths as written, sections left empty", () => {
    const { inventory, identityFiles } = validateInventory(
      {
        defaults: null,
        workers: [
          {
            host: "a",
            identityFile: ["~/.ssh/a", "keys/b"],
            knownHosts: "~/kh",
            venv: "~/v",
            deployDir: "/srv/deploy",
            acceptNewHostKeys: true,
            connectTimeout: 2.5,
          },
          { host: "b", identityFile: "keys/b" },
        ],
        leader: null,
      },
      ctx(),
    );
    const a = inventory.workers[0];
    assert.deepEqual(a?.identityFiles, ["/home/me/.ssh/a", "/inv/keys/b"]);
    assert.deepEqual(
      [a?.knownHosts, a?.venv, a?.deployDir, a?.acceptNewHostKeys, a?.connectTimeout],
      ["/home/me/kh", "~/v", "/srv/deploy", true, 2.5],
    );
    assert.equal(inventory.leader, undefined);
    // Each file once, with the first key that named it (for the readability check).
    assert.deepEqual(
      identityFiles.map((f) => [f.file, f.key]),
      [
        ["/home/me/.ssh/a", "workers[0].identityFile"],
        ["/inv/keys/b", "workers[0].identityFile"],
      ],
    );
    assert.match(
      problem({ workers: [{ host: "a", connectTimeout: 0 }] }),
      /connectTimeout\): must be a positive/,
    );
    // An empty list on a node means "ssh-agent only", even when defaults name a key.
    const agentOnly = validateInventory(
      { defaults: { identityFile: "/k" }, workers: [{ host: "a", identityFile: [] }] },
      ctx(),
    );
    assert.deepEqual(agentOnly.inventory.workers[0]?.identityFiles, []);
  });

  test("precedence: node key, then ~/.ssh/config, then defaults, then built-in", () => {
    const ssh = { al: { hostName: "10.1.1.1", port: 2200, user: "sshuser", identityFiles: ["/k/ssh"] } };
    const inv = (worker: unknown, defaults: unknown = {}) =>
      validateInventory({ defaults, workers: [worker] }, ctx(ssh)).inventory.workers[0];
    const full = { port: 3000, user: "def", identityFile: "/k/def" };
    assert.deepEqual(pick(inv({ host: "al", port: 4000, user: "own", identityFile: "/k/own" }, full)), [
      "al:4000",
      "10.1.1.1",
      4000,
      "own",
      ["/k/own"],
    ]);
    assert.deepEqual(pick(inv({ host: "al" }, full)), ["al:2200", "10.1.1.1", 2200, "sshuser", ["/k/ssh"]]);
    assert.deepEqual(pick(inv({ host: "other" }, full)), ["other:3000", "other", 3000, "def", ["/k/def"]]);
    assert.deepEqual(pick(inv({ host: "other" })), ["other", "other", 22, "me", []]);
    assert.deepEqual(pick(inv("al", full)), ["al", "10.1.1.1", 2200, "sshuser", ["/k/ssh"]]);
    assert.match(
      problem({ workers: ["bad"] }, { bad: { hostName: "-oProxyCommand=x" } }),
      /workers\[0\]\): ~\/\.ssh\/config gives `bad` the HostName `-oProxyCommand=x`/,
    );
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

describe("the daemon key", () => {
  test("seconds the daemon stays up unused, or off (YAML 1.1's false too)", () => {
    const daemon = (value: unknown) =>
      validateInventory({ daemon: value, workers: [] }, ctx()).inventory.daemon;
    assert.equal(validateInventory({ workers: [] }, ctx()).inventory.daemon, undefined);
    assert.equal(daemon(600), 600);
    assert.equal(daemon(2.5), 2.5);
    assert.equal(daemon("off"), "off");
    assert.equal(daemon(false), "off");
  });

  test("anything else is refused, naming the key", () => {
    for (const bad of [0, -5, "10m", true, "600", { idle: 10 }, 10 ** 9])
      assert.match(
        problem({ daemon: bad, workers: [] }),
        /\(key daemon\): must be the seconds the daemon keeps/,
      );
    assert.match(problem({ daemon: "600", workers: [] }), /write it without quotes/);
    assert.match(problem({ deamon: 5 }), /did you mean `daemon`/);
  });
});

describe("the tree key", () => {
  const tree = (value: unknown) => validateInventory({ tree: value, workers: [] }, ctx()).inventory.tree;

  test("the site's topology file, by default ClusterShell's, or gateways listed with their node sets", () => {
    assert.equal(validateInventory({ workers: [] }, ctx()).inventory.tree, undefined);
    assert.deepEqual(tree(null), { fanout: 64, topologyFile: "/etc/clustershell/topology.conf" });
    assert.deepEqual(tree({ topology: "/srv/topology.conf", fanout: 32 }), {
      fanout: 32,
      topologyFile: "/srv/topology.conf",
    });
    assert.deepEqual(
      tree({ gateways: { gw1: "node[001-128]", gw2: "node[129-256]" }, root: "head", sshOptions: "-F /x" }),
      {
        fanout: 64,
        gateways: { gw1: "node[001-128]", gw2: "node[129-256]" },
        root: "head",
        sshOptions: "-F /x",
      },
    );
  });

  test("anything else is refused, naming the key", () => {
    assert.match(
      problem({ tree: { topology: "/t", gateways: { g: "n1" } }, workers: [] }),
      /key tree\.gateways.*either `topology`/,
    );
    assert.match(problem({ tree: { gateways: {} }, workers: [] }), /key tree\.gateways.*lists no gateway/);
    assert.match(
      problem({ tree: { gateways: { g: 5 } }, workers: [] }),
      /key tree\.gateways\.g.*non-empty text/,
    );
    assert.match(problem({ tree: { fanout: 0 }, workers: [] }), /key tree\.fanout.*whole number from 1/);
    assert.match(problem({ tree: { topolgy: "/t" }, workers: [] }), /did you mean `topology`/);
    assert.match(problem({ tree: "yes", workers: [] }), /key tree.*mapping/);
  });
});

describe("node sets and groups in the workers list", () => {
  const groups = new Map([
    ["@compute", ["node01", "node02", "node03", "node04"]],
    ["@gpu", ["gpu1", "node03"]],
  ]);
  const workersOf = (workers: unknown[], ssh: Record<string, SshHostConfig> = {}) =>
    validateInventory({ defaults: { user: "ubuntu" }, workers }, { ...ctx(ssh), nodeGroups: groups })
      .inventory.workers;
  const groupProblem = (doc: unknown) => {
    try {
      validateInventory(doc, { ...ctx(), nodeGroups: groups });
    } catch (error) {
      assert.ok(error instanceof InventoryError, String(error));
      return error.message;
    }
    assert.fail("expected an InventoryError");
  };

  test("an entry that is a node set is one node per name, each with the entry's settings", () => {
    const workers = workersOf([
      "node[01-02]",
      { host: "gpu[1-2]", port: 2222, venv: "/opt/venv" },
      "10.0.0.[11-12]",
    ]);
    assert.deepEqual(
      workers.map((w) => [w.name, w.host, w.port, w.user, w.venv]),
      [
        ["node01", "node01", 22, "ubuntu", "~/venv"],
        ["node02", "node02", 22, "ubuntu", "~/venv"],
        ["gpu1:2222", "gpu1", 2222, "ubuntu", "/opt/venv"],
        ["gpu2:2222", "gpu2", 2222, "ubuntu", "/opt/venv"],
        ["10.0.0.11", "10.0.0.11", 22, "ubuntu", "~/venv"],
        ["10.0.0.12", "10.0.0.12", 22, "ubuntu", "~/venv"],
      ],
    );
  });

  test("each name of a bare node set is an alias looked up in ~/.ssh/config", () => {
    const [n1, n2] = workersOf(["n[1-2]"], { n1: { hostName: "10.0.0.1", port: 2201, user: "centos" } });
    assert.deepEqual([n1?.name, n1?.host, n1?.port, n1?.user], ["n1", "10.0.0.1", 2201, "centos"]);
    assert.deepEqual([n2?.name, n2?.host, n2?.port, n2?.user], ["n2", "n2", 22, "ubuntu"]);
  });

  test("groups expand to their members, also within node-set operators", () => {
    assert.deepEqual(
      workersOf(["@compute!@gpu", { host: "@gpu", port: 2200 }]).map((w) => w.name),
      ["node01", "node02", "node04", "gpu1:2200", "node03:2200"],
    );
    // Not looked up (no node is to be reached, as for `resolve`): such an entry stands for no node.
    assert.deepEqual(
      validateInventory({ workers: ["@compute", "w1"] }, ctx()).inventory.workers.map((w) => w.name),
      ["w1"],
    );
  });

  test("`name` with several nodes, a node twice, and a set with a mistake are refused with their line", () => {
    assert.match(
      groupProblem({ workers: [{ host: "n[1-3]", name: "gpu" }] }),
      /:4:1 \(key workers\[0\]\.name\): `name` names one node, and `host: n\[1-3\]` is 3 nodes: remove `name` \(each node is then named by its host\)/,
    );
    assert.equal(
      validateInventory({ workers: [{ host: "n[1]", name: "one" }] }, ctx()).inventory.workers[0]?.name,
      "one",
    );
    assert.match(
      groupProblem({ workers: ["node[01-02]", "w1", "@compute"] }),
      /\(key workers\[2\]\): the node name `node01` is used twice \(first at workers\[0\], line 3\)/,
    );
    assert.match(
      groupProblem({ workers: ["n[5-1]"] }),
      /\(key workers\[0\]\): `n\[5-1\]` is not a host name or a node set: at character 3, the range `5-1` runs backwards/,
    );
    assert.match(
      groupProblem({ workers: [{ host: "n[1-2" }] }),
      /\(key workers\[0\]\.host\): .* at character 2, this bracket is never closed/,
    );
    assert.match(
      groupProblem({ workers: [{ host: "[::1]" }] }),
      /an IPv6 address is written without brackets/,
    );
    assert.match(groupProblem({ workers: ["n1!n1"] }), /the node set `n1!n1` stands for no node/);
    assert.match(
      groupProblem({ workers: ["@other"] }),
      /`@other` is a ClusterShell group, and groups are not looked up/,
    );
    // What each name must be still holds, for each of them.
    assert.match(groupProblem({ workers: ["n1,ubuntu@n2"] }), /`ubuntu@n2` mixes a user into the host/);
    assert.match(groupProblem({ workers: ["n1,-oX"] }), /`-oX` is not a host name/);
  });
});
