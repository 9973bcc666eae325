import { isAbsolute, join, resolve } from "node:path";
import { InventoryError } from "./errors.js";
import type { Inventory, NodeRole, NodeSpec, ProjectSpec } from "./inventory-types.js";
import { defaultProjectName, type MetadataTexts } from "./project-name.js";

/**
 * The inventory's rules, applied to an already-parsed document: every key checked, defaults
 * merged, ~/.ssh/config applied. Pure (the file, its positions and the ssh config come in), so
 * every rule is tested without touching a disk. Errors name the file, line and key.
 */

export interface SshHostConfig {
  hostName?: string;
  port?: number;
  user?: string;
  identityFiles?: string[];
}

export interface SchemaContext {
  file: string;
  /** The inventory's directory: relative local paths are relative to it. */
  baseDir: string;
  homeDir: string;
  defaultUser: string;
  /** Line and column of the value at a key path, when known. */
  locate(path: readonly (string | number)[]): { line: number; column: number } | undefined;
  /** ~/.ssh/config applied to an alias; undefined when nothing applies. */
  sshHost(alias: string): SshHostConfig | undefined;
  /** The packaging metadata of a local directory (see project-name.ts); none when not given. */
  metadataOf?(dir: string): MetadataTexts;
}

export interface ValidatedInventory {
  inventory: Inventory;
  /** Identity files named in the inventory, each with the first key that named it. */
  identityFiles: { file: string; key: string; path: (string | number)[] }[];
}

type Path = (string | number)[];

const TOP_KEYS = ["project", "defaults", "concurrency", "daemon", "leader", "workers"];
const PROJECT_KEYS = ["entry", "root", "python", "include", "exclude", "name", "batchSystem"];

/**
 * Toil's --batchSystem names. The grid ones start `_toil_worker` on the node through the PATH they
 * copy from the leader (Toil does not ship code to them): `check` verifies that route.
 */
export const GRID_BATCH_SYSTEMS = [
  "slurm",
  "grid_engine",
  "gridengine",
  "lsf",
  "torque",
  "htcondor",
] as const;
const OTHER_BATCH_SYSTEMS = ["single_machine", "kubernetes", "mesos", "aws_batch"] as const;
export type BatchSystem = (typeof GRID_BATCH_SYSTEMS)[number] | (typeof OTHER_BATCH_SYSTEMS)[number];
const NODE_KEYS = [
  "name",
  "host",
  "port",
  "user",
  "identityFile",
  "knownHosts",
  "venv",
  "deployDir",
  "acceptNewHostKeys",
  "connectTimeout",
];
const DEFAULT_KEYS = NODE_KEYS.filter((k) => k !== "name" && k !== "host");

export function keyPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const old = row[j]!;
      row[j] = Math.min(
        row[j]! + 1,
        row[j - 1]! + 1,
        prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1),
      );
      prev = old;
    }
  }
  return row[b.length]!;
}

export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function describe(value: unknown): string {
  if (value === null) return "nothing (null)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string")
    return `the text "${value.length > 40 ? `${value.slice(0, 40)}...` : value}"`;
  return `${typeof value} ${String(value)}`;
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** YAML reads `port: "22"` as text and `name: 1` as a number; say how to write what was meant. */
function quotingHint(value: unknown, wanted: "text" | "number"): string {
  if (wanted === "text" && (typeof value === "number" || typeof value === "boolean"))
    return ` (write it in quotes: "${String(value)}")`;
  if (wanted === "number" && typeof value === "string" && /^\s*\d+(\.\d+)?\s*$/.test(value))
    return " (write it without quotes)";
  return "";
}

/** Words that `--nodes` reads as roles, so a worker with such a name could never be picked alone. */
const SELECTOR_WORDS = new Set(["all", "workers", "leader"]);

class Validator {
  constructor(private readonly ctx: SchemaContext) {}

  fail(path: Path, problem: string): never {
    // A missing key has no position: point at the closest parent that has one.
    let at: { line: number; column: number } | undefined;
    for (let n = path.length; n >= 0 && !at; n--) at = this.ctx.locate(path.slice(0, n));
    throw new InventoryError(
      {
        file: this.ctx.file,
        ...(at ? { line: at.line, column: at.column } : {}),
        ...(path.length ? { key: keyPath(path) } : {}),
      },
      problem,
    );
  }

  mapping(
    value: unknown,
    path: Path,
    allowed: readonly string[],
    what: string,
    misplaced: Readonly<Record<string, string>> = {},
  ): Record<string, unknown> {
    if (!isMapping(value)) this.fail(path, `${what} must be a mapping of keys, not ${describe(value)}`);
    for (const key of Object.keys(value)) {
      const advice = Object.hasOwn(misplaced, key) ? misplaced[key] : undefined;
      if (advice !== undefined) this.fail([...path, key], advice);
      if (!allowed.includes(key)) {
        const hint = didYouMean(key, allowed);
        this.fail(
          [...path, key],
          `unknown key \`${key}\`${hint ? `; did you mean \`${hint}\`?` : ""} (allowed here: ${allowed.join(", ")})`,
        );
      }
    }
    return value;
  }

  string(value: unknown, path: Path): string {
    if (typeof value !== "string" || value.length === 0)
      this.fail(path, `must be a non-empty text, not ${describe(value)}${quotingHint(value, "text")}`);
    if (value.includes("\0")) this.fail(path, "must not contain a NUL character");
    return value;
  }

  strings(value: unknown, path: Path): string[] {
    if (typeof value === "string") return [this.string(value, path)];
    if (!Array.isArray(value)) this.fail(path, `must be a text or a list of texts, not ${describe(value)}`);
    return value.map((v, i) => this.string(v, [...path, i]));
  }

  integer(value: unknown, path: Path, min: number, max: number): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      this.fail(
        path,
        `must be a whole number from ${min} to ${max}, not ${describe(value)}${quotingHint(value, "number")}`,
      );
    }
    return value;
  }

  positive(value: unknown, path: Path): number {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0)
      this.fail(
        path,
        `must be a positive number of seconds, not ${describe(value)}${quotingHint(value, "number")}`,
      );
    return value;
  }

  boolean(value: unknown, path: Path): boolean {
    if (typeof value !== "boolean") this.fail(path, `must be true or false, not ${describe(value)}`);
    return value;
  }

  /** Host names and users end up on command lines and in ssh options: no spaces, no leading "-". */
  commandWord(value: unknown, path: Path, what: string): string {
    const word = this.string(value, path);
    if (/\s/.test(word) || word.startsWith("-"))
      this.fail(path, `\`${word}\` is not ${what}: it cannot contain spaces or start with "-"`);
    return word;
  }

  host(value: unknown, path: Path): string {
    const host = this.commandWord(value, path, "a host name");
    // The two ways ssh habits leak into an inventory; IPv6 addresses have several colons.
    const at = host.indexOf("@");
    if (at >= 0) {
      this.fail(
        path,
        `\`${host}\` mixes a user into the host: write \`host: ${host.slice(at + 1)}\` and \`user: ${host.slice(0, at)}\``,
      );
    }
    const hostPort = /^([^:]+):(\d+)$/.exec(host);
    if (hostPort) {
      this.fail(
        path,
        `\`${host}\` mixes a port into the host: write \`host: ${hostPort[1]}\` and \`port: ${hostPort[2]}\``,
      );
    }
    return host;
  }

  /** `~/x` to the home directory, relative paths to the inventory's directory. */
  localPath(value: string): string {
    if (value === "~") return this.ctx.homeDir;
    if (value.startsWith("~/")) return join(this.ctx.homeDir, value.slice(2));
    return isAbsolute(value) ? value : resolve(this.ctx.baseDir, value);
  }
}

interface NodeDefaults {
  port?: number;
  user?: string;
  identityFiles?: { files: string[]; path: Path };
  knownHosts?: string;
  venv?: string;
  deployDir?: string;
  acceptNewHostKeys?: boolean;
  connectTimeout?: number;
}

function readNodeSettings(v: Validator, raw: Record<string, unknown>, path: Path): NodeDefaults {
  const out: NodeDefaults = {};
  if (raw.port !== undefined) out.port = v.integer(raw.port, [...path, "port"], 1, 65535);
  if (raw.user !== undefined) out.user = v.commandWord(raw.user, [...path, "user"], "a user name");
  if (raw.identityFile !== undefined) {
    out.identityFiles = {
      files: v.strings(raw.identityFile, [...path, "identityFile"]).map((f) => v.localPath(f)),
      path: [...path, "identityFile"],
    };
  }
  if (raw.knownHosts !== undefined)
    out.knownHosts = v.localPath(v.string(raw.knownHosts, [...path, "knownHosts"]));
  if (raw.venv !== undefined) out.venv = v.string(raw.venv, [...path, "venv"]);
  if (raw.deployDir !== undefined) out.deployDir = v.string(raw.deployDir, [...path, "deployDir"]);
  if (raw.acceptNewHostKeys !== undefined)
    out.acceptNewHostKeys = v.boolean(raw.acceptNewHostKeys, [...path, "acceptNewHostKeys"]);
  if (raw.connectTimeout !== undefined)
    out.connectTimeout = v.positive(raw.connectTimeout, [...path, "connectTimeout"]);
  return out;
}

/** `daemon:` seconds the daemon stays up unused, or `off` (YAML 1.1's false too) for direct connections. */
function daemonSetting(v: Validator, value: unknown): number | "off" {
  if (value === "off" || value === false) return "off";
  if (typeof value === "number" && Number.isFinite(value) && value > 0 && value <= 7 * 24 * 3600)
    return value;
  return v.fail(
    ["daemon"],
    `must be the seconds the daemon keeps connections after its last use (a number from 1 to 604800, e.g. 600), or \`off\` to connect directly every time; not ${describe(value)}${quotingHint(value, "number")}`,
  );
}

export function validateInventory(doc: unknown, ctx: SchemaContext): ValidatedInventory {
  const v: Validator = new Validator(ctx);
  if (doc === null || doc === undefined)
    v.fail([], "the inventory is empty: it needs at least a `workers` list (see `sync-cluster init`)");
  const top = v.mapping(doc, [], TOP_KEYS, "the inventory");

  // A section whose keys are all commented out is null in YAML: the same as leaving it out.
  const projectRaw =
    top.project == null ? {} : v.mapping(top.project, ["project"], PROJECT_KEYS, "`project`");
  const root = v.localPath(
    projectRaw.root === undefined ? "." : v.string(projectRaw.root, ["project", "root"]),
  );
  const project: ProjectSpec = {
    root,
    include: projectRaw.include === undefined ? [] : v.strings(projectRaw.include, ["project", "include"]),
    exclude: projectRaw.exclude === undefined ? [] : v.strings(projectRaw.exclude, ["project", "exclude"]),
    name: defaultProjectName(root, ctx.metadataOf ?? (() => ({}))),
    batchSystem: "slurm",
  };
  if (projectRaw.entry !== undefined) project.entry = v.string(projectRaw.entry, ["project", "entry"]);
  if (projectRaw.python !== undefined) {
    const python = v.string(projectRaw.python, ["project", "python"]);
    project.python = python.includes("/") ? v.localPath(python) : python;
  }
  if (projectRaw.name !== undefined) project.name = v.string(projectRaw.name, ["project", "name"]);
  if (projectRaw.batchSystem !== undefined) {
    const name = v.string(projectRaw.batchSystem, ["project", "batchSystem"]);
    const known: readonly string[] = [...GRID_BATCH_SYSTEMS, ...OTHER_BATCH_SYSTEMS];
    if (!known.includes(name))
      v.fail(
        ["project", "batchSystem"],
        `must be one of Toil's batch systems: ${known.join(", ")}; not \`${name}\``,
      );
    project.batchSystem = name as BatchSystem;
  }
  if (!/^[A-Za-z0-9._-]+$/.test(project.name) || project.name === "." || project.name === "..") {
    v.fail(
      ["project", projectRaw.name === undefined ? "root" : "name"],
      `\`${project.name}\` cannot name the project on the workers: use letters, digits, ".", "_" and "-" (set project.name)`,
    );
  }

  const defaultsRaw =
    top.defaults == null
      ? {}
      : v.mapping(top.defaults, ["defaults"], DEFAULT_KEYS, "`defaults`", {
          host: "`host` cannot be a default: every node has its own; write it under `leader` or each of `workers`",
          name: "`name` cannot be a default: node names must differ; write it under `leader` or each of `workers`",
        });
  const defaults = readNodeSettings(v, defaultsRaw, ["defaults"]);
  const concurrency =
    top.concurrency === undefined ? 8 : v.integer(top.concurrency, ["concurrency"], 1, 4096);

  const daemon = top.daemon === undefined ? undefined : daemonSetting(v, top.daemon);

  const identityFiles = new Map<string, { file: string; key: string; path: Path }>();
  const noteIdentity = (ids: NodeDefaults["identityFiles"]) => {
    if (!ids) return;
    for (const file of ids.files)
      if (!identityFiles.has(file)) identityFiles.set(file, { file, key: keyPath(ids.path), path: ids.path });
  };
  noteIdentity(defaults.identityFiles);

  const names = new Map<string, Path>();
  // Names are typed in `--nodes` selectors: comma-separated globs, with role words.
  const checkNodeName = (name: string, at: Path, role: NodeRole) => {
    if (/[\s,*?[\]{}()!]/.test(name)) {
      v.fail(
        at,
        `the node name \`${name}\` cannot be typed in --nodes (no spaces, commas or * ? [ ] { } ( ) !); set another \`name\``,
      );
    }
    if (SELECTOR_WORDS.has(name) && !(role === "leader" && name === "leader")) {
      v.fail(at, `\`${name}\` means a group of nodes in --nodes; give this node another \`name\``);
    }
  };
  const node = (raw: unknown, path: Path, role: NodeRole): NodeSpec => {
    let alias: string;
    let own: NodeDefaults = {};
    let explicitName: string | undefined;
    let hostPath: Path = path;
    if (typeof raw === "string") {
      alias = v.host(raw, path);
    } else {
      const m = v.mapping(raw, path, NODE_KEYS, role === "leader" ? "`leader`" : "a worker");
      if (m.host === undefined)
        v.fail(path, "this node has no `host` (an address, or an alias from ~/.ssh/config)");
      hostPath = [...path, "host"];
      alias = v.host(m.host, hostPath);
      if (m.name !== undefined) explicitName = v.string(m.name, [...path, "name"]);
      own = readNodeSettings(v, m, path);
    }
    noteIdentity(own.identityFiles);
    const ssh = ctx.sshHost(alias);
    if (ssh?.hostName !== undefined && (/\s/.test(ssh.hostName) || ssh.hostName.startsWith("-"))) {
      v.fail(
        hostPath,
        `~/.ssh/config gives \`${alias}\` the HostName \`${ssh.hostName}\`, which is not a host name; fix it there`,
      );
    }
    const port = own.port ?? ssh?.port ?? defaults.port ?? 22;
    // A bare alias is how the user calls the node (ssh w13), whatever port ~/.ssh/config gives it.
    const name = explicitName ?? (port === 22 || typeof raw === "string" ? alias : `${alias}:${port}`);
    checkNodeName(name, explicitName === undefined ? hostPath : [...path, "name"], role);
    const seen = names.get(name);
    if (seen) {
      const where = ctx.locate(seen);
      v.fail(
        path,
        `the node name \`${name}\` is used twice (first at ${keyPath(seen)}${where ? `, line ${where.line}` : ""}); give one of them another \`name\``,
      );
    }
    names.set(name, path);
    const sshIdentity = ssh?.identityFiles?.map((f) => v.localPath(f));
    return {
      name,
      role,
      host: ssh?.hostName ?? alias,
      port,
      user: own.user ?? ssh?.user ?? defaults.user ?? ctx.defaultUser,
      identityFiles:
        own.identityFiles?.files ??
        (sshIdentity?.length ? sshIdentity : undefined) ??
        defaults.identityFiles?.files ??
        [],
      knownHosts: own.knownHosts ?? defaults.knownHosts ?? join(ctx.homeDir, ".ssh", "known_hosts"),
      venv: own.venv ?? defaults.venv ?? "~/venv",
      deployDir: own.deployDir ?? defaults.deployDir ?? "~/.sync-cluster",
      acceptNewHostKeys: own.acceptNewHostKeys ?? defaults.acceptNewHostKeys ?? false,
      connectTimeout: own.connectTimeout ?? defaults.connectTimeout ?? 10,
    };
  };

  const leader =
    top.leader === undefined || top.leader === null ? undefined : node(top.leader, ["leader"], "leader");
  let workers: NodeSpec[] = [];
  if (top.workers !== undefined && top.workers !== null) {
    if (!Array.isArray(top.workers))
      v.fail(["workers"], `must be a list of nodes, not ${describe(top.workers)}`);
    workers = top.workers.map((w, i) => node(w, ["workers", i], "worker"));
  }
  const inventory: Inventory = {
    file: ctx.file,
    project,
    concurrency,
    workers,
    ...(daemon !== undefined ? { daemon } : {}),
    ...(leader ? { leader } : {}),
  };
  return { inventory, identityFiles: [...identityFiles.values()] };
}
