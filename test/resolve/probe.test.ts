import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { pythonSourcePath } from "../../src/package-files.js";
import { SYSTEM_PYTHON, tempDir, writeTree } from "../fixtures/projects.js";

/**
 * The probe reads a distribution's name and version from its metadata headers itself (importlib
 * parses the whole file three times per distribution): it must read what importlib reads, for
 * every distribution this machine has and for the awkward shapes metadata files come in.
 */

const COMPARE = `
import importlib.metadata as metadata, json, sys
probe = {"__name__": "probe"}
exec(open(sys.argv[1]).read(), probe)
dists = list(metadata.distributions()) + list(metadata.distributions(path=[sys.argv[2]]))
mismatches = []
for dist in dists:
    expected = (dist.metadata["Name"], dist.version)
    got = probe["metadata_headers"](dist)
    if tuple(got) != expected:
        mismatches.append({"dist": str(getattr(dist, "_path", "?")), "importlib": expected, "probe": got})
print(json.dumps({"compared": len(dists), "mismatches": mismatches}))
`;

test("the probe reads every distribution's name and version as importlib does", async () => {
  const site = await tempDir("probe-metadata");
  await writeTree(site, {
    // A long description after the headers names another package: it must not count.
    "plain-1.0.dist-info/METADATA":
      "Metadata-Version: 2.1\nName: plain\nVersion: 1.0\nSummary: one\n\nName: evil\nVersion: 9\n",
    // Windows line ends, lower-case keys, a folded header before the name, spaces around values.
    "crlf-2.0.dist-info/METADATA":
      "Metadata-Version: 2.1\r\nsummary: a long\r\n  folded summary\r\nname:   crlf  \r\nversion: 2.0\r\n\r\nbody\r\n",
    // A key given twice: the first wins.
    "twice-3.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: twice\nName: other\nVersion: 3.0\n",
    // No METADATA: an egg-info directory's PKG-INFO.
    "eggy-4.0.egg-info/PKG-INFO": "Metadata-Version: 1.0\nName: eggy\nVersion: 4.0\n",
    // An egg-info file (old setuptools): the file itself holds the headers.
    "single-5.0.egg-info": "Metadata-Version: 1.0\nName: single\nVersion: 5.0\n",
    // A line that is no header ends the headers, as for the email parser: the version is lost.
    "broken-6.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: broken\nnot a header\nVersion: 6.0\n",
    // A folded name (never written by a tool, but read all the same).
    "folded-7.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: folded\n  name\nVersion: 7.0\n",
    // Metadata without a version.
    "noversion-0.dist-info/METADATA": "Metadata-Version: 2.1\nName: noversion\n",
  });
  const out = execFileSync(SYSTEM_PYTHON, ["-E", "-c", COMPARE, pythonSourcePath("resolve/probe.py"), site], {
    cwd: "/",
    encoding: "utf8",
  });
  const { compared, mismatches } = JSON.parse(out) as { compared: number; mismatches: unknown[] };
  assert.deepEqual(mismatches, []);
  // This machine's own (toil and its dependencies) and the eight above.
  assert.ok(compared > 20, `only ${compared} distributions were compared`);
});
