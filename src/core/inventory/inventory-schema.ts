import { isAbsolute, join, resolve } from "node:path";
import { InventoryError } from "../errors.js";
import { type HostSettings, nodeRoute, type ProxySetting, RouteProblem } from "../ssh/node-route.js";
import { type BatchSystem, KNOWN_BATCH_SYSTEMS } from "./batch-systems.js";
import type { ListedHost } from "./host-list.js";
import type { Inventory, NodeRole, NodeSpec, ProjectSpec } from "./inventory-types.js";
import { expandNodeSet, type GroupMembers, groupReferences, NodeSetError } from "./node-set.js";
import { defaultProjectName, type MetadataTexts } from "./project-name.js";
import { readTreeSettings } from "./tree-settings.js";
import type { SlurmSelection, WorkersSource } from "./workers-source.js";

/**
 * The inventory's rules, applied to an already-parsed document: every key checked, defaults
 * merged, ~/.ssh/config applied. Pure (the file, its positions and the ssh config come in), so
 * every rule is tested without touching a disk. Errors name the file, line and key.
 */

/** ~/.ssh/config applied to one alias: HostName, Port, User, IdentityFile, ProxyJump or ProxyCommand. */
export type SshHostConfig = HostSettings;

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
  /**
   * The members of the ClusterShell groups the workers name (worker-groups.ts finds them; the
   * edge asks `nodeset`). Undefined when they were not looked up because no node is to be
   * reached: an entry naming a group then stands for no node.
   */
  nodeGroups?: GroupMembers;
}

export interface ValidatedInventory {
  inventory: Inventory;
  /** Identity files named in the inventory, each with the first key that named it. */
  identityFiles: { file: string; key: string; path: (string | number)[] }[];
  /**
   * With `inventory.workersSource`: the workers its command printed, as nodes (`defaults` and
   * ~/.ssh/config applied as for listed workers; the leader, when printed, left out). Errors name
   * the key and the line of the output.
   */
  workersFrom?: (hosts: readonly ListedHost[]) => NodeSpec[];
}

type Path = (string | number)[];

const TOP_KEYS = ["project", "defaults", "concurrency", "daemon", "tree", "leader", "workers"];
const PROJECT_KEYS = ["entry", "root", "python", "include", "exclude", "name", "batchSystem", "keep"];

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
  "jump",
  "keep",
];
const DEFAULT_KEYS = NODE_KEYS.filter((k) => k !== "name" && k !== "host");
const SOURCE_KEYS = ["command", "slurm", "timeout", "refresh"];
const SLURM_KEYS = ["partition", "job"];

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

/** Releases kept on a node for `rollback` when the inventory does not say (besides those runs use). */
export const DEFAULT_KEEP = 3;
const KEEP_MAX = 1000;

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

/** Node keys as written in `defaults` or on one node, each checked; unset keys are absent. */
export interface NodeDefaults {
  port?: number;
  user?: string;
  identityFiles?: { files: string[]; path: Path };
  knownHosts?: string;
  venv?: string;
  deployDir?: string;
  acceptNewHostKeys?: boolean;
  connectTimeout?: number;
  jump?: { value: string; path: Path };
  keep?: number;
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
  if (raw.jump !== undefined)
    out.jump = { value: v.string(raw.jump, [...path, "jump"]), path: [...path, "jump"] };
  if (raw.keep !== undefined) out.keep = v.integer(raw.keep, [...path, "keep"], 1, KEEP_MAX);
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
  const { project, keep } = readProject(v, top.project, ctx);
  // A section whose keys are all commented out is null in YAML: the same as leaving it out.
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
  const tree = top.tree === undefined ? undefined : readTreeSettings(v, top.tree);

  const nodes = new NodeBuilder(v, ctx, defaults, keep, new Map());
  nodes.noteIdentity(defaults.identityFiles);
  const leader =
    top.leader === undefined || top.leader === null
      ? undefined
      : nodes.fromInventory(top.leader, ["leader"], "leader");
  let workers: NodeSpec[] = [];
  let workersSource: WorkersSource | undefined;
  if (isMapping(top.workers)) workersSource = readWorkersSource(v, top.workers, ctx);
  else if (top.workers !== undefined && top.workers !== null) {
    if (!Array.isArray(top.workers))
      v.fail(
        ["workers"],
        `must be a list of nodes, or a mapping with \`command\` or \`slurm\` that lists them, not ${describe(top.workers)}`,
      );
    workers = top.workers.flatMap((w, i) => nodes.fromWorkersEntry(w, ["workers", i]));
  }
  const inventory: Inventory = {
    file: ctx.file,
    project,
    concurrency,
    workers,
    ...(daemon !== undefined ? { daemon } : {}),
    ...(tree ? { tree } : {}),
    ...(leader ? { leader } : {}),
    ...(workersSource ? { workersSource } : {}),
  };
  const validated: ValidatedInventory = { inventory, identityFiles: [...nodes.identityFiles.values()] };
  if (workersSource) {
    const source = workersSource;
    // Each listing starts from the inventory's own names: the same host printed again is no duplicate.
    validated.workersFrom = (hosts) =>
      new NodeBuilder(v, ctx, defaults, keep, new Map(nodes.names)).fromListing(hosts, source, leader);
  }
  return validated;
}

/** `project:`, with the root, python and names resolved; `keep` is the project-wide default for nodes. */
function readProject(
  v: Validator,
  value: unknown,
  ctx: SchemaContext,
): { project: ProjectSpec; keep: number } {
  const raw = value == null ? {} : v.mapping(value, ["project"], PROJECT_KEYS, "`project`");
  const root = v.localPath(raw.root === undefined ? "." : v.string(raw.root, ["project", "root"]));
  const project: ProjectSpec = {
    root,
    include: raw.include === undefined ? [] : v.strings(raw.include, ["project", "include"]),
    exclude: raw.exclude === undefined ? [] : v.strings(raw.exclude, ["project", "exclude"]),
    name: defaultProjectName(root, ctx.metadataOf ?? (() => ({}))),
    batchSystem: "slurm",
  };
  if (raw.entry !== undefined) project.entry = v.string(raw.entry, ["project", "entry"]);
  if (raw.python !== undefined) {
    const python = v.string(raw.python, ["project", "python"]);
    // A bare name is looked up on PATH, as a shell would; a path is relative to the inventory.
    project.python = python.includes("/") ? v.localPath(python) : python;
  }
  if (raw.name !== undefined) project.name = v.string(raw.name, ["project", "name"]);
  if (raw.batchSystem !== undefined) {
    const name = v.string(raw.batchSystem, ["project", "batchSystem"]);
    const known: readonly string[] = KNOWN_BATCH_SYSTEMS;
    if (!known.includes(name))
      v.fail(
        ["project", "batchSystem"],
        `must be one of Toil's batch systems: ${known.join(", ")}; not \`${name}\``,
      );
    project.batchSystem = name as BatchSystem;
  }
  const keep = raw.keep === undefined ? DEFAULT_KEEP : v.integer(raw.keep, ["project", "keep"], 1, KEEP_MAX);
  if (!isProjectDirectoryName(project.name)) {
    v.fail(
      ["project", raw.name === undefined ? "root" : "name"],
      `\`${project.name}\` cannot name the project on the workers: use letters, digits, ".", "_" and "-" (set project.name)`,
    );
  }
  return { project, keep };
}

/** Whether a name can be the project's directory on the workers (DEPLOYDIR/NAME) without escaping it. */
export function isProjectDirectoryName(name: string): boolean {
  return /^[A-Za-z0-9._-]+$/.test(name) && name !== "." && name !== "..";
}

/** Why a node name cannot be used, or undefined: names are typed in `--nodes`, among node sets, globs and role words. */
export function nodeNameProblem(name: string, role: NodeRole): string | undefined {
  if (/[\s,*?[\]{}()!&^]/.test(name) || name.startsWith("@"))
    return `the node name \`${name}\` cannot be typed in --nodes (no spaces, commas, * ? [ ] { } ( ) ! & ^ or a leading @); set another \`name\``;
  if (SELECTOR_WORDS.has(name) && !(role === "leader" && name === "leader"))
    return `\`${name}\` means a group of nodes in --nodes; give this node another \`name\``;
  return undefined;
}

/**
 * A node's name when the inventory gives none: its alias, with the port when that is not 22.
 * A bare alias is how the user calls the node (ssh w13), whatever port ~/.ssh/config gives it.
 */
export function defaultNodeName(alias: string, port: number, bare: boolean): string {
  return port === 22 || bare ? alias : `${alias}:${port}`;
}

/** Built-in settings of a node that neither the node, ~/.ssh/config nor `defaults` sets. */
interface Fallbacks {
  user: string;
  homeDir: string;
  keep: number;
}

/**
 * A node's settings, each from the first that gives it: the node's own key, ~/.ssh/config (for
 * what ssh itself reads there: port, user, identity files), the inventory's `defaults`, the
 * built-in value. ~/.ssh/config beats `defaults` because it names this host, `defaults` every node.
 */
export function mergeNodeSettings(
  own: NodeDefaults,
  ssh: { port?: number; user?: string; identityFiles?: string[] } | undefined,
  defaults: NodeDefaults,
  fallback: Fallbacks,
): Omit<NodeSpec, "name" | "role" | "host" | "route"> {
  return {
    port: own.port ?? ssh?.port ?? defaults.port ?? 22,
    user: own.user ?? ssh?.user ?? defaults.user ?? fallback.user,
    identityFiles:
      own.identityFiles?.files ??
      (ssh?.identityFiles?.length ? ssh.identityFiles : undefined) ??
      defaults.identityFiles?.files ??
      [],
    knownHosts: own.knownHosts ?? defaults.knownHosts ?? join(fallback.homeDir, ".ssh", "known_hosts"),
    venv: own.venv ?? defaults.venv ?? "~/venv",
    deployDir: own.deployDir ?? defaults.deployDir ?? "~/.sync-cluster",
    acceptNewHostKeys: own.acceptNewHostKeys ?? defaults.acceptNewHostKeys ?? false,
    connectTimeout: own.connectTimeout ?? defaults.connectTimeout ?? 10,
    keep: own.keep ?? defaults.keep ?? fallback.keep,
  };
}

/** How a node was written: its alias (host or ~/.ssh/config Host), its own settings, where. */
interface NodeInput {
  alias: string;
  own: NodeDefaults;
  explicitName?: string;
  /** A bare alias is named by it whatever port ~/.ssh/config gives it. */
  bare: boolean;
  path: Path;
  hostPath: Path;
  /** Said before each problem: which line of a workers command's output the node came from. */
  origin?: string;
}

/**
 * Turns nodes as written into NodeSpecs, keeping the names taken so far so that a name used twice
 * is refused with where it was first written. One builder serves the inventory; each listing of
 * a workers command gets its own, starting from the inventory's names.
 */
class NodeBuilder {
  /** Identity files named by the nodes built, each with the first key that named it. */
  readonly identityFiles = new Map<string, { file: string; key: string; path: Path }>();

  constructor(
    private readonly v: Validator,
    private readonly ctx: SchemaContext,
    private readonly defaults: NodeDefaults,
    private readonly projectKeep: number,
    /** Every node name taken, with where it was written (for the message when it is used again). */
    readonly names: Map<string, string>,
  ) {}

  noteIdentity(ids: NodeDefaults["identityFiles"]): void {
    if (!ids) return;
    for (const file of ids.files)
      if (!this.identityFiles.has(file))
        this.identityFiles.set(file, { file, key: keyPath(ids.path), path: ids.path });
  }

  /**
   * A `workers` entry: a bare host or alias, or a mapping of node keys, whose host may be a
   * ClusterShell node set or group, one node per name, each with the entry's settings.
   */
  fromWorkersEntry(raw: unknown, path: Path): NodeSpec[] {
    const v = this.v;
    if (typeof raw === "string")
      return this.hostsOf(raw, path).map((alias) =>
        this.build({ alias, own: {}, bare: true, path, hostPath: path }, "worker"),
      );
    const m = v.mapping(raw, path, NODE_KEYS, "a worker");
    if (m.host === undefined)
      v.fail(path, "this node has no `host` (an address, or an alias from ~/.ssh/config)");
    const hostPath = [...path, "host"];
    const aliases = this.hostsOf(m.host, hostPath);
    const own = readNodeSettings(v, m, path);
    const explicitName = m.name === undefined ? undefined : v.string(m.name, [...path, "name"]);
    if (explicitName !== undefined && aliases.length > 1)
      v.fail(
        [...path, "name"],
        `\`name\` names one node, and \`host: ${String(m.host)}\` is ${aliases.length} nodes: remove \`name\` (each node is then named by its host)`,
      );
    return aliases.map((alias) =>
      this.build(
        { alias, own, bare: false, path, hostPath, ...(explicitName !== undefined ? { explicitName } : {}) },
        "worker",
      ),
    );
  }

  /** A host as written, read as a ClusterShell node set: the hosts it stands for, each checked. */
  private hostsOf(raw: unknown, path: Path): string[] {
    const text = this.v.string(raw, path);
    let names: string[];
    try {
      if (this.ctx.nodeGroups === undefined && groupReferences(text).length > 0) return [];
      names = expandNodeSet(text, this.ctx.nodeGroups);
    } catch (error) {
      if (!(error instanceof NodeSetError)) throw error;
      return this.v.fail(
        path,
        `\`${text}\` is not a host name or a node set: at character ${error.column}, ${error.problem}`,
      );
    }
    if (names.length === 0) this.v.fail(path, `the node set \`${text}\` stands for no node`);
    return names.map((name) => this.v.host(name, path));
  }

  /** The `leader`: a bare host or alias, or a mapping of node keys. */
  fromInventory(raw: unknown, path: Path, role: NodeRole): NodeSpec {
    const v = this.v;
    if (typeof raw === "string")
      return this.build({ alias: v.host(raw, path), own: {}, bare: true, path, hostPath: path }, role);
    const m = v.mapping(raw, path, NODE_KEYS, role === "leader" ? "`leader`" : "a worker");
    if (m.host === undefined)
      v.fail(path, "this node has no `host` (an address, or an alias from ~/.ssh/config)");
    const hostPath = [...path, "host"];
    const input: NodeInput = {
      alias: v.host(m.host, hostPath),
      own: readNodeSettings(v, m, path),
      bare: false,
      path,
      hostPath,
    };
    if (m.name !== undefined) input.explicitName = v.string(m.name, [...path, "name"]);
    return this.build(input, role);
  }

  /** The workers a workers command printed; the leader, when printed, is left out. */
  fromListing(hosts: readonly ListedHost[], source: WorkersSource, leader: NodeSpec | undefined): NodeSpec[] {
    const path = source.key.split(".");
    const listed: NodeSpec[] = [];
    for (const host of hosts) {
      const own: NodeDefaults = {};
      if (host.user !== undefined) own.user = host.user;
      if (host.port !== undefined) own.port = host.port;
      // The leader is pushed to as the leader: a scheduler that lists it too does not make it a worker.
      if (leader && isLeader(host, leader, this.ctx.sshHost(host.host), own.port ?? this.defaults.port))
        continue;
      const origin = `line ${host.line} of the output of ${source.key} (\`${host.text}\`)`;
      listed.push(
        this.build(
          { alias: host.host, own, bare: host.port === undefined, path, hostPath: path, origin },
          "worker",
        ),
      );
    }
    return listed;
  }

  private build(input: NodeInput, role: NodeRole): NodeSpec {
    const { alias, own, explicitName, path, hostPath } = input;
    const fail = (at: Path, problem: string): never =>
      this.v.fail(at, input.origin ? `${input.origin}: ${problem}` : problem);
    this.noteIdentity(own.identityFiles);
    const ssh = this.ctx.sshHost(alias);
    if (ssh?.hostName !== undefined && (/\s/.test(ssh.hostName) || ssh.hostName.startsWith("-"))) {
      fail(
        hostPath,
        `~/.ssh/config gives \`${alias}\` the HostName \`${ssh.hostName}\`, which is not a host name; fix it there`,
      );
    }
    const settings = mergeNodeSettings(
      own,
      ssh && { ...ssh, identityFiles: ssh.identityFiles?.map((f) => this.v.localPath(f)) },
      this.defaults,
      { user: this.ctx.defaultUser, homeDir: this.ctx.homeDir, keep: this.projectKeep },
    );
    const name = explicitName ?? defaultNodeName(alias, settings.port, input.bare);
    const badName = nodeNameProblem(name, role);
    if (badName) fail(explicitName === undefined ? hostPath : [...path, "name"], badName);
    const seen = this.names.get(name);
    if (seen)
      fail(
        path,
        `the node name \`${name}\` is used twice (first at ${seen}); give one of them another \`name\``,
      );
    const where = this.ctx.locate(path);
    this.names.set(name, input.origin ?? `${keyPath(path)}${where ? `, line ${where.line}` : ""}`);
    const spec: NodeSpec = { name, role, host: ssh?.hostName ?? alias, ...settings };
    const jump = own.jump ?? this.defaults.jump;
    const jumpSetting: ProxySetting | undefined = jump && {
      keyword: "ProxyJump",
      value: jump.value,
      at: keyPath(jump.path),
      fromInventory: true,
    };
    try {
      const route = nodeRoute({ ...spec, alias }, jumpSetting, this.ctx);
      if (route) spec.route = route;
    } catch (error) {
      if (!(error instanceof RouteProblem)) throw error;
      this.v.fail(error.fromInventory && jump ? jump.path : hostPath, error.message);
    }
    return spec;
  }
}

/** Whether a printed host is the leader: its name, or the same address and port. */
function isLeader(
  host: ListedHost,
  leader: NodeSpec,
  ssh: SshHostConfig | undefined,
  port: number | undefined,
): boolean {
  if (host.host === leader.name) return true;
  return (
    (ssh?.hostName ?? host.host) === leader.host && (host.port ?? ssh?.port ?? port ?? 22) === leader.port
  );
}

/** `workers: {command: ..., timeout, refresh}` or `workers: {slurm: {partition | job}, ...}`. */
function readWorkersSource(v: Validator, raw: Record<string, unknown>, ctx: SchemaContext): WorkersSource {
  const m = v.mapping(raw, ["workers"], SOURCE_KEYS, "`workers`");
  const given = ["command", "slurm"].filter((k) => m[k] !== undefined);
  if (given.length !== 1)
    v.fail(
      ["workers"],
      given.length === 0
        ? "a `workers` mapping lists the workers with a command: give `command` (a shell command printing one host a line) or `slurm` (`partition: NAME` or `job: ID`); or write `workers` as a list"
        : "give either `command` or `slurm`, not both",
    );
  const key = given[0]!;
  const at = ctx.locate(["workers", key]);
  const source: WorkersSource = {
    key: `workers.${key}`,
    at: { file: ctx.file, ...(at ? { line: at.line, column: at.column } : {}), key: `workers.${key}` },
    timeoutSeconds: m.timeout === undefined ? 30 : v.positive(m.timeout, ["workers", "timeout"]),
    refreshSeconds: m.refresh === undefined ? 30 : v.positive(m.refresh, ["workers", "refresh"]),
  };
  if (key === "command") source.command = v.string(m.command, ["workers", "command"]);
  else source.slurm = readSlurm(v, m.slurm);
  return source;
}

function readSlurm(v: Validator, raw: unknown): SlurmSelection {
  const path = ["workers", "slurm"];
  const m = v.mapping(raw, path, SLURM_KEYS, "`workers.slurm`");
  if ((m.partition === undefined) === (m.job === undefined))
    v.fail(
      path,
      "give `partition: NAME` (its nodes that are up) or `job: ID` (a job's nodes; `current` for the job sync-cluster runs in), one of them",
    );
  if (m.partition !== undefined) {
    const partition = v.string(m.partition, [...path, "partition"]);
    if (!/^[\w.-]+$/.test(partition))
      v.fail(
        [...path, "partition"],
        `\`${partition}\` is not a Slurm partition name (letters, digits, ".", "_", "-")`,
      );
    return { partition };
  }
  const job = typeof m.job === "number" ? String(m.job) : v.string(m.job, [...path, "job"]);
  // Array jobs (1234_5) and heterogeneous components (1234+0) are jobs too.
  if (job !== "current" && !/^\d+([_+]\d+)?$/.test(job))
    v.fail(
      [...path, "job"],
      `\`${job}\` is not a Slurm job id: write a number (1234, 1234_5) or \`current\``,
    );
  return { job };
}
