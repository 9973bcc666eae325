import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { homedir, userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import SSHConfig from "ssh-config";
import { type Document, isMap, isNode, isScalar, LineCounter, parseDocument } from "yaml";
import { InventoryError } from "../core/errors.js";
import { keyPath, type SshHostConfig, validateInventory } from "../core/inventory/inventory-schema.js";
import type { Inventory } from "../core/inventory/inventory-types.js";
import type { GroupMembers } from "../core/inventory/node-set.js";
import type { MetadataTexts } from "../core/inventory/project-name.js";
import { type ComputedHost, hostSettingsFrom } from "../core/inventory/ssh-config.js";
import { groupsNamedByWorkers } from "../core/inventory/worker-groups.js";
import { lookUpNodeGroup, NodeGroupError } from "./node-groups.js";
import { listWorkers } from "./workers-command.js";

/**
 * Finding and reading the inventory (docs/DESIGN.md section 3): the file, ~/.ssh/config and the
 * identity files are read here, a `workers` command is run on this machine (workers-command.ts)
 * and ClusterShell is asked for the groups the workers name (node-groups.ts); the rules are in
 * core/inventory/. No node is contacted.
 */

export interface InventoryLookup {
  explicitPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LoadOptions extends InventoryLookup {
  homeDir?: string;
  sshConfigPath?: string;
  /**
   * Run a `workers` command to list the workers and ask ClusterShell for the groups they name
   * (default true); false leaves those workers out.
   */
  listWorkers?: boolean;
}

export function findInventory(lookup: InventoryLookup): string {
  const env = lookup.env ?? process.env;
  const cwd = lookup.cwd ?? process.cwd();
  if (lookup.explicitPath) {
    const path = resolve(cwd, lookup.explicitPath);
    if (!existsSync(path)) throw new InventoryError({ file: path }, "no such inventory file (given with -i)");
    if (statSync(path).isDirectory())
      throw new InventoryError({ file: path }, "is a directory; give -i the inventory file itself");
    return path;
  }
  if (env.SYNC_CLUSTER_INVENTORY) {
    const path = resolve(cwd, env.SYNC_CLUSTER_INVENTORY);
    if (!existsSync(path))
      throw new InventoryError({ file: path }, "no such inventory file (named by $SYNC_CLUSTER_INVENTORY)");
    return path;
  }
  const candidates = [join(cwd, "sync-cluster.yaml"), join(cwd, "config", "cluster.yaml")];
  const found = candidates.find((c) => existsSync(c));
  if (found) return found;
  throw new InventoryError(
    { file: candidates[0]! },
    `no inventory found. Looked for -i PATH, $SYNC_CLUSTER_INVENTORY, ${candidates.join(" and ")}. Write one with \`sync-cluster init\`.`,
  );
}

interface SshConfigFile {
  path: string;
  text: string | undefined;
  homeDir: string;
  localUser: string;
  cwd: string;
}

/**
 * ~/.ssh/config as ssh reads it for one alias. `Match exec` blocks are skipped: loading an
 * inventory runs nothing. Like ssh, an IdentityFile from there that cannot be read is skipped
 * (a `Host *` default key often does not exist); the inventory's own identityFile must exist.
 */
function sshConfigReader(source: SshConfigFile): (alias: string) => SshHostConfig | undefined {
  if (!source.text) return () => undefined;
  let config: SSHConfig;
  try {
    config = SSHConfig.parse(source.text);
  } catch (error) {
    throw new InventoryError(
      { file: source.path },
      `this ssh config cannot be read: ${(error as Error).message}; fix it, or point $SYNC_CLUSTER_SSH_CONFIG elsewhere`,
    );
  }
  const readable = new Map<string, boolean>();
  const isReadable = (file: string) => {
    let ok = readable.get(file);
    if (ok === undefined) {
      try {
        accessSync(file, constants.R_OK);
        ok = true;
      } catch {
        ok = false;
      }
      readable.set(file, ok);
    }
    return ok;
  };
  return (alias) => {
    // Keys in ssh config are case-insensitive; ignoreCase gives them lower-cased.
    const computed = config.compute(alias, { ignoreCase: true, matchExec: false }) as ComputedHost;
    return hostSettingsFrom(computed, alias, { ...source, text: source.text!, isReadable });
  };
}

function defaultUser(env: NodeJS.ProcessEnv): string {
  if (env.USER) return env.USER;
  try {
    return userInfo().username;
  } catch {
    return "root";
  }
}

/**
 * Line and column of a key path: of the key itself for a mapping entry (where the eye looks for
 * `port:`), of the item for a list entry. Undefined for what the file does not spell out.
 */
function locate(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly (string | number)[],
): { line: number; column: number } | undefined {
  const last = path[path.length - 1];
  let node: unknown;
  if (path.length === 0) node = doc.contents;
  else if (typeof last === "number") node = doc.getIn(path, true);
  else {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    const pair = isMap(parent)
      ? parent.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === last)
      : undefined;
    node = pair?.key;
  }
  if (!isNode(node) || !node.range) return undefined;
  const at = lineCounter.linePos(node.range[0]);
  return { line: at.line, column: at.col };
}

export async function loadInventory(options: LoadOptions = {}): Promise<Inventory> {
  const env = options.env ?? process.env;
  const file = findInventory(options);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new InventoryError({ file }, `cannot be read: ${(error as Error).message}`);
  }
  const lineCounter = new LineCounter();
  // merge: `<<: *gpu` shares settings between nodes, as in Ansible inventories.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  const first = doc.errors[0];
  if (first) {
    const at = lineCounter.linePos(first.pos[0]);
    throw new InventoryError(
      { file, line: at.line, column: at.col },
      `not valid YAML: ${first.message.split("\n")[0]}`,
    );
  }
  const homeDir = options.homeDir ?? env.HOME ?? homedir();
  const sshConfigPath =
    env.SYNC_CLUSTER_SSH_CONFIG ?? options.sshConfigPath ?? join(homeDir, ".ssh", "config");
  // No ssh config (or an unreadable one) is fine, as for ssh: the inventory then says everything.
  const sshText = await readFile(sshConfigPath, "utf8").catch(() => undefined);
  const localUser = defaultUser(env);
  const cwd = options.cwd ?? process.cwd();
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    // Aliases are resolved here, not while parsing: an alias bomb or an alias before its anchor.
    throw new InventoryError({ file }, `not valid YAML: ${(error as Error).message}`);
  }
  const locateKey = (path: readonly (string | number)[]) => locate(doc, lineCounter, path);
  const nodeGroups =
    options.listWorkers === false
      ? undefined
      : await workerGroups(data, { file, env, cwd: dirname(file), at: locateKey });
  const validated = validateInventory(data, {
    file,
    baseDir: dirname(file),
    homeDir,
    defaultUser: localUser,
    sshHost: sshConfigReader({ path: sshConfigPath, text: sshText, homeDir, localUser, cwd }),
    locate: locateKey,
    metadataOf: packagingMetadataOf,
    ...(nodeGroups ? { nodeGroups } : {}),
  });
  await Promise.all(
    validated.identityFiles.map(async (id) => {
      try {
        await access(id.file, constants.R_OK);
      } catch (error) {
        const at = locateKey(id.path);
        const reason =
          (error as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : "cannot be read";
        throw new InventoryError(
          { file, ...(at ? { line: at.line, column: at.column } : {}), key: id.key },
          `the identity file ${id.file} ${reason}; fix the path, or remove the key to use ssh-agent`,
        );
      }
    }),
  );
  const source = validated.inventory.workersSource;
  if (source && validated.workersFrom && options.listWorkers !== false) {
    // Run on this machine, in the inventory's directory, every time the inventory is loaded.
    const hosts = await listWorkers(source, { cwd: dirname(file), env });
    validated.inventory.workers = validated.workersFrom(hosts);
  }
  return validated.inventory;
}

/** The members of the ClusterShell groups the workers list names, asked of `nodeset` before validation. */
async function workerGroups(
  data: unknown,
  options: {
    file: string;
    env: NodeJS.ProcessEnv;
    cwd: string;
    at: (path: readonly (string | number)[]) => { line: number; column: number } | undefined;
  },
): Promise<GroupMembers> {
  const members = new Map<string, string[]>();
  for (const { group, path } of groupsNamedByWorkers(data)) {
    if (members.has(group)) continue;
    try {
      members.set(group, await lookUpNodeGroup(group, options));
    } catch (error) {
      if (!(error instanceof NodeGroupError)) throw error;
      const where = options.at(path);
      throw new InventoryError(
        {
          file: options.file,
          ...(where ? { line: where.line, column: where.column } : {}),
          key: keyPath(path),
        },
        error.message,
      );
    }
  }
  return members;
}

/** The packaging files that name a project, read when the inventory names none (project-name.ts). */
function packagingMetadataOf(dir: string): MetadataTexts {
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name), "utf8");
    } catch {
      return undefined;
    }
  };
  const texts: MetadataTexts = {};
  const pyproject = read("pyproject.toml");
  const setupCfg = read("setup.cfg");
  const setupPy = read("setup.py");
  if (pyproject !== undefined) texts.pyprojectToml = pyproject;
  if (setupCfg !== undefined) texts.setupCfg = setupCfg;
  if (setupPy !== undefined) texts.setupPy = setupPy;
  return texts;
}
