import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { generateWorkload } from "../../bench/workload.js";
import { SYSTEM_PYTHON, tempDir } from "../fixtures/projects.js";

const run = promisify(execFile);

test("the benchmark's workload is valid Python, so push (which refuses syntax errors) takes it", async () => {
  const dir = await tempDir("workload");
  try {
    const workload = await generateWorkload(join(dir, "bench"), "small");
    const compile = "import sys\nfor f in sys.argv[1:]: compile(open(f).read(), f, 'exec')";
    await run(SYSTEM_PYTHON, ["-c", compile, ...workload.modules.map((m) => join(workload.root, m))]);
    assert.equal(workload.modules.length, 50);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
