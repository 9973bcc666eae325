// Generated from worker-protocol.json by bin/protocol-types.mjs: edit the declaration, then run it.

/** The protocol both sides speak; the agent says it in its announcement and its hello reply. */
export const PROTOCOL_VERSION = 3;

/** The codes of the agent's refusals. */
export type AgentErrorCode =
  | "bad-request"
  | "bad-frame"
  | "bad-path"
  | "bad-manifest"
  | "bad-archive"
  | "corrupt"
  | "corrupt-base"
  | "incomplete"
  | "locked"
  | "no-release"
  | "no-space"
  | "fix-failed"
  | "os-error"
  | "protocol"
  | "layout"
  | "internal";

export type Release = { id: string; time: number };

export type Run = { release: string; since: number; pid: number };

export type WireFile = [string, number, number, string];

export type Origin = { host: string; root: string };

/** The handshake: names the project and its venv, and returns the worker's state. */
export interface HelloRequest {
  op: "hello";
  protocol?: number;
  deployDir: string;
  project: string;
  venv: string;
  keep?: number;
  withManifest?: boolean;
}

export type HelloReply = {
  agent: number;
  python: { executable: string; version: string };
  home: string;
  projectDir: string;
  venv: string;
  path: string;
  sitePackages: string | null;
  pthOk: boolean;
  pinned: string[];
  runs: Run[];
  current: string | null;
  releases: Release[];
  manifest: WireFile[] | null;
  origin: unknown;
};

/** Facts for every check of sync-cluster check; the leader judges them. */
export interface CheckRequest {
  op: "check";
  modules?: readonly { module: string; dist: string | null }[];
  deep?: boolean;
  topLevel?: readonly string[];
  toilWorker?: { command: string; path: string };
}

export type CheckReply = {
  venvPython: string | null;
  venvIsVenv: boolean;
  pyvenvCfg: { path: string; line: number | null; value: string | null };
  deploy: { path: string; existing: string; writable: boolean; free: number | null };
  pth: { path: string | null; expected: string; serves: string | null };
  current: string | null;
  releases: Release[];
  venv: string;
  projectDir: string;
  imports?: Record<string, unknown>;
  entry?: Record<string, unknown>;
  toilWorker?: Record<string, unknown>;
};

/** Creates a missing venv, or turns on system site-packages; never installs or removes packages. */
export interface FixRequest {
  op: "fix";
}

export type FixReply = { done: string[] };

/** Locks, and either switches to a release the worker already has or stages a new one. */
export interface PrepareRequest {
  op: "prepare";
  release: string;
  lockTimeout?: number;
  protect?: readonly string[];
  collect?: false;
  activate?: false;
  origin?: Origin;
  base?: string | null;
  upsert?: readonly WireFile[];
  remove?: readonly string[];
  reuse?: readonly (readonly [string, string])[];
}

export type PrepareReply =
  | { status: "switched"; release: string }
  | { status: "present"; release: string }
  | { status: "base-missing" }
  | { status: "ready"; expect: number; linked: number };

/** The archive of the files a ready prepare expects; verified, then published. */
export interface UploadRequest {
  op: "upload";
}

export type UploadReply = {
  status: "published";
  release: string;
  received: number;
  bytes: number;
  linked: number;
};

/** Switches current to a release the worker has (rollback, or a push of a known release). */
export interface ActivateRequest {
  op: "activate";
  release: string;
  lockTimeout?: number;
  protect?: readonly string[];
  collect?: false;
}

export type ActivateReply = { status: "switched"; release: string };

/** Drops a staged release and the lock. */
export interface AbortRequest {
  op: "abort";
}

export type AbortReply = { status: "aborted" };

/** Where a fresh job's interpreter loads each top-level name from; the last full verification's answer (fromRecord) while the release, the names and the fingerprint of what that interpreter read at its start are unchanged. */
export interface VerifyRequest {
  op: "verify";
  topLevel?: readonly string[];
  release?: string;
}

export type VerifyReply = {
  projectDir: string;
  current: string | null;
  executable?: string;
  error?: string;
  origins?: Record<string, null | Record<string, unknown>>;
  fromRecord?: boolean;
};

/** What a push to the other nodes must respect now: releases pinned here, live runs. */
export interface RunsRequest {
  op: "runs";
}

export type RunsReply = { pinned: string[]; runs: Run[] };

/** A release this node has, for a node that lacks it: its manifest, or the contents of some of its files. */
export interface ExportRequest {
  op: "export";
  release: string;
  paths?: readonly string[];
}

export type ExportReply =
  | { release: string; files: WireFile[] }
  | { release: string; contents: [string, string][] };

export type WorkerRequest =
  | HelloRequest
  | CheckRequest
  | FixRequest
  | PrepareRequest
  | UploadRequest
  | ActivateRequest
  | AbortRequest
  | VerifyRequest
  | RunsRequest
  | ExportRequest;

/** Each op's reply, by op. */
export interface WorkerReplies {
  hello: HelloReply;
  check: CheckReply;
  fix: FixReply;
  prepare: PrepareReply;
  upload: UploadReply;
  activate: ActivateReply;
  abort: AbortReply;
  verify: VerifyReply;
  runs: RunsReply;
  export: ExportReply;
}
