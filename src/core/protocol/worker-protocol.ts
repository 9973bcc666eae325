import declaration from "./worker-protocol.json" with { type: "json" };
import type { AgentErrorCode, WorkerRequest } from "./worker-protocol-types.js";

/**
 * The worker protocol's declaration (worker-protocol.json) as the leader reads it at run time: the
 * agent checks each request against the same file (src/worker/sync_cluster_agent/protocol.py), and
 * the leader checks each reply here, so neither side reads a field the other does not send.
 */

type Kind = string | readonly unknown[] | { readonly [field: string]: unknown };

interface OpDeclaration {
  request: Record<string, Kind>;
  reply: Kind;
  payload?: boolean;
  /** The reply fields that mean the agent now holds the node's lock (a ready prepare). */
  holdsLockWhen?: Record<string, unknown>;
  /** The op may change the interpreter the agent runs under: the agent may not serve again. */
  staleAgent?: boolean;
}

const types: Record<string, Kind> = declaration.types;
const ops: Record<string, OpDeclaration> = declaration.ops;

export type WorkerOp = WorkerRequest["op"];

export const AGENT_ERROR_CODES = Object.keys(declaration.errors) as readonly AgentErrorCode[];

export const WORKER_OPS = Object.keys(ops) as readonly WorkerOp[];

export function isWorkerOp(op: unknown): op is WorkerOp {
  return typeof op === "string" && Object.hasOwn(ops, op);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "boolean") return String(value);
  if (typeof value === "string") return "a string";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const SCALARS: Record<string, (value: unknown) => boolean> = {
  string: (v) => typeof v === "string",
  integer: (v) => Number.isInteger(v),
  number: (v) => typeof v === "number" && Number.isFinite(v),
  boolean: (v) => typeof v === "boolean",
  null: (v) => v === null,
  any: () => true,
  object: isRecord,
};

/** What is wrong with `value` as a `kind` of the declaration, or undefined. */
export function typeProblem(kind: Kind, value: unknown, where: string): string | undefined {
  if (typeof kind === "string") {
    const named = types[kind];
    if (named !== undefined) return typeProblem(named, value, where);
    const ok = SCALARS[kind];
    if (!ok) throw new Error(`the protocol declaration has no type ${kind}`);
    return ok(value) ? undefined : `\`${where}\` is ${describe(value)}, not ${kind}`;
  }
  if (!Array.isArray(kind)) return fieldsProblem(kind as Record<string, Kind>, value, where);
  const [head, ...rest] = kind as [string, ...Kind[]];
  const each = (values: [Kind, unknown, string][]) =>
    values.map(([k, v, w]) => typeProblem(k, v, w)).find((p) => p !== undefined);
  switch (head) {
    case "or": {
      const problems = rest.map((k) => typeProblem(k, value, where));
      return problems.includes(undefined) ? undefined : problems.at(-1);
    }
    case "enum":
      return rest.includes(value as Kind)
        ? undefined
        : `\`${where}\` is ${JSON.stringify(value)}, not one of ${JSON.stringify(rest)}`;
    case "list":
      return Array.isArray(value)
        ? each(value.map((v, i) => [rest[0]!, v, `${where}[${i}]`]))
        : `\`${where}\` is ${describe(value)}, not a list`;
    case "tuple":
      return Array.isArray(value) && value.length === rest.length
        ? each(value.map((v, i) => [rest[i]!, v, `${where}[${i}]`]))
        : `\`${where}\` is ${describe(value)}, not a list of ${rest.length}`;
    case "map":
      return isRecord(value)
        ? each(Object.entries(value).map(([k, v]) => [rest[0]!, v, `${where}.${k}`]))
        : `\`${where}\` is ${describe(value)}, not an object`;
    default:
      throw new Error(`the protocol declaration has no type ${head}`);
  }
}

/** What is wrong with an object of declared fields: a missing, unknown or ill-typed one. */
function fieldsProblem(
  fields: Record<string, Kind>,
  value: unknown,
  where: string,
  ignore: readonly string[] = [],
): string | undefined {
  if (!isRecord(value)) return `\`${where}\` is ${describe(value)}, not an object`;
  const known = new Set(ignore);
  for (const [declared, kind] of Object.entries(fields)) {
    const optional = declared.endsWith("?");
    const name = optional ? declared.slice(0, -1) : declared;
    known.add(name);
    const inner = where ? `${where}.${name}` : name;
    if (value[name] === undefined) {
      if (!optional) return `no field \`${inner}\``;
      continue;
    }
    const problem = typeProblem(kind, value[name], inner);
    if (problem) return problem;
  }
  const unknown = Object.keys(value).find((key) => !known.has(key));
  return unknown === undefined
    ? undefined
    : `an unknown field \`${where ? `${where}.${unknown}` : unknown}\``;
}

/** What makes `reply` (ok: true) no reply of `op` as declared, or undefined. */
export function replyProblem(op: WorkerOp, reply: Record<string, unknown>): string | undefined {
  const kind = ops[op]!.reply;
  if (Array.isArray(kind) && kind[0] === "or") {
    const problems = kind.slice(1).map((k) => fieldsProblem(k as Record<string, Kind>, reply, "", ["ok"]));
    return problems.includes(undefined) ? undefined : problems.at(-1);
  }
  return fieldsProblem(kind as Record<string, Kind>, reply, "", ["ok"]);
}

/** What makes `request` no request of the declaration, or undefined. */
export function requestProblem(request: Record<string, unknown>): string | undefined {
  if (!isWorkerOp(request.op)) return `unknown operation ${JSON.stringify(request.op)}`;
  const problem = fieldsProblem(ops[request.op]!.request, request, "", ["op", "payload"]);
  return problem === undefined ? undefined : `${request.op} request: ${problem}`;
}

/** Whether the agent holds the node's lock after answering `op` with `reply`. */
export function holdsLockAfter(op: string, reply: Record<string, unknown> | undefined): boolean {
  const when = isWorkerOp(op) ? ops[op]!.holdsLockWhen : undefined;
  return (
    when !== undefined &&
    reply?.ok === true &&
    Object.entries(when).every(([field, value]) => reply[field] === value)
  );
}

/** Whether `op` may change the interpreter the agent runs under, so the agent may not serve again. */
export function leavesAgentStale(op: string): boolean {
  return isWorkerOp(op) && ops[op]!.staleAgent === true;
}

/** Whether `op` carries a payload after its frame. */
export function takesPayload(op: WorkerOp): boolean {
  return ops[op]!.payload === true;
}
