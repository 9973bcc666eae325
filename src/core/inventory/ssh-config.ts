import { join, resolve } from "node:path";
import type { HostSettings } from "../ssh/node-route.js";

/**
 * What ~/.ssh/config says about one alias, read the way ssh reads it: the first value of each
 * keyword wins, IdentityFile is expanded as ssh expands it, and of ProxyJump and ProxyCommand
 * the one obtained first applies. Pure: the caller parses the file and says which keys exist.
 */

/** The keywords ssh-config's compute() gave an alias, lower-cased, in the order they were obtained. */
export type ComputedHost = Record<string, string | string[] | undefined>;

export interface SshConfigSource {
  path: string;
  text: string;
  homeDir: string;
  localUser: string;
  cwd: string;
  /** Like ssh, an IdentityFile that cannot be read is skipped (a `Host *` default key often does not exist). */
  isReadable(file: string): boolean;
}

export function hostSettingsFrom(
  computed: ComputedHost,
  alias: string,
  source: SshConfigSource,
): HostSettings | undefined {
  const one = (key: string) => {
    const value = computed[key];
    return Array.isArray(value) ? value[0] : value;
  };
  const out: HostSettings = {};
  const hostName = one("hostname");
  if (hostName) out.hostName = hostName.replaceAll("%h", alias);
  const port = Number(one("port"));
  if (Number.isInteger(port) && port > 0 && port < 65536) out.port = port;
  const user = one("user");
  if (user) out.user = user;
  const ids = computed.identityfile;
  if (ids) {
    const files = (Array.isArray(ids) ? ids : [ids])
      .map((f) => sshPath(f, { ...source, alias, hostName: out.hostName ?? alias }))
      .filter(source.isReadable);
    if (files.length > 0) out.identityFiles = files;
  }
  // ProxyJump and ProxyCommand compete: the one obtained first wins (ssh_config(5)); compute()
  // adds keys in the order it obtains them.
  const keys = Object.keys(computed);
  const jumpAt = keys.indexOf("proxyjump");
  const commandAt = keys.indexOf("proxycommand");
  if (jumpAt >= 0 || commandAt >= 0) {
    const keyword = commandAt < 0 || (jumpAt >= 0 && jumpAt < commandAt) ? "ProxyJump" : "ProxyCommand";
    const value = String(one(keyword.toLowerCase()) ?? "");
    const line = directiveLine(source.text, keyword, value);
    out.proxy = {
      keyword,
      value,
      at: line === undefined ? source.path : `${source.path} line ${line}`,
      fromInventory: false,
    };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The line (1-based) of the first `KEYWORD value` directive, for messages; undefined if not found. */
export function directiveLine(text: string, keyword: string, value: string): number | undefined {
  const squash = (t: string) => t.replace(/\s+/g, " ").trim();
  const pattern = new RegExp(`^\\s*${keyword}(?:\\s*=\\s*|\\s+)(.*)$`, "i");
  const lines = text.split(/\r?\n/);
  let firstOfKind: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const found = pattern.exec(lines[i]!);
    if (!found) continue;
    firstOfKind ??= i + 1;
    if (squash(found[1]!) === squash(value)) return i + 1;
  }
  return firstOfKind;
}

/** An IdentityFile as ssh expands it: `~`, the common % tokens, relative to where ssh runs. */
export function sshPath(
  file: string,
  at: { homeDir: string; localUser: string; cwd: string; alias: string; hostName: string },
): string {
  const expanded = file.replace(/%([%dhnu])/g, (_, token: string) => {
    if (token === "d") return at.homeDir;
    if (token === "h") return at.hostName;
    if (token === "n") return at.alias;
    if (token === "u") return at.localUser;
    return "%";
  });
  if (expanded === "~") return at.homeDir;
  if (expanded.startsWith("~/")) return join(at.homeDir, expanded.slice(2));
  return resolve(at.cwd, expanded);
}
