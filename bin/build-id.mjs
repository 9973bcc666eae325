#!/usr/bin/env node
// Names this build of sync-cluster: a hash of every file the build wrote under dist/src and
// dist/bundle, written to dist/build-id. A daemon answers only the commands of its own build
// (src/daemon/client.ts, daemonBuild), so one left running by an earlier build is asked to make
// way whatever changed, and never goes on with code the checkout no longer has.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const dist = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : entry.isFile() ? [path] : [];
  });
}

const hash = createHash("sha256");
for (const file of [...filesUnder(join(dist, "src")), ...filesUnder(join(dist, "bundle"))].sort()) {
  hash.update(`${relative(dist, file)}\0`);
  hash.update(readFileSync(file));
}
writeFileSync(join(dist, "build-id.new"), `${hash.digest("hex").slice(0, 16)}\n`);
renameSync(join(dist, "build-id.new"), join(dist, "build-id"));
