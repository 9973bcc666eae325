import { constants, existsSync } from "node:fs";
import { access, readFile } from "node:fs/promises";
import { homedir, userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import SSHConfig from "ssh-config";
import { isNode, LineCounter, parseDocument } from "yaml";
import { type SshHostConfig, validateInventory } from "../core/inventory-schema.js";
import { InventoryError } from "../errors.js";
import type { Inventory } from "./types.js";

/**
 * Finding and reading the inventory (DESIGN.md section 3): the file, ~/.ssh/config and the
 * identity files are read here; the rules are in core/inventory-schema.ts. Nothing is contacted.
 */

export interface InventoryLookup {
  explicitPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LoadOptions extends InventoryLookup {
  homeDir?: string;
  sshConfigPath?: string;
}

export function findInventory(lookup: InventoryLookup): string {
  const env = lookup.env ?? process.env;
  const cwd = lookup.cwd ?? process.cwd();
  if (lookup.explicitPath) {
    const path = resolve(cwd, lookup.explicitPath);
    if (!existsSync(path)) throw new InventoryError({ file: path }, "no such inventory file (given with -i)");
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

function sshConfigReader(text: string | undefined): (alias: string) => SshHostConfig | undefined {
  if (!text) return () => undefined;
  const config = SSHConfig.parse(text);
  return (alias) => {
    const computed = config.compute(alias) as Record<string, string | string[] | undefined>;
    const one = (key: string) => {
      const value = computed[key];
      return Array.isArray(value) ? value[0] : value;
    };
    const out: SshHostConfig = {};
    const hostName = one("HostName");
    if (hostName) out.hostName = hostName.replaceAll("%h", alias);
    const port = Number(one("Port"));
    if (Number.isInteger(port) && port > 0 && port < 65536) out.port = port;
    const user = one("User");
    if (user) out.user = user;
    const ids = computed.IdentityFile;
    if (ids) out.identityFiles = Array.isArray(ids) ? ids : [ids];
    return Object.keys(out).length > 0 ? out : undefined;
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
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
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
  const sshText = await readFile(sshConfigPath, "utf8").catch(() => undefined);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    // Aliases are resolved here, not while parsing: an alias bomb or an alias before its anchor.
    throw new InventoryError({ file }, `not valid YAML: ${(error as Error).message}`);
  }
  const validated = validateInventory(data, {
    file,
    baseDir: dirname(file),
    homeDir,
    defaultUser: defaultUser(env),
    sshHost: sshConfigReader(sshText),
    locate: (path) => {
      const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
      if (!isNode(node) || !node.range) return undefined;
      const at = lineCounter.linePos(node.range[0]);
      return { line: at.line, column: at.col };
    },
  });
  await Promise.all(
    validated.identityFiles.map(async (id) => {
      try {
        await access(id.file, constants.R_OK);
      } catch (error) {
        const node = doc.getIn(id.path, true);
        const at = isNode(node) && node.range ? lineCounter.linePos(node.range[0]) : undefined;
        const reason =
          (error as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : "cannot be read";
        throw new InventoryError(
          { file, ...(at ? { line: at.line, column: at.col } : {}), key: id.key },
          `the identity file ${id.file} ${reason}; fix the path, or remove the key to use ssh-agent`,
        );
      }
    }),
  );
  return validated.inventory;
}
