import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

// The pure core (manifest, delta, plans, rules, parsers) does no I/O: it may not import the
// file system, processes, the network, SSH or the watcher. This test keeps it that way.
const FORBIDDEN = [
  "node:fs",
  "node:fs/promises",
  "node:child_process",
  "node:net",
  "node:os",
  "ssh2",
  "chokidar",
  "p-limit",
];

test("src/core imports nothing that does I/O", () => {
  const dir = join(process.cwd(), "src", "core");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    const source = readFileSync(join(dir, file), "utf8");
    for (const match of source.matchAll(/^import[^"]*"([^"]+)"/gm)) {
      const spec = match[1]!;
      assert.ok(!FORBIDDEN.includes(spec), `src/core/${file} imports ${spec}`);
      if (spec.startsWith("../")) {
        assert.ok(
          ["../errors.js", "../inventory/types.js"].includes(spec) || /^import type /.test(match[0]),
          `src/core/${file} imports ${spec}`,
        );
      }
    }
  }
});
