import assert from "node:assert/strict";
import { stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { loadDigestCache, saveDigestCache } from "../../src/resolve/digest-store.js";
import { DigestCache, digestFiles } from "../../src/resolve/file-digest.js";
import { tempDir } from "../fixtures/projects.js";

async function keyOf(path: string) {
  const s = await stat(path);
  return { absPath: path, size: s.size, mtimeMs: s.mtimeMs };
}

test("stored digests survive a run, and a file rewritten behind an old mtime is rehashed", async () => {
  const dir = await tempDir("digests");
  const env = { XDG_CACHE_HOME: join(dir, "cache"), HOME: dir };
  const a = join(dir, "a.py");
  await writeFile(a, "import os\n");
  // Pretend the file was written long ago, so it is outside the racy window.
  const old = new Date(Date.now() - 60_000);
  await utimes(a, old, old);
  const first = new DigestCache();
  const [digest] = await digestFiles([await keyOf(a)], first);
  // ctime moved when utimes ran: wait until it is outside the racy window too.
  await new Promise((r) => setTimeout(r, 2100));
  await saveDigestCache(dir, first, env);
  const loaded = await loadDigestCache(dir, env);
  assert.deepEqual(loaded.get(await keyOf(a)), digest, "an unchanged file is not read again");

  // Same size, mtime put back: only ctime tells, and it does.
  await writeFile(a, "import re\n");
  await utimes(a, old, old);
  const again = await loadDigestCache(dir, env);
  assert.equal(again.get(await keyOf(a)), undefined);
  const [fresh] = await digestFiles([await keyOf(a)], again);
  assert.deepEqual(
    fresh?.imports?.map((i) => i.module),
    ["re"],
  );
});

test("files changed just before saving are not kept", async () => {
  const dir = await tempDir("digests-racy");
  const env = { XDG_CACHE_HOME: join(dir, "cache"), HOME: dir };
  const b = join(dir, "b.py");
  await writeFile(b, "x = 1\n");
  const cache = new DigestCache();
  await digestFiles([await keyOf(b)], cache);
  await saveDigestCache(dir, cache, env);
  assert.equal((await loadDigestCache(dir, env)).size, 0);
});
