import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { agentSourcePath } from "../../src/package-files.js";
import { SYSTEM_PYTHON } from "../fixtures/projects.js";

/**
 * A node without a venv runs the agent (and the probes it starts) with its system python3 so that
 * `check --fix` can make one: on RHEL 8 and its rebuilds, common on clusters, that is Python 3.6.
 * No such interpreter is on this machine, so this reads the sources with Python 3.6's grammar (as
 * far as `ast.parse(feature_version=...)` knows it: walrus, positional-only parameters, `async`
 * as a name...); library calls newer than 3.6 are guarded in the agent itself.
 */
// The sources themselves, and the programs the agent carries as text: the .pth's selector runs in
// every interpreter of the venv, the probes in a fresh one, _toil_worker under the venv's python.
const PARSE_AS_36 = `
import ast, sys
def parse(text, name):
    ast.parse(text, name, feature_version=(3, 6))
agent, probe = sys.argv[1], sys.argv[2]
for path in (agent, probe):
    parse(open(path).read(), path)
namespace = {"__name__": "sync_cluster_agent"}
exec(compile(open(agent).read(), agent, "exec"), namespace)
for name in ("SELECTOR", "PROBE_IMPORTS", "PROBE_ORIGINS"):
    parse(namespace[name], name)
parse(namespace["TOIL_WORKER"] % ("/venv/bin/python", namespace["TOIL_WORKER_MARK"]), "TOIL_WORKER")
print("ok")
`;

test("the agent, the probes and the code the agent writes on a node parse with Python 3.6's grammar", () => {
  const out = execFileSync(
    SYSTEM_PYTHON,
    ["-c", PARSE_AS_36, agentSourcePath(), join(process.cwd(), "src/resolve/probe.py")],
    { encoding: "utf8" },
  );
  assert.equal(out, "ok\n");
});
