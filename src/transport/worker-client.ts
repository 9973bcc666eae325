import { NodeError } from "../core/errors.js";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { replyProblem, type WorkerOp } from "../core/protocol/worker-protocol.js";
import type {
  ActivateRequest,
  CheckRequest,
  HelloRequest,
  PrepareRequest,
  VerifyRequest,
  WorkerReplies,
  WorkerRequest,
} from "../core/protocol/worker-protocol-types.js";
import type {
  ImportProbe,
  NodeCheckFacts,
  OriginsProbe,
  ToilWorkerProbe,
} from "../core/readiness/node-checks.js";
import type { LiveRun } from "../core/release/live-runs.js";
import type { ManifestFile } from "../core/release/manifest.js";
import type { WireFile } from "../core/release/publish-plan.js";
import { PROTOCOL_VERSION } from "./agent-bootstrap.js";
import {
  AgentError,
  type AgentReply,
  type AgentSession,
  errorCodeOf,
  ProtocolError,
} from "./agent-session.js";

/**
 * The requests the worker agent (src/worker/sync_cluster_agent/operations.py, its op_* methods) answers, one typed
 * request and reply per operation, with the time each may take. Replies are checked here, where
 * they arrive: code past this module reads typed values, never a cast of what the node sent.
 */

/** The protocol this client speaks (the agent's AGENT_VERSION), and the error for a stream it cannot follow. */
export { PROTOCOL_VERSION, ProtocolError };

/** How long each request may take before the node counts as gone. */
export const TIMEOUTS = {
  hello: 60_000,
  /** The quick check imports nothing; the deep one starts the venv's python and imports Toil. */
  check: 180_000,
  /** Creating a virtualenv can take minutes on a slow shared file system. */
  fix: 600_000,
  verify: 60_000,
  abort: 60_000,
  runs: 60_000,
  /** One export reply carries up to 16 MiB of files, read from the node's disk. */
  export: 180_000,
  /** Waiting for the worker's lock, then staging: linking the base and reused trees. */
  prepare: (lockTimeoutSeconds: number) => (lockTimeoutSeconds + 120) * 1000,
  activate: (lockTimeoutSeconds: number) => (lockTimeoutSeconds + 60) * 1000,
  /** Generous for slow links, never infinite: two minutes plus a second per 256 KiB. */
  upload: (bytes: number) => 120_000 + Math.ceil(bytes / (256 * 1024)) * 1000,
} as const;

// ---- requests ----------------------------------------------------------------------------

/** Generated from the protocol's declaration (src/core/protocol/worker-protocol.json). */
export type {
  AbortRequest,
  ActivateRequest,
  CheckRequest,
  ExportRequest,
  FixRequest,
  HelloRequest,
  PrepareRequest,
  RunsRequest,
  UploadRequest,
  VerifyRequest,
  WorkerRequest,
} from "../core/protocol/worker-protocol-types.js";

// ---- replies -------------------------------------------------------------------------------

/** What the worker reported about itself when the session started (the hello reply). */
export interface WorkerState {
  agent: number;
  current: string | null;
  releases: { id: string; time: number }[];
  manifest: WireFile[] | null;
  /** The same manifest, kept as objects once known (watch), so it is not converted per release. */
  manifestFiles?: ManifestFile[];
  pthOk: boolean;
  sitePackages: string | null;
  /** The venv, expanded on the node, and the PATH its login gives commands. */
  venv: string;
  path: string;
  /** Releases a workflow run used within the last days (release_store.py, PIN_SECONDS). */
  pinned: string[];
  /** Workflow runs whose first interpreter (the Toil leader) still runs on this node. */
  runs: LiveRun[];
  python: { executable: string; version: string };
  projectDir: string;
  /** What the worker recorded of the project's origin (project-origin.ts); null when nothing. */
  origin?: unknown;
}

/** What a publish to the other nodes must respect: releases pinned on the node, its live runs. */
export interface RunsReply {
  pinned: string[];
  runs: LiveRun[];
}

export type PrepareReply =
  | { status: "switched"; release: string }
  | { status: "present"; release: string }
  | { status: "base-missing" }
  | { status: "ready"; expect: number; linked: number };

export interface UploadReply {
  status: "published";
  release: string;
  received: number;
  bytes: number;
  linked: number;
}

export interface ActivateReply {
  status: "switched";
  release: string;
}

export interface VerifyReply extends OriginsProbe {
  projectDir: string;
  current: string | null;
  /** The node's record of its last full verification answered: nothing it reads at start changed since. */
  fromRecord: boolean;
}

// ---- checking replies ----------------------------------------------------------------------

/** A reply that lacks a field or carries one of the wrong kind: the node and the field are named. */
export class ReplyError extends NodeError {
  constructor(node: string, op: WorkerRequest["op"], problem: string) {
    super(
      node,
      `the agent's ${op} reply is not as the protocol declares it: ${problem}; the agent and sync-cluster may come from different versions`,
    );
  }

  /** A field read field by field (check's probes, which the declaration leaves open). */
  static field(
    node: string,
    op: WorkerRequest["op"],
    field: string,
    expected: string,
    got: unknown,
  ): ReplyError {
    return new ReplyError(
      node,
      op,
      `${got === undefined ? "no" : "a malformed"} \`${field}\` (expected ${expected}, got ${describe(got)})`,
    );
  }
}

/** The node's agent speaks another protocol version than this sync-cluster. */
function versionMismatch(node: string, detail: string): ProtocolError {
  return new ProtocolError(
    node,
    `the node runs an agent of another version than this sync-cluster (${detail}); run the same sync-cluster version on every machine that pushes to it`,
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "string" ? JSON.stringify(value.slice(0, 40)) : typeof value;
}

type Record_ = { [key: string]: unknown };

function isRecord(value: unknown): value is Record_ {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Reads the fields of one reply, each checked against the kind it must have. */
class Fields {
  constructor(
    private readonly node: string,
    private readonly op: WorkerRequest["op"],
    private readonly reply: Record_,
    private readonly prefix = "",
  ) {}

  private fail(field: string, expected: string): never {
    throw ReplyError.field(this.node, this.op, this.prefix + field, expected, this.reply[field]);
  }

  string(field: string): string {
    const v = this.reply[field];
    return typeof v === "string" ? v : this.fail(field, "a string");
  }

  stringOrNull(field: string): string | null {
    const v = this.reply[field];
    return v === null || typeof v === "string" ? v : this.fail(field, "a string or null");
  }

  number(field: string): number {
    const v = this.reply[field];
    return typeof v === "number" && Number.isFinite(v) ? v : this.fail(field, "a number");
  }

  numberOr(field: string, fallback: number): number {
    return this.reply[field] === undefined ? fallback : this.number(field);
  }

  boolean(field: string): boolean {
    const v = this.reply[field];
    return typeof v === "boolean" ? v : this.fail(field, "true or false");
  }

  strings(field: string): string[] {
    const v = this.reply[field];
    return Array.isArray(v) && v.every((s) => typeof s === "string")
      ? v
      : this.fail(field, "a list of strings");
  }

  record(field: string): Fields {
    const v = this.reply[field];
    return isRecord(v)
      ? new Fields(this.node, this.op, v, `${this.prefix}${field}.`)
      : this.fail(field, "an object");
  }

  /** An optional object, read field by field like the reply itself. */
  optionalRecord(field: string): Fields | undefined {
    return this.reply[field] === undefined ? undefined : this.record(field);
  }

  optionalString(field: string): string | undefined {
    return this.reply[field] === undefined ? undefined : this.string(field);
  }

  optionalStringOrNull(field: string): string | null | undefined {
    return this.reply[field] === undefined ? undefined : this.stringOrNull(field);
  }

  /** An object used as a map: each of its keys read with `read`. */
  map<T>(field: string, read: (entry: Fields, key: string) => T): Record<string, T> {
    const fields = this.record(field);
    return Object.fromEntries(fields.keys().map((key) => [key, read(fields, key)]));
  }

  keys(): string[] {
    return Object.keys(this.reply);
  }

  isNull(field: string): boolean {
    return this.reply[field] === null;
  }

  has(field: string): boolean {
    return this.reply[field] !== undefined;
  }

  releases(field: string): { id: string; time: number }[] {
    const v = this.reply[field];
    const rows = Array.isArray(v) ? v : this.fail(field, "a list of releases");
    return rows.map((row: unknown) =>
      isRecord(row) && typeof row.id === "string" && typeof row.time === "number"
        ? { id: row.id, time: row.time }
        : this.fail(field, "a list of { id, time }"),
    );
  }

  liveRuns(field: string): LiveRun[] {
    const v = this.reply[field];
    const rows = Array.isArray(v) ? v : this.fail(field, "a list of runs");
    return rows.map((row: unknown) =>
      isRecord(row) &&
      typeof row.release === "string" &&
      typeof row.since === "number" &&
      typeof row.pid === "number"
        ? { release: row.release, since: row.since, pid: row.pid }
        : this.fail(field, "a list of { release, since, pid }"),
    );
  }

  wireFiles(field: string): WireFile[] | null {
    const v = this.reply[field];
    if (v === null || v === undefined) return null;
    const rows = Array.isArray(v) ? v : this.fail(field, "a manifest or null");
    return rows.map((row: unknown): WireFile => {
      if (
        Array.isArray(row) &&
        row.length === 4 &&
        typeof row[0] === "string" &&
        typeof row[1] === "number" &&
        typeof row[2] === "number" &&
        typeof row[3] === "string"
      )
        return [row[0], row[1], row[2], row[3]];
      return this.fail(field, "a list of [path, size, mode, sha256]");
    });
  }
}

function helloReply(node: string, reply: AgentReply): WorkerState {
  const r = new Fields(node, "hello", reply);
  const agent = r.number("agent");
  if (agent !== PROTOCOL_VERSION)
    throw versionMismatch(node, `its agent speaks protocol ${agent}, this sync-cluster ${PROTOCOL_VERSION}`);
  const python = r.record("python");
  return {
    agent,
    current: r.stringOrNull("current"),
    releases: r.releases("releases"),
    manifest: r.wireFiles("manifest"),
    pthOk: r.boolean("pthOk"),
    sitePackages: r.stringOrNull("sitePackages"),
    venv: r.string("venv"),
    path: r.string("path"),
    pinned: r.strings("pinned"),
    runs: r.liveRuns("runs"),
    python: { executable: python.string("executable"), version: python.string("version") },
    projectDir: r.string("projectDir"),
    origin: reply.origin,
  };
}

function checkReply(node: string, reply: AgentReply): NodeCheckFacts {
  const r = new Fields(node, "check", reply);
  const cfg = r.record("pyvenvCfg");
  const deploy = r.record("deploy");
  const pth = r.record("pth");
  const line = reply.pyvenvCfg && isRecord(reply.pyvenvCfg) ? reply.pyvenvCfg.line : null;
  const free = isRecord(reply.deploy) ? reply.deploy.free : null;
  const imports = r.optionalRecord("imports");
  const entry = r.optionalRecord("entry");
  const toilWorker = r.optionalRecord("toilWorker");
  return {
    venvPython: r.stringOrNull("venvPython"),
    venvIsVenv: r.boolean("venvIsVenv"),
    pyvenvCfg: {
      path: cfg.string("path"),
      line: typeof line === "number" ? line : null,
      value: cfg.stringOrNull("value"),
    },
    deploy: {
      path: deploy.string("path"),
      existing: deploy.string("existing"),
      writable: deploy.boolean("writable"),
      free: typeof free === "number" ? free : null,
    },
    pth: {
      path: pth.stringOrNull("path"),
      expected: pth.string("expected"),
      serves: pth.stringOrNull("serves"),
    },
    current: r.stringOrNull("current"),
    releases: r.releases("releases"),
    ...(reply.venv !== undefined ? { venv: r.string("venv") } : {}),
    ...(reply.projectDir !== undefined ? { projectDir: r.string("projectDir") } : {}),
    ...(imports ? { imports: importsProbe(imports) } : {}),
    ...(entry ? { entry: originsProbe(entry) } : {}),
    ...(toilWorker ? { toilWorker: toilWorkerProbe(toilWorker) } : {}),
  };
}

function importProbe(probe: Fields): ImportProbe {
  return {
    found: probe.boolean("found"),
    origin: probe.optionalStringOrNull("origin"),
    version: probe.optionalStringOrNull("version"),
    error: probe.optionalString("error"),
  };
}

function importsProbe(imports: Fields): NonNullable<NodeCheckFacts["imports"]> {
  return {
    error: imports.optionalString("error"),
    python: imports.optionalString("python"),
    venvSite: imports.optionalString("venvSite"),
    toil: imports.has("toil") ? importProbe(imports.record("toil")) : undefined,
    modules: imports.has("modules")
      ? imports.map("modules", (modules, name) => importProbe(modules.record(name)))
      : undefined,
  };
}

type Origin = NonNullable<NonNullable<OriginsProbe["origins"]>[string]>;

function originsProbe(probe: Fields): OriginsProbe {
  return {
    executable: probe.optionalString("executable"),
    error: probe.optionalString("error"),
    origins: probe.has("origins")
      ? probe.map("origins", (origins, name): Origin | null => {
          if (origins.isNull(name)) return null;
          const one = origins.record(name);
          return one.has("error")
            ? { error: one.string("error") }
            : { origin: one.stringOrNull("origin"), real: one.stringOrNull("real") };
        })
      : undefined,
  };
}

function toilWorkerProbe(probe: Fields): ToilWorkerProbe {
  return {
    ...originsProbe(probe),
    command: probe.string("command"),
    path: probe.string("path"),
    found: probe.stringOrNull("found"),
    ours: probe.boolean("ours"),
    interpreter: probe.stringOrNull("interpreter"),
  };
}

function prepareReply(node: string, reply: AgentReply): PrepareReply {
  const r = new Fields(node, "prepare", reply);
  const status = r.string("status");
  if (status === "switched" || status === "present") return { status, release: r.string("release") };
  if (status === "base-missing") return { status };
  if (status === "ready") return { status, expect: r.numberOr("expect", 0), linked: r.numberOr("linked", 0) };
  throw ReplyError.field(
    node,
    "prepare",
    "status",
    '"switched", "present", "base-missing" or "ready"',
    status,
  );
}

function uploadReply(node: string, reply: AgentReply): UploadReply {
  const r = new Fields(node, "upload", reply);
  const status = r.string("status");
  if (status !== "published") throw ReplyError.field(node, "upload", "status", '"published"', status);
  return {
    status,
    release: r.string("release"),
    received: r.number("received"),
    bytes: r.numberOr("bytes", 0),
    linked: r.numberOr("linked", 0),
  };
}

function activateReply(node: string, reply: AgentReply): ActivateReply {
  const r = new Fields(node, "activate", reply);
  const status = r.string("status");
  if (status !== "switched") throw ReplyError.field(node, "activate", "status", '"switched"', status);
  return { status, release: r.string("release") };
}

function verifyReply(node: string, reply: AgentReply): VerifyReply {
  const r = new Fields(node, "verify", reply);
  return {
    projectDir: r.string("projectDir"),
    current: r.stringOrNull("current"),
    fromRecord: r.has("fromRecord") && r.boolean("fromRecord"),
    ...originsProbe(r),
  };
}

// ---- the operations ------------------------------------------------------------------------

/** Sends one request; a refusal for another protocol version reads as such. */
async function send(
  session: AgentSession,
  request: WorkerRequest,
  timeoutMs: number,
  payload?: Buffer,
  onPayloadSent?: (bytes: number) => void,
): Promise<AgentReply> {
  let reply: AgentReply;
  try {
    reply = await session.request({ ...request }, payload, timeoutMs, onPayloadSent);
  } catch (error) {
    if (error instanceof AgentError && error.code === "protocol")
      throw versionMismatch(session.node.name, `the agent said: ${error.message}`);
    throw error;
  }
  // Another version's hello reply is named by its version, not by the fields it lacks.
  if (request.op === "hello" && reply.agent !== PROTOCOL_VERSION) return reply;
  const problem = replyProblem(request.op, reply);
  if (problem) throw new ReplyError(session.node.name, request.op, problem);
  return reply;
}

/** How long one request may take: by its op, and for a prepare or activate by its lock timeout. */
function timeoutOf(request: WorkerRequest, payload?: Buffer): number {
  switch (request.op) {
    case "prepare":
    case "activate":
      return TIMEOUTS[request.op](request.lockTimeout ?? 60);
    case "upload":
      return TIMEOUTS.upload(payload?.length ?? 0);
    default:
      return TIMEOUTS[request.op];
  }
}

/**
 * Any request the protocol declares, answered with its reply as declared (checked field by field
 * against the declaration, so the type holds). The operations below read their replies further.
 */
export async function sendRequest<Op extends WorkerOp>(
  session: AgentSession,
  request: Extract<WorkerRequest, { op: Op }>,
  payload?: Buffer,
): Promise<WorkerReplies[Op]> {
  const reply = await send(session, request, timeoutOf(request, payload), payload);
  return reply as unknown as WorkerReplies[Op];
}

/** The handshake: names the project and its venv, and returns the worker's state. */
export async function hello(
  session: AgentSession,
  node: NodeSpec,
  project: string,
  keep: number,
  withManifest = true,
): Promise<WorkerState> {
  const request: HelloRequest = {
    op: "hello",
    protocol: PROTOCOL_VERSION,
    deployDir: node.deployDir,
    project,
    venv: node.venv,
    keep,
    withManifest,
  };
  return helloReply(node.name, await send(session, request, TIMEOUTS.hello));
}

export function manifestFromWire(rows: WorkerState["manifest"]): ManifestFile[] | undefined {
  return rows?.map(([path, size, mode, sha256]) => ({ path, size, mode, sha256 }));
}

export async function check(
  session: AgentSession,
  request: Omit<CheckRequest, "op">,
): Promise<NodeCheckFacts> {
  return checkReply(session.node.name, await send(session, { op: "check", ...request }, TIMEOUTS.check));
}

/** The fixes applied, in words. */
export async function fix(session: AgentSession): Promise<string[]> {
  return new Fields(session.node.name, "fix", await send(session, { op: "fix" }, TIMEOUTS.fix)).strings(
    "done",
  );
}

export async function prepare(
  session: AgentSession,
  request: Omit<PrepareRequest, "op"> & { lockTimeout: number },
): Promise<PrepareReply> {
  const reply = await send(session, { op: "prepare", ...request }, TIMEOUTS.prepare(request.lockTimeout));
  return prepareReply(session.node.name, reply);
}

/** Sends the archive a `prepare` announced; `extraTimeoutMs` covers a prepare still under way ahead of it. */
export async function upload(
  session: AgentSession,
  archive: Buffer,
  extraTimeoutMs: number,
  onPayloadSent?: (bytes: number) => void,
): Promise<UploadReply> {
  const timeoutMs = extraTimeoutMs + TIMEOUTS.upload(archive.length);
  return uploadReply(
    session.node.name,
    await send(session, { op: "upload" }, timeoutMs, archive, onPayloadSent),
  );
}

export async function activate(
  session: AgentSession,
  request: Omit<ActivateRequest, "op"> & { lockTimeout: number },
): Promise<ActivateReply> {
  const reply = await send(session, { op: "activate", ...request }, TIMEOUTS.activate(request.lockTimeout));
  return activateReply(session.node.name, reply);
}

/** Drops a staged release and the lock. */
export async function abort(session: AgentSession): Promise<void> {
  await send(session, { op: "abort" }, TIMEOUTS.abort);
}

/**
 * Where a fresh job's interpreter loads each name from: a run on `release`, else outside any run.
 * `extraTimeoutMs` covers the requests pipelined ahead of it.
 */
export async function verify(
  session: AgentSession,
  topLevel: readonly string[],
  release?: string,
  extraTimeoutMs = 0,
): Promise<VerifyReply> {
  const request: VerifyRequest = { op: "verify", topLevel, ...(release ? { release } : {}) };
  return verifyReply(session.node.name, await send(session, request, extraTimeoutMs + TIMEOUTS.verify));
}

/** The node's pins and live runs, as they are now. */
export async function runs(session: AgentSession): Promise<RunsReply> {
  const r = new Fields(session.node.name, "runs", await send(session, { op: "runs" }, TIMEOUTS.runs));
  return { pinned: r.strings("pinned"), runs: r.liveRuns("runs") };
}

/** The manifest of a release the node has. */
export async function exportManifest(session: AgentSession, release: string): Promise<WireFile[]> {
  const reply = await send(session, { op: "export", release }, TIMEOUTS.export);
  return new Fields(session.node.name, "export", reply).wireFiles("files") ?? [];
}

/** The contents of some files of a release the node has (at most 16 MiB of them). */
export async function exportContents(
  session: AgentSession,
  release: string,
  paths: readonly string[],
): Promise<Map<string, Buffer>> {
  const reply = await send(session, { op: "export", release, paths }, TIMEOUTS.export);
  const rows = reply.contents;
  const out = new Map<string, Buffer>();
  if (!Array.isArray(rows))
    throw ReplyError.field(session.node.name, "export", "contents", "a list of [path, base64]", rows);
  for (const row of rows) {
    if (!Array.isArray(row) || typeof row[0] !== "string" || typeof row[1] !== "string")
      throw ReplyError.field(session.node.name, "export", "contents", "a list of [path, base64]", row);
    out.set(row[0], Buffer.from(row[1], "base64"));
  }
  return out;
}

/**
 * The typed reply of a request sent without a session (through ClusterShell's tree, where every
 * reply of a node arrives at once): a refusal is thrown as the session would throw it, and every
 * reply is checked against the protocol's declaration.
 */
export const readReply = {
  hello: (node: string, reply: AgentReply) => helloReply(node, checked(node, "hello", reply)),
  check: (node: string, reply: AgentReply) => checkReply(node, checked(node, "check", reply)),
  prepare: (node: string, reply: AgentReply) => prepareReply(node, checked(node, "prepare", reply)),
  upload: (node: string, reply: AgentReply) => uploadReply(node, checked(node, "upload", reply)),
  activate: (node: string, reply: AgentReply) => activateReply(node, checked(node, "activate", reply)),
  verify: (node: string, reply: AgentReply) => verifyReply(node, checked(node, "verify", reply)),
  runs: (node: string, reply: AgentReply): RunsReply => {
    const r = new Fields(node, "runs", checked(node, "runs", reply));
    return { pinned: r.strings("pinned"), runs: r.liveRuns("runs") };
  },
};

function checked(node: string, op: WorkerOp, reply: AgentReply): AgentReply {
  if (!reply.ok)
    throw new AgentError(
      node,
      errorCodeOf(reply.code),
      typeof reply.message === "string" ? reply.message : "the agent refused the request",
    );
  if (op === "hello" && reply.agent !== PROTOCOL_VERSION) return reply;
  const problem = replyProblem(op, reply);
  if (problem) throw new ReplyError(node, op, problem);
  return reply;
}
