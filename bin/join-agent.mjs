#!/usr/bin/env node
// Joins the agent's modules (src/worker/sync_cluster_agent/) into the one source the bootstrap
// streams to a node (src/transport/agent-bootstrap.ts): the node runs it from stdin, with nothing
// installed, so it cannot import modules of its own. Usage: join-agent.mjs [OUTPUT]
// (dist/src/worker/agent.py by default).
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const packageDir = join(root, "src", "worker", "sync_cluster_agent");
const output = process.argv[2] ?? join(root, "dist", "src", "worker", "agent.py");

// Each module after those it imports; main.py last, since it starts the agent.
const MODULES = [
  "sources.py",
  "protocol.py",
  "framing.py",
  "durable.py",
  "release_files.py",
  "release_store.py",
  "staging.py",
  "import_fingerprint.py",
  "verify_record.py",
  "start_state.py",
  "venv_doctor.py",
  "operations.py",
  "main.py",
];

const SIBLING_IMPORT = /^from \.\w+ import /;
// A program carried as text (sources.py): the joined agent holds it as a literal, since it runs
// from no file. A JSON string is a valid Python string literal.
const SOURCE_OF = /^(\w+) = source_of\("([\w./-]+)"\)$/;
const TOP_LEVEL_NAME = /^(?:(?:def|class) (\w+)|(\w+)\s*=[^=])/;

function joinModule(name, definedBy) {
  const lines = readFileSync(join(packageDir, name), "utf8").split("\n");
  const out = [];
  for (const line of lines) {
    if (SIBLING_IMPORT.test(line)) {
      if (line.trimEnd().endsWith("(") || line.trimEnd().endsWith("\\"))
        throw new Error(`${name}: an import of a sibling module must fit on one line: ${line}`);
      continue;
    }
    const source = SOURCE_OF.exec(line);
    if (source) {
      const text = readFileSync(join(packageDir, source[2]), "utf8");
      out.push(`${source[1]} = ${JSON.stringify(text)}`);
    } else out.push(line);
    const defined = TOP_LEVEL_NAME.exec(line);
    const top = defined?.[1] ?? defined?.[2];
    if (top) {
      const other = definedBy.get(top);
      if (other && other !== name)
        throw new Error(
          `${top} is defined by both ${other} and ${name}: in the joined agent one would replace the other`,
        );
      definedBy.set(top, name);
    }
  }
  return `# ---- ${name} ${"-".repeat(Math.max(0, 90 - name.length))}\n${out.join("\n").trimEnd()}\n`;
}

const definedBy = new Map();
const parts = [
  readFileSync(join(packageDir, "__init__.py"), "utf8").trimEnd(),
  "# Joined from src/worker/sync_cluster_agent/ by bin/join-agent.mjs at build time: edit those modules.",
  ...MODULES.map((name) => joinModule(name, definedBy)),
];
mkdirSync(dirname(output), { recursive: true });
writeFileSync(`${output}.tmp`, `${parts.join("\n\n\n")}`);
renameSync(`${output}.tmp`, output);
