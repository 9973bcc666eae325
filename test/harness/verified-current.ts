import assert from "node:assert/strict";
import type { Cluster, WorkerHandle } from "./cluster.js";

/**
 * `current` of `project` on a worker, checked there file by file against its manifest (size and
 * sha256): "none" when there is none yet, else "complete RELEASE_ID". A half-written release
 * fails the assertion.
 */
export async function verifiedCurrent(cluster: Cluster, w: WorkerHandle, project: string): Promise<string> {
  const r = await cluster.runOnWorker(
    w,
    `cd / && ${w.python()} -c '
import hashlib, json, os, sys
cur = sys.argv[1]
if not os.path.lexists(cur): print("none"); sys.exit(0)
m = json.load(open(os.path.join(cur, ".sync-cluster-manifest.json")))
for path, size, mode, sha in m["files"]:
    data = open(os.path.join(cur, path), "rb").read()
    assert len(data) == size and hashlib.sha256(data).hexdigest() == sha, path
print("complete", os.path.basename(os.readlink(cur)))
' ${w.deployDir}/${project}/current`,
  );
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}
