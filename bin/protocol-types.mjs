#!/usr/bin/env node
// Generates src/core/protocol/worker-protocol-types.ts, the TypeScript types of the worker
// protocol, from its declaration (src/core/protocol/worker-protocol.json), formatted as the
// project's formatter would. With --check it writes nothing and fails when the file differs.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "src", "core", "protocol");
const target = join(dir, "worker-protocol-types.ts");
const declaration = JSON.parse(readFileSync(join(dir, "worker-protocol.json"), "utf8"));

const pascal = (name) => name.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase());
const SCALARS = {
  string: "string",
  integer: "number",
  number: "number",
  boolean: "boolean",
  null: "null",
  any: "unknown",
  object: "Record<string, unknown>",
};

function typeOf(kind, readonly) {
  const ro = readonly ? "readonly " : "";
  if (typeof kind === "string") {
    if (kind in declaration.types) return pascal(kind);
    if (!(kind in SCALARS)) throw new Error(`the declaration has no type ${kind}`);
    return SCALARS[kind];
  }
  if (!Array.isArray(kind)) return objectOf(kind, readonly);
  const [head, ...rest] = kind;
  if (head === "or") return rest.map((k) => typeOf(k, readonly)).join(" | ");
  if (head === "enum") return rest.map((v) => JSON.stringify(v)).join(" | ");
  if (head === "list") return `${ro}(${typeOf(rest[0], readonly)})[]`;
  if (head === "tuple") return `${ro}[${rest.map((k) => typeOf(k, readonly)).join(", ")}]`;
  if (head === "map") return `Record<string, ${typeOf(rest[0], readonly)}>`;
  throw new Error(`the declaration has no type ${head}`);
}

function fieldsOf(fields, readonly) {
  return Object.entries(fields).map(([name, kind]) => {
    const optional = name.endsWith("?");
    return `${optional ? name.slice(0, -1) : name}${optional ? "?" : ""}: ${typeOf(kind, readonly)};`;
  });
}

function objectOf(fields, readonly) {
  return `{ ${fieldsOf(fields, readonly).join(" ")} }`;
}

const ops = Object.entries(declaration.ops);
const lines = [
  "// Generated from worker-protocol.json by bin/protocol-types.mjs: edit the declaration, then run it.",
  "",
  "/** The protocol both sides speak; the agent says it in its announcement and its hello reply. */",
  `export const PROTOCOL_VERSION = ${declaration.version};`,
  "",
  "/** The codes of the agent's refusals. */",
  `export type AgentErrorCode = ${Object.keys(declaration.errors)
    .map((code) => JSON.stringify(code))
    .join(" | ")};`,
  "",
  ...Object.entries(declaration.types).flatMap(([name, kind]) => [
    `export type ${pascal(name)} = ${typeOf(kind, false)};`,
    "",
  ]),
  ...ops.flatMap(([op, { about, request, reply }]) => [
    `/** ${about} */`,
    `export interface ${pascal(op)}Request {`,
    `op: ${JSON.stringify(op)};`,
    ...fieldsOf(request, true),
    "}",
    "",
    `export type ${pascal(op)}Reply = ${typeOf(reply, false)};`,
    "",
  ]),
  `export type WorkerRequest = ${ops.map(([op]) => `${pascal(op)}Request`).join(" | ")};`,
  "",
  "/** Each op's reply, by op. */",
  "export interface WorkerReplies {",
  ...ops.map(([op]) => `${JSON.stringify(op)}: ${pascal(op)}Reply;`),
  "}",
  "",
];

const biome = join(root, "node_modules", ".bin", "biome");
const text = execFileSync(biome, ["format", `--stdin-file-path=${target}`], {
  input: lines.join("\n"),
  encoding: "utf8",
});
if (process.argv.includes("--check")) {
  if (readFileSync(target, "utf8") !== text) {
    console.error(
      `${target} is not what ${join("src", "core", "protocol", "worker-protocol.json")} gives: run node bin/protocol-types.mjs`,
    );
    process.exit(1);
  }
} else writeFileSync(target, text);
