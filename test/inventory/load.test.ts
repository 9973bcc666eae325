import assert from "node:assert/strict";
import { access, chmod, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { describe, test } from "node:test";
import { InventoryError } from "../../src/core/errors.js";
import { findInventory, loadInventory } from "../../src/inventory/load.js";
import { inventoryTemplate } from "../../src/inventory/template.js";
import { cliAsNobody, isRoot, openForNobody } from "../fixtures/unprivileged.js";

const env = { HOME: "/nonexistent-home", USER: "tester" };

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sc-inv-"));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

async function loadError(dir: string, file = "sync-cluster.yaml"): Promise<InventoryError> {
  try {
    await loadInventory({ explicitPath: join(dir, file), env, cwd: dir });
  } catch (error) {
    assert.ok(error instanceof InventoryError, String(error));
    return error;
  }
  assert.fail("expected an InventoryError");
}

describe("loadInventory", () => {
  test("lookup order: -i, $SYNC_CLUSTER_INVENTORY, ./sync-cluster.yaml, config/cluster.yaml", async () => {
    const dir = await dirWith({
      "sync-cluster.yaml": "workers: []\n",
      "config/cluster.yaml": "workers: []\n",
      "other.yaml": "workers: []\n",
    });
    assert.equal(findInventory({ cwd: dir, env: {} }), join(dir, "sync-cluster.yaml"));
    assert.equal(
      findInventory({ cwd: dir, env: { SYNC_CLUSTER_INVENTORY: "other.yaml" } }),
      join(dir, "other.yaml"),
    );
    assert.equal(
      findInventory({
        cwd: dir,
        env: { SYNC_CLUSTER_INVENTORY: "other.yaml" },
        explicitPath: "config/cluster.yaml",
      }),
      join(dir, "config/cluster.yaml"),
    );
    const empty = await dirWith({});
    assert.throws(
      () => findInventory({ cwd: empty, env: {} }),
      /no inventory found\. Looked for .*sync-cluster\.yaml and .*config\/cluster\.yaml\. Write one with `sync-cluster init`/,
    );
    assert.throws(
      () => findInventory({ cwd: empty, env: {}, explicitPath: "x.yaml" }),
      /x\.yaml: no such inventory file \(given with -i\)/,
    );
    assert.throws(
      () => findInventory({ cwd: empty, env: { SYNC_CLUSTER_INVENTORY: "y.yaml" } }),
      /y\.yaml: no such inventory file \(named by \$SYNC_CLUSTER_INVENTORY\)/,
    );
    assert.throws(() => findInventory({ cwd: dir, env: {}, explicitPath: "config" }), /is a directory/);
    // config/cluster.yaml is the last place looked.
    const onlyConfig = await dirWith({ "config/cluster.yaml": "workers: []\n" });
    assert.equal(findInventory({ cwd: onlyConfig, env: {} }), join(onlyConfig, "config/cluster.yaml"));
  });

  test("YAML syntax errors and duplicate keys carry file, line and column", async () => {
    const dir = await dirWith({
      "sync-cluster.yaml": "workers:\n  - host: a\n  - host: [b\n",
      "dup.yaml": "workers: []\nworkers: []\n",
    });
    assert.match((await loadError(dir)).message, /sync-cluster\.yaml:\d+:\d+: not valid YAML/);
    assert.match(
      (await loadError(dir, "dup.yaml")).message,
      /dup\.yaml:2:1: not valid YAML: Map keys must be unique/,
    );
  });

  test("a wrong type names the key and its line", async () => {
    const dir = await dirWith({ "sync-cluster.yaml": 'workers:\n  - host: a\n  - host: b\n    port: "x"\n' });
    const error = await loadError(dir);
    assert.match(error.message, /sync-cluster\.yaml:4:5 \(key workers\[1\]\.port\): must be a whole number/);
    assert.deepEqual([error.at.line, error.at.key], [4, "workers[1].port"]);
  });

  test("unknown keys, duplicate names, unreadable identity files", async () => {
    const dir = await dirWith({
      "a.yaml": "defaults:\n  identityfile: ~/.ssh/id\nworkers: []\n",
      "b.yaml": "workers:\n  - host: x\n  - host: y\n    name: x\n",
      "c.yaml": "defaults:\n  identityFile: ./missing_key\nworkers:\n  - host: x\n",
    });
    assert.match(
      (await loadError(dir, "a.yaml")).message,
      /a\.yaml:2:\d+ \(key defaults\.identityfile\): unknown key `identityfile`; did you mean `identityFile`\?/,
    );
    assert.match(
      (await loadError(dir, "b.yaml")).message,
      /b\.yaml:3:\d+ \(key workers\[1\]\): the node name `x` is used twice/,
    );
    const c = await loadError(dir, "c.yaml");
    assert.match(
      c.message,
      /c\.yaml:2:\d+ \(key defaults\.identityFile\): the identity file .*missing_key does not exist/,
    );
  });

  test("an identity file that exists but cannot be read is refused", async () => {
    const dir = await dirWith({
      key: "secret",
      "sync-cluster.yaml": "defaults:\n  identityFile: key\nworkers: [x]\n",
    });
    await chmod(join(dir, "key"), 0);
    if (!isRoot) {
      assert.match((await loadError(dir)).message, /cannot be read/);
      return;
    }
    const home = await openForNobody(dir);
    await chmod(join(dir, "sync-cluster.yaml"), 0o644);
    const r = cliAsNobody(["status", "-i", "sync-cluster.yaml"], dir, home);
    assert.equal(r.status, 2, r.stderr);
    assert.match(
      r.stderr,
      /sync-cluster\.yaml:2:\d+ \(key defaults\.identityFile\).*identity file .*\/key cannot be read/,
    );
  });

  test("ssh config aliases and JSON inventories", async () => {
    const dir = await dirWith({
      ssh_config: "Host w13\n  HostName 10.0.0.13\n  Port 2200\n  User centos\n",
      "cluster.json": JSON.stringify({ workers: ["w13", { host: "10.0.0.14" }], concurrency: 4 }),
    });
    const inv = await loadInventory({
      explicitPath: join(dir, "cluster.json"),
      env: { ...env, SYNC_CLUSTER_SSH_CONFIG: join(dir, "ssh_config") },
      cwd: dir,
    });
    assert.equal(inv.concurrency, 4);
    assert.deepEqual(
      inv.workers.map((w) => [w.name, w.host, w.port, w.user]),
      [
        ["w13", "10.0.0.13", 2200, "centos"],
        ["10.0.0.14", "10.0.0.14", 22, "tester"],
      ],
    );
  });

  test("an unknown key is reported on its own line, even when its value spans several", async () => {
    const dir = await dirWith({ "sync-cluster.yaml": "concurrency: 2\nwrokers:\n  - host: a\n" });
    const error = await loadError(dir);
    assert.match(
      error.message,
      /sync-cluster\.yaml:2:1 \(key wrokers\): unknown key `wrokers`; did you mean `workers`\?/,
    );
  });

  test("empty files, empty sections and YAML merge keys", async () => {
    const dir = await dirWith({
      "empty.yaml": "# nothing yet\n",
      "sections.yaml": "project:\ndefaults:\n  # user: x\nworkers:\n",
      "merge.yaml": "x-gpu: &gpu { venv: /opt/gpu, user: gpu }\nworkers: []\n",
      "merge2.yaml": "defaults: &d { user: u }\nworkers:\n  - { <<: *d, host: a }\n",
    });
    assert.match((await loadError(dir, "empty.yaml")).message, /the inventory is empty/);
    const sections = await loadInventory({ explicitPath: join(dir, "sections.yaml"), env, cwd: dir });
    assert.deepEqual(sections.workers, []);
    assert.match((await loadError(dir, "merge.yaml")).message, /merge\.yaml:1:1 \(key x-gpu\): unknown key/);
    const merged = await loadInventory({ explicitPath: join(dir, "merge2.yaml"), env, cwd: dir });
    assert.equal(merged.workers[0]?.user, "u");
  });

  test("~/.ssh/config: keys in any case, IdentityFile expanded, missing ones skipped, Match exec not run", async () => {
    const dir = await dirWith({ "keys/w13": "k", "keys/w14": "k" });
    const marker = join(dir, "exec-ran");
    await writeFile(
      join(dir, "ssh_config"),
      [
        "host w13",
        "  hostname 10.0.0.13",
        "  PORT 2200",
        "  identityfile %d/keys/%n",
        "Host w14",
        "  HostName %h.example.org",
        `  IdentityFile ${join(dir, "keys/w14")}`,
        `Match exec "touch ${marker}"`,
        "  User fromexec",
        "Host *",
        "  IdentityFile ~/.ssh/does_not_exist",
        "",
      ].join("\n"),
    );
    await writeFile(join(dir, "sync-cluster.yaml"), "workers:\n  - w13\n  - host: w14\n  - other\n");
    const inv = await loadInventory({
      explicitPath: join(dir, "sync-cluster.yaml"),
      env: { ...env, HOME: dir },
      sshConfigPath: join(dir, "ssh_config"),
      cwd: dir,
    });
    assert.deepEqual(
      inv.workers.map((w) => [w.name, w.host, w.port, w.user, w.identityFiles]),
      [
        ["w13", "10.0.0.13", 2200, "tester", [join(dir, "keys/w13")]],
        ["w14", "w14.example.org", 22, "tester", [join(dir, "keys/w14")]],
        ["other", "other", 22, "tester", []],
      ],
    );
    await assert.rejects(access(marker), /ENOENT/);
  });

  test("~/.ssh/config: ProxyJump and ProxyCommand, the first obtained wins; a bad one names its line", async () => {
    const dir = await dirWith({ "keys/bastion": "k" });
    const config = join(dir, "ssh_config");
    await writeFile(
      config,
      [
        "Host w1",
        "  HostName 10.0.0.1",
        "  ProxyCommand relay %h %p",
        "Host w2",
        "  proxyjump=ops@bastion:2222",
        "Host bastion",
        "  HostName 203.0.113.5",
        `  IdentityFile ${join(dir, "keys/bastion")}`,
        "  ProxyJump none",
        "Host broken",
        "  ProxyJump bastion,,w1",
        "Host *",
        "  ProxyJump gw",
        "  ProxyCommand never %h",
        "",
      ].join("\n"),
    );
    await writeFile(join(dir, "sync-cluster.yaml"), "workers:\n  - w1\n  - w2\n  - w3\n");
    const inv = await loadInventory({
      explicitPath: join(dir, "sync-cluster.yaml"),
      env: { ...env, HOME: dir },
      sshConfigPath: config,
      cwd: dir,
    });
    assert.deepEqual(inv.workers[0]!.route, {
      hops: [],
      proxyCommand: { command: "relay 10.0.0.1 22", argv: ["relay", "10.0.0.1", "22"] },
    });
    assert.deepEqual(inv.workers[1]!.route?.hops, [
      {
        label: "bastion:2222",
        host: "203.0.113.5",
        port: 2222,
        user: "ops",
        identityFiles: [join(dir, "keys/bastion")],
      },
    ]);
    // `Host *` gives both: ProxyJump comes first in the file, so it is the one used.
    assert.deepEqual(
      inv.workers[2]!.route?.hops.map((h) => h.label),
      ["gw:22"],
    );
    assert.equal(inv.workers[2]!.route?.proxyCommand, undefined);

    await writeFile(join(dir, "broken.yaml"), "workers:\n  - broken\n");
    await assert.rejects(
      loadInventory({
        explicitPath: join(dir, "broken.yaml"),
        env: { ...env, HOME: dir },
        sshConfigPath: config,
        cwd: dir,
      }),
      (error: unknown) =>
        error instanceof InventoryError &&
        error.message ===
          `${join(dir, "broken.yaml")}:2:5 (key workers[0]): ProxyJump \`bastion,,w1\` (${config} line 11): a hop is empty (two commas in a row, or a comma at an end)`,
    );
  });

  test("a broken ssh config is named; a missing one is fine", async () => {
    const dir = await dirWith({ ssh_config: 'Host "a\n', "sync-cluster.yaml": "workers: [a]\n" });
    await assert.rejects(
      loadInventory({
        explicitPath: join(dir, "sync-cluster.yaml"),
        env: { ...env, SYNC_CLUSTER_SSH_CONFIG: join(dir, "ssh_config") },
      }),
      (error: unknown) =>
        error instanceof InventoryError &&
        error.message.startsWith(`${join(dir, "ssh_config")}: this ssh config`),
    );
    const inv = await loadInventory({
      explicitPath: join(dir, "sync-cluster.yaml"),
      env: { ...env, SYNC_CLUSTER_SSH_CONFIG: join(dir, "nope") },
    });
    assert.equal(inv.workers[0]?.host, "a");
  });

  test("5,000 workers load", async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => `  - host: node${i}.cluster`).join("\n");
    const dir = await dirWith({ "sync-cluster.yaml": `workers:\n${lines}\n` });
    const inv = await loadInventory({ explicitPath: join(dir, "sync-cluster.yaml"), env, cwd: dir });
    assert.equal(inv.workers.length, 5000);
  });

  test("the init template and config/cluster.example.yaml load as written", async () => {
    const dir = await dirWith({
      "t.yaml": inventoryTemplate({}),
      "t2.yaml": inventoryTemplate({
        entry: "wf.py",
        root: "my dir #1",
        workers: ["a", "b:c", "10.0.0.12:2222", "ubuntu@10.0.0.13", "true"],
      }),
    });
    const t = await loadInventory({ explicitPath: join(dir, "t.yaml"), env, cwd: dir });
    assert.equal(t.project.entry, "-m workflow.main");
    assert.deepEqual(
      t.workers.map((w) => w.name),
      ["10.0.0.11", "10.0.0.12:2222"],
    );
    const t2 = await loadInventory({ explicitPath: join(dir, "t2.yaml"), env, cwd: dir });
    assert.deepEqual(
      t2.workers.map((w) => [w.name, w.host, w.port, w.user]),
      [
        ["a", "a", 22, "tester"],
        ["b:c", "b:c", 22, "tester"],
        ["10.0.0.12:2222", "10.0.0.12", 2222, "tester"],
        ["10.0.0.13", "10.0.0.13", 22, "ubuntu"],
        ["true", "true", 22, "tester"],
      ],
    );
    assert.equal(t2.project.entry, "wf.py");
    assert.equal(t2.project.root, join(dir, "my dir #1"));
    assert.equal(t2.project.name, "my_dir_1");
    assert.equal(t.project.name, basename(dir));
    const example = await loadInventory({
      explicitPath: join(process.cwd(), "config", "cluster.example.yaml"),
      env,
      cwd: dir,
    });
    assert.deepEqual(
      example.workers.map((w) => w.name),
      ["10.0.0.11", "10.0.0.12:2222", "gpu-1"],
    );
    assert.equal(example.workers[2]?.venv, "/opt/venvs/toil");
  });
});
