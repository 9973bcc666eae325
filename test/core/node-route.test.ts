import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InventoryError } from "../../src/core/errors.js";
import { type SshHostConfig, validateInventory } from "../../src/core/inventory/inventory-schema.js";
import type { ProxySetting } from "../../src/core/ssh/node-route.js";
import { schemaContext } from "../fixtures/schema-context.js";

const ctx = schemaContext;

const fromConfig = (keyword: ProxySetting["keyword"], value: string, line = 3): ProxySetting => ({
  keyword,
  value,
  at: `/home/me/.ssh/config line ${line}`,
  fromInventory: false,
});

const nodes = (doc: Record<string, unknown>, ssh: Record<string, SshHostConfig> = {}) =>
  validateInventory({ defaults: { user: "ubuntu", identityFile: "~/.ssh/id" }, ...doc }, ctx(ssh)).inventory;

const problem = (doc: Record<string, unknown>, ssh: Record<string, SshHostConfig> = {}) => {
  try {
    nodes(doc, ssh);
  } catch (error) {
    assert.ok(error instanceof InventoryError);
    return error.message;
  }
  assert.fail("expected an InventoryError");
};

describe("the route to a node", () => {
  test("the inventory's jump key, per node or in defaults; hops log in as the node", () => {
    const inv = nodes({
      defaults: { user: "ubuntu", identityFile: "~/.ssh/id", jump: "bastion" },
      workers: [
        { host: "10.0.0.1" },
        { host: "10.0.0.2", jump: "alice@gw:2222,login" },
        { host: "10.0.0.3", jump: "none" },
      ],
    });
    assert.deepEqual(inv.workers[0]!.route, {
      hops: [
        {
          label: "bastion:22",
          host: "bastion",
          port: 22,
          user: "ubuntu",
          identityFiles: ["/home/me/.ssh/id"],
        },
      ],
    });
    assert.deepEqual(
      inv.workers[1]!.route?.hops.map((h) => [h.label, h.user, h.port]),
      [
        ["gw:2222", "alice", 2222],
        ["login:22", "ubuntu", 22],
      ],
    );
    assert.equal(inv.workers[2]!.route, undefined);
    assert.equal(Object.hasOwn(inv.workers[2]!, "route"), false);
  });

  test("a hop with a Host block in ~/.ssh/config takes its HostName, Port, User and IdentityFile", () => {
    const inv = nodes(
      {
        workers: [
          { host: "10.0.0.1", jump: "bastion" },
          { host: "10.0.0.2", jump: "root@bastion:2200" },
        ],
      },
      {
        bastion: {
          hostName: "203.0.113.9",
          port: 2022,
          user: "jump",
          identityFiles: ["/home/me/.ssh/bastion"],
        },
      },
    );
    assert.deepEqual(inv.workers[0]!.route?.hops, [
      {
        label: "bastion:2022",
        host: "203.0.113.9",
        port: 2022,
        user: "jump",
        identityFiles: ["/home/me/.ssh/bastion"],
      },
    ]);
    // What the hop says explicitly wins over its Host block, as in OpenSSH.
    assert.deepEqual(
      inv.workers[1]!.route?.hops.map((h) => [h.user, h.port]),
      [["root", 2200]],
    );
  });

  test("ProxyJump and ProxyCommand from ~/.ssh/config; the inventory's jump wins, and none disables both", () => {
    const ssh = {
      w1: { hostName: "10.0.0.1", proxy: fromConfig("ProxyJump", "bastion") },
      w2: { hostName: "10.0.0.2", proxy: fromConfig("ProxyCommand", "nc -X connect -x proxy:8080 %h %p") },
      w3: { proxy: fromConfig("ProxyCommand", "none") },
    };
    const inv = nodes(
      {
        workers: [
          "w1",
          "w2",
          "w3",
          { host: "w1", name: "direct", jump: "none" },
          { host: "w2", name: "viagw", jump: "gw" },
        ],
      },
      ssh,
    );
    assert.deepEqual(
      inv.workers[0]!.route?.hops.map((h) => h.label),
      ["bastion:22"],
    );
    assert.deepEqual(inv.workers[1]!.route, {
      hops: [],
      proxyCommand: {
        command: "nc -X connect -x proxy:8080 10.0.0.2 22",
        argv: ["nc", "-X", "connect", "-x", "proxy:8080", "10.0.0.2", "22"],
      },
    });
    assert.equal(inv.workers[2]!.route, undefined);
    assert.equal(inv.workers[3]!.route, undefined);
    assert.deepEqual(inv.workers[4]!.route, {
      hops: [{ label: "gw:22", host: "gw", port: 22, user: "ubuntu", identityFiles: ["/home/me/.ssh/id"] }],
    });
  });

  test("the first hop's own ProxyJump or ProxyCommand is followed; %h %p %r are the first hop's", () => {
    const ssh = {
      login: { hostName: "10.1.0.1", user: "jd", proxy: fromConfig("ProxyJump", "gateway") },
      gateway: { hostName: "198.51.100.7", proxy: fromConfig("ProxyCommand", "relay %h %p %r", 9) },
    };
    const inv = nodes({ workers: [{ host: "10.1.0.5", jump: "login" }] }, ssh);
    assert.deepEqual(inv.workers[0]!.route, {
      hops: [
        {
          label: "gateway:22",
          host: "198.51.100.7",
          port: 22,
          user: "ubuntu",
          identityFiles: ["/home/me/.ssh/id"],
        },
        { label: "login:22", host: "10.1.0.1", port: 22, user: "jd", identityFiles: ["/home/me/.ssh/id"] },
      ],
      proxyCommand: {
        command: "relay 198.51.100.7 22 ubuntu",
        argv: ["relay", "198.51.100.7", "22", "ubuntu"],
      },
    });
  });

  test("a host is never its own jump host: `Host *` ProxyJump and defaults.jump reach the bastion directly", () => {
    const ssh = {
      bastion: { hostName: "10.0.0.254", proxy: fromConfig("ProxyJump", "bastion") },
      w1: { hostName: "10.0.0.1", proxy: fromConfig("ProxyJump", "bastion") },
    };
    const inv = nodes({ leader: "bastion", workers: ["w1", { host: "10.0.0.2", jump: "10.0.0.254" }] }, ssh);
    assert.equal(inv.leader!.route, undefined);
    assert.deepEqual(
      inv.workers[0]!.route?.hops.map((h) => h.host),
      ["10.0.0.254"],
    );
    assert.deepEqual(
      inv.workers[1]!.route?.hops.map((h) => h.host),
      ["10.0.0.254"],
    );
    const head = nodes({ defaults: { jump: "head" }, leader: "head", workers: ["w1"] }, {});
    assert.equal(head.leader!.route, undefined);
    assert.deepEqual(
      head.workers[0]!.route?.hops.map((h) => h.label),
      ["head:22"],
    );
  });

  test("bad hops name the inventory key, or the ssh config line and the node's host key", () => {
    assert.equal(
      problem({ workers: [{ host: "10.0.0.1", jump: "a,,b" }] }),
      "/inv/cluster.yaml:4:1 (key workers[0].jump): `workers[0].jump: a,,b`: a hop is empty (two commas in a row, or a comma at an end)",
    );
    assert.match(
      problem({ defaults: { jump: "gw:99999" }, workers: ["10.0.0.1"] }),
      /\(key defaults\.jump\): `defaults\.jump: gw:99999`: `gw:99999` has the port `99999`/,
    );
    assert.match(
      problem({ workers: [{ host: "10.0.0.1", jump: 7 }] }),
      /\(key workers\[0\]\.jump\): must be a non-empty text/,
    );
    assert.equal(
      problem({ workers: ["w1"] }, { w1: { proxy: fromConfig("ProxyJump", "bastion:ssh", 12) } }),
      "/inv/cluster.yaml:3:1 (key workers[0]): ProxyJump `bastion:ssh` (/home/me/.ssh/config line 12): `bastion:ssh` has the port `ssh`: a port is a whole number from 1 to 65535",
    );
    assert.match(
      problem({ workers: ["w1"] }, { w1: { proxy: fromConfig("ProxyCommand", "nc %h %P", 4) } }),
      /ProxyCommand `nc %h %P` \(\/home\/me\/\.ssh\/config line 4\): has the unknown token %P/,
    );
    assert.match(
      problem({ workers: [{ host: "10.0.0.1", jump: "jump" }] }, { jump: { hostName: "-oProxyCommand=x" } }),
      /HostName `-oProxyCommand=x`, which is not a host name/,
    );
  });

  test("loops and too many hops are refused", () => {
    assert.match(
      problem({ workers: [{ host: "10.0.0.1", jump: "a,b,a" }] }),
      /goes through a:22 twice \(a:22 -> b:22 -> a:22\): a loop/,
    );
    const cycle = {
      a: { proxy: fromConfig("ProxyJump", "b", 2) },
      b: { proxy: fromConfig("ProxyJump", "a", 5) },
    };
    assert.match(
      problem({ workers: [{ host: "10.0.0.1", jump: "a" }] }, cycle),
      /ProxyJump `a` \(\/home\/me\/\.ssh\/config line 5\), on the way to 10\.0\.0\.1:22: a loop: 10\.0\.0\.1:22 -> a:22 -> b:22 -> a:22/,
    );
    const nine = Array.from({ length: 9 }, (_, i) => `h${i}`).join(",");
    assert.match(
      problem({ workers: [{ host: "10.0.0.1", jump: nine }] }),
      /9 hops is more than the 8 allowed/,
    );
    const deep = { h0: { proxy: fromConfig("ProxyJump", "g1,g2,g3,g4") } };
    assert.match(
      problem({ workers: [{ host: "10.0.0.1", jump: "h0,h1,h2,h3,h4" }] }, deep),
      /has 9 hops, more than the 8 allowed/,
    );
  });
});
