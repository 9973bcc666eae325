import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InventoryError } from "../../src/core/errors.js";
import { HostListError, hostListGroups, parseHostList } from "../../src/core/inventory/host-list.js";
import { type SshHostConfig, validateInventory } from "../../src/core/inventory/inventory-schema.js";
import {
  describeStep,
  NotInJobError,
  usableSinfoNodes,
  type WorkersSource,
  workersCommandSteps,
} from "../../src/core/inventory/workers-source.js";
import { schemaContext } from "../fixtures/schema-context.js";

const ctx = (ssh: Record<string, SshHostConfig> = {}) => schemaContext(ssh, 3);

const problem = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof InventoryError, String(error));
    return error.message;
  }
  assert.fail("expected an InventoryError");
};

describe("the output of a workers command", () => {
  test("one host a line; blank lines, comments and repeats are skipped; user@ and :port are read", () => {
    const hosts = parseHostList(
      "# nodes of partition debug\nn1\n\n  n2  \nalice@n3:2222  # the GPU one\nn1\n[fe80::1]:2200\nfe80::2\nbob@[::1]\n",
    );
    assert.deepEqual(
      hosts.map((h) => [h.host, h.user, h.port, h.line]),
      [
        ["n1", undefined, undefined, 2],
        ["n2", undefined, undefined, 4],
        ["n3", "alice", 2222, 5],
        ["fe80::1", undefined, 2200, 7],
        ["fe80::2", undefined, undefined, 8],
        ["::1", "bob", undefined, 9],
      ],
    );
    assert.deepEqual(parseHostList("\r\n#only a comment\r\n"), []);
    assert.deepEqual(
      parseHostList("n1\r\nn2\r\n").map((h) => h.host),
      ["n1", "n2"],
    );
  });

  test("a line that is not one host names its line and says what to print", () => {
    const error = (output: string) => {
      try {
        parseHostList(output);
      } catch (e) {
        assert.ok(e instanceof HostListError);
        return e.message;
      }
      assert.fail("expected a HostListError");
    };
    assert.match(
      error("n1\nn2 idle\n"),
      /^line 2 of its output, `n2 idle`, is not one host: print one host a line/,
    );
    assert.match(error("n1:0\n"), /line 1 .* has a port that is not a whole number from 1 to 65535/);
    assert.match(error("n1:\n"), /has a port that is not a whole number/);
    assert.match(error("n1:70000\n"), /has a port/);
    assert.match(error("-oProxyCommand=x\n"), /is not a host name/);
    assert.match(error("-x@n1\n"), /has no usable user/);
    assert.match(error("a@b@n1\n"), /has no usable user/);
    assert.match(
      error("n1\nalice@node[1-\n"),
      /^line 2 of its output, `alice@node\[1-`, is not a host or a node set: at character 11, this bracket is never closed/,
    );
    assert.match(error("node[3-1]:2222\n"), /at character 6, the range `3-1` runs backwards/);
    assert.match(error("n[1-2]!n[1-2]\n"), /is a node set without nodes/);
    assert.match(error("n[1-2],-x\n"), /names `-x`, which is not a host name/);
    // Without a group's members (asked of nodeset at the edge), a group is not guessed.
    assert.match(error("@n1\n"), /`@n1` is a ClusterShell group, and groups are not looked up here/);
  });

  test("a line may be a ClusterShell node set; user@ and :port apply to each of its nodes", () => {
    const hosts = parseHostList("node[01-03]\nalice@gpu[1-2]:2222\nnode02\n[fe80::1]:2200\nn[1-4]!n[2-3]\n");
    assert.deepEqual(
      hosts.map((h) => [h.host, h.user, h.port, h.line, h.text]),
      [
        ["node01", undefined, undefined, 1, "node[01-03]"],
        ["node02", undefined, undefined, 1, "node[01-03]"],
        ["node03", undefined, undefined, 1, "node[01-03]"],
        ["gpu1", "alice", 2222, 2, "alice@gpu[1-2]:2222"],
        ["gpu2", "alice", 2222, 2, "alice@gpu[1-2]:2222"],
        ["fe80::1", undefined, 2200, 4, "[fe80::1]:2200"],
        ["n1", undefined, undefined, 5, "n[1-4]!n[2-3]"],
        ["n4", undefined, undefined, 5, "n[1-4]!n[2-3]"],
      ],
    );
  });

  test("groups in the output are named for the edge to look up, then expanded with their members", () => {
    const output = "@compute\nalice@@gpu:2222\nn9,@slurm:debug\n@compute!node01\n";
    assert.deepEqual(hostListGroups(output), [
      { group: "@compute", line: 1, text: "@compute" },
      { group: "@gpu", line: 2, text: "alice@@gpu:2222" },
      { group: "@slurm:debug", line: 3, text: "n9,@slurm:debug" },
    ]);
    const members = new Map([
      ["@compute", ["node01", "node02"]],
      ["@gpu", ["g1"]],
      ["@slurm:debug", ["d1"]],
    ]);
    assert.deepEqual(
      parseHostList(output, members).map((h) => [h.host, h.user, h.port, h.line]),
      [
        ["node01", undefined, undefined, 1],
        ["node02", undefined, undefined, 1],
        ["g1", "alice", 2222, 2],
        ["d1", undefined, undefined, 3],
        ["n9", undefined, undefined, 3],
      ],
    );
    assert.throws(
      () => hostListGroups("ok\n@rack[2-1]\n"),
      (e: unknown) =>
        e instanceof HostListError && /^line 2 of its output.*`2-1` runs backwards/.test(e.message),
    );
  });
});

describe("the programs a workers source runs", () => {
  const source = (extra: Partial<WorkersSource>): WorkersSource => ({
    key: "workers.slurm",
    at: { file: "/inv/cluster.yaml" },
    timeoutSeconds: 30,
    refreshSeconds: 30,
    ...extra,
  });

  test("a command runs through sh -c, so that it can be a pipeline", () => {
    const steps = workersCommandSteps(
      source({ command: "scontrol show hostnames $SLURM_JOB_NODELIST | sort" }),
      {},
    );
    assert.deepEqual(steps, [
      { argv: ["/bin/sh", "-c", "scontrol show hostnames $SLURM_JOB_NODELIST | sort"] },
    ]);
    assert.equal(describeStep(steps[0]!), "scontrol show hostnames $SLURM_JOB_NODELIST | sort");
  });

  test("a partition: its nodes that are up and answering, one a line, with no shell", () => {
    const steps = workersCommandSteps(source({ slurm: { partition: "debug" } }), {});
    assert.deepEqual(steps, [
      {
        argv: [
          "sinfo",
          "--Node",
          "--noheader",
          "--format=%N %T",
          "--partition=debug",
          "--states=idle,mixed,allocated,completing",
          "--responding",
        ],
        sinfoStates: true,
      },
    ]);
    assert.equal(
      describeStep(steps[0]!),
      "sinfo --Node --noheader '--format=%N %T' --partition=debug --states=idle,mixed,allocated,completing --responding",
    );
    // sinfo counts a drained idle node as idle: no job starts there, so it is left out.
    assert.equal(
      usableSinfoNodes(
        "n1 idle\nn2 drained\nn3 mixed\nn4 draining\nn5 allocated\n\nn6 DRAINED\nn7 completing\n",
      ),
      "n1\nn3\nn5\nn7\n",
    );
  });

  test("a job: squeue's node list expanded by scontrol show hostnames; `current` is SLURM_JOB_ID", () => {
    const expected = (job: string) => [
      { argv: ["squeue", "--noheader", `--jobs=${job}`, "--format=%N"] },
      { argv: ["scontrol", "show", "hostnames"], previousOutput: true },
    ];
    assert.deepEqual(
      workersCommandSteps(source({ slurm: { job: "1234" } }), { SLURM_JOB_ID: "99" }),
      expected("1234"),
    );
    assert.deepEqual(
      workersCommandSteps(source({ slurm: { job: "current" } }), { SLURM_JOB_ID: "99" }),
      expected("99"),
    );
    assert.throws(
      () => workersCommandSteps(source({ slurm: { job: "current" } }), {}),
      (e: unknown) => e instanceof NotInJobError && /SLURM_JOB_ID is not set/.test(e.message),
    );
  });
});

describe("an inventory whose workers come from a command", () => {
  test("the source is read with its defaults; no worker is listed before the command runs", () => {
    const { inventory, workersFrom } = validateInventory(
      { workers: { command: "./list-nodes", timeout: 5 } },
      ctx(),
    );
    assert.deepEqual(inventory.workers, []);
    assert.deepEqual(inventory.workersSource, {
      key: "workers.command",
      at: { file: "/inv/cluster.yaml", line: 3, column: 3, key: "workers.command" },
      timeoutSeconds: 5,
      refreshSeconds: 30,
      command: "./list-nodes",
    });
    assert.ok(workersFrom);
    const slurm = validateInventory({ workers: { slurm: { job: 1234 }, refresh: 10 } }, ctx()).inventory;
    assert.deepEqual(slurm.workersSource?.slurm, { job: "1234" });
    assert.equal(slurm.workersSource?.refreshSeconds, 10);
    assert.deepEqual(
      validateInventory({ workers: { slurm: { partition: "gpu-a100" } } }, ctx()).inventory.workersSource
        ?.slurm,
      { partition: "gpu-a100" },
    );
  });

  test("printed hosts get the defaults and ~/.ssh/config, as listed workers do; the leader is left out", () => {
    const { workersFrom } = validateInventory(
      {
        defaults: { user: "ubuntu", venv: "/opt/venv", identityFile: "~/.ssh/cluster" },
        leader: { host: "head" },
        workers: { slurm: { partition: "debug" } },
      },
      ctx({ n1: { hostName: "10.0.0.1", port: 2201 }, head: { hostName: "10.0.0.100" } }),
    );
    const nodes = workersFrom!(parseHostList("n1\nalice@n2:2222\nhead\n10.0.0.100\n"));
    assert.deepEqual(
      nodes.map((n) => [n.name, n.role, n.host, n.port, n.user, n.venv, n.identityFiles]),
      [
        ["n1", "worker", "10.0.0.1", 2201, "ubuntu", "/opt/venv", ["/home/me/.ssh/cluster"]],
        ["n2:2222", "worker", "n2", 2222, "alice", "/opt/venv", ["/home/me/.ssh/cluster"]],
      ],
    );
    // Listing again is no duplicate of the last listing.
    assert.deepEqual(
      workersFrom!(parseHostList("n1\n")).map((n) => n.name),
      ["n1"],
    );
  });

  test("a printed host that cannot be a node names the key and the line of the output", () => {
    const { workersFrom } = validateInventory(
      { leader: { host: "h", name: "boss" }, workers: { command: "./list" } },
      ctx(),
    );
    assert.match(
      problem(() => workersFrom!(parseHostList("a\nall\n"))),
      /^\/inv\/cluster\.yaml:3:3 \(key workers\.command\): line 2 of the output of workers\.command \(`all`\): `all` means a group of nodes/,
    );
    // The leader's own name printed by the scheduler is the leader, not a second node of that name.
    assert.deepEqual(
      workersFrom!(parseHostList("boss\nb\n")).map((n) => n.name),
      ["b"],
    );
    assert.match(
      problem(() => workersFrom!(parseHostList("x@a\ny@a\n"))),
      /line 2 of the output of workers\.command \(`y@a`\): the node name `a` is used twice \(first at line 1 of the output/,
    );
  });

  test("each mistake in the source names its key", () => {
    const bad = (workers: unknown) => problem(() => validateInventory({ workers }, ctx()));
    assert.match(
      bad({}),
      /key workers\): a `workers` mapping lists the workers with a command: give `command`/,
    );
    assert.match(bad({ command: "x", slurm: { job: 1 } }), /give either `command` or `slurm`, not both/);
    assert.match(
      bad({ comand: "x" }),
      /key workers\.comand\): unknown key `comand`; did you mean `command`\?/,
    );
    assert.match(bad({ command: "" }), /key workers\.command\): must be a non-empty text/);
    assert.match(
      bad({ command: "x", timeout: 0 }),
      /key workers\.timeout\): must be a positive number of seconds/,
    );
    assert.match(bad({ command: "x", refresh: "1m" }), /key workers\.refresh\): must be a positive number/);
    assert.match(bad({ slurm: {} }), /key workers\.slurm\): give `partition: NAME` .* or `job: ID`/);
    assert.match(bad({ slurm: { partition: "a", job: 1 } }), /key workers\.slurm\): give `partition/);
    assert.match(
      bad({ slurm: { partition: "a b" } }),
      /workers\.slurm\.partition\): `a b` is not a Slurm partition/,
    );
    assert.match(bad({ slurm: { job: "12; rm" } }), /workers\.slurm\.job\): `12; rm` is not a Slurm job id/);
    assert.match(bad({ slurm: { nodes: "a" } }), /unknown key `nodes`/);
    assert.match(bad({ slurm: "debug" }), /`workers\.slurm` must be a mapping of keys/);
  });
});
