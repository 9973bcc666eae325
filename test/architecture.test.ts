import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { test } from "node:test";

/**
 * The layers of src/, bottom up: each folder may import itself and the folders listed for it,
 * nothing else. The pure core (manifest, delta, plans, rules, parsers; one subfolder per subject)
 * imports nothing outside itself; transport executes requests; readiness judges whether a node
 * can take a release, for every command that sends one; the commands (check, push, operate,
 * watch) sit on top of it; the CLI parses and prints. `worker` is the Python agent: nothing
 * imports its code. `(root)` is src/'s own files (package-files.ts).
 */
const LAYERS: Record<string, readonly string[]> = {
  core: [],
  "(root)": ["core"],
  inventory: ["core"],
  resolve: ["core", "(root)"],
  transport: ["core", "inventory", "(root)"],
  tree: ["core", "inventory", "transport", "(root)"],
  fleet: ["core", "inventory", "transport"],
  daemon: ["core", "inventory", "resolve", "transport", "(root)"],
  readiness: ["core", "inventory", "resolve", "transport"],
  check: ["core", "inventory", "transport", "tree", "fleet", "readiness"],
  push: ["core", "inventory", "resolve", "transport", "tree", "fleet", "readiness"],
  operate: ["core", "inventory", "transport", "tree", "fleet", "readiness"],
  watch: ["core", "inventory", "resolve", "transport", "tree", "fleet", "readiness", "push"],
  cli: [
    "core",
    "inventory",
    "resolve",
    "transport",
    "tree",
    "fleet",
    "daemon",
    "readiness",
    "check",
    "push",
    "operate",
    "watch",
    "(root)",
  ],
  worker: [],
};

// The pure core does no I/O: it may not import the file system, processes, the network, SSH or the watcher.
const CORE_FORBIDDEN = [
  "node:fs",
  "node:fs/promises",
  "node:child_process",
  "node:net",
  "node:os",
  "ssh2",
  "chokidar",
  "p-limit",
];

const SRC = join(process.cwd(), "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Every module a source names: `import`, `import type`, `export ... from`, `import()` and bare `import "x"`. */
export function importedSpecifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*import\s[^;]*?\sfrom\s*["']([^"']+)["']/gms,
    /^\s*import\s*["']([^"']+)["']/gm,
    /^\s*export\s[^;]*?\sfrom\s*["']([^"']+)["']/gms,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

/** The layer of a file under src/: its first folder, or "(root)". */
function layerOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? "(root)" : parts[0]!;
}

test("the import scanner sees every form of import", () => {
  const source = [
    'import { a } from "../core/a.js";',
    'import type { B } from "../push/b.js";',
    "import {\n  c,\n  d,\n} from '../check/c.js';",
    'export { e } from "../watch/e.js";',
    'export type * from "../cli/f.js";',
    'const g = await import("../operate/g.js");',
    'let h: import("node:fs").Dirent;',
    'import "../fleet/side-effect.js";',
  ].join("\n");
  assert.deepEqual(importedSpecifiers(source).sort(), [
    "../check/c.js",
    "../cli/f.js",
    "../core/a.js",
    "../fleet/side-effect.js",
    "../operate/g.js",
    "../push/b.js",
    "../watch/e.js",
    "node:fs",
  ]);
});

test("every folder of src/ is in the layer table", () => {
  const folders = readdirSync(SRC, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
  for (const folder of folders) assert.ok(folder in LAYERS, `src/${folder}/ has no place in the layer table`);
});

test("no import runs up a layer", () => {
  const violations: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    const allowed = LAYERS[from];
    assert.ok(allowed, `${relative(process.cwd(), file)} is in no layer`);
    for (const spec of importedSpecifiers(readFileSync(file, "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const to = layerOf(join(dirname(file), spec));
      if (to !== from && !allowed.includes(to))
        violations.push(`${relative(process.cwd(), file)} (${from}) imports ${spec} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test("src/core imports nothing that does I/O", () => {
  for (const file of sourceFiles(join(SRC, "core"))) {
    for (const spec of importedSpecifiers(readFileSync(file, "utf8")))
      assert.ok(!CORE_FORBIDDEN.includes(spec), `${relative(process.cwd(), file)} imports ${spec}`);
  }
});

/** The source files each file under src/ imports (relative imports only, types included). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const targets = importedSpecifiers(readFileSync(file, "utf8"))
      .filter((spec) => spec.startsWith("."))
      .map((spec) => join(dirname(file), spec).replace(/\.js$/, ".ts"));
    graph.set(file, targets);
  }
  return graph;
}

/** Every import cycle, each as the chain of files that closes it (found by depth-first search). */
export function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const onPath: string[] = [];
  const visit = (file: string) => {
    const at = onPath.indexOf(file);
    if (at >= 0) {
      cycles.push([...onPath.slice(at), file]);
      return;
    }
    if (done.has(file)) return;
    onPath.push(file);
    for (const next of graph.get(file) ?? []) visit(next);
    onPath.pop();
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) visit(file);
  return cycles;
}

test("the cycle finder sees a cycle through types and ignores a diamond", () => {
  const cyclic = new Map([
    ["types", ["schema"]],
    ["schema", ["route", "types"]],
    ["route", ["types"]],
  ]);
  assert.deepEqual(importCycles(cyclic)[0], ["route", "types", "schema", "route"]);
  const diamond = new Map([
    ["top", ["left", "right"]],
    ["left", ["bottom"]],
    ["right", ["bottom"]],
    ["bottom", []],
  ]);
  assert.deepEqual(importCycles(diamond), []);
});

test("no file under src/ imports itself through others", () => {
  const cycles = importCycles(importGraph()).map((cycle) =>
    cycle.map((file) => relative(SRC, file)).join(" -> "),
  );
  assert.deepEqual(cycles, []);
});
