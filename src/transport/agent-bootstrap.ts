import { readFileSync } from "node:fs";
import type { NodeSpec } from "../core/inventory/inventory-types.js";
import { PROTOCOL_VERSION } from "../core/protocol/worker-protocol-types.js";
import { portableShellCommand, remotePath } from "../core/ssh/shell-quote.js";
import { agentSourcePath } from "../package-files.js";

/**
 * How the worker agent (src/worker/sync_cluster_agent/, joined into one source at build time) gets
 * started on a node. The SSH command is a small bootstrap: it picks the venv's python (so the agent
 * knows the venv's site-packages), else the node's python3, and runs BOOTSTRAP_PROGRAM, which reads the agent's source from stdin (one line
 * with its length, then the source) and runs it. The request frames follow the source on the same
 * stdin. The source never travels in the command line, whose single argument Linux caps at
 * 128 KiB, and it is sent at once, without waiting for the node: one round trip.
 */

/** The protocol both sides speak, from its declaration (core/protocol/worker-protocol.json). */
export { PROTOCOL_VERSION };

let agentSource: Buffer | undefined;
export function agentCode(): Buffer {
  agentSource ??= readFileSync(agentSourcePath());
  return agentSource;
}

/** What the bootstrap reads from stdin before the first request frame: the length, a newline, the source. */
export function agentSourceMessage(source: Buffer = agentCode()): Buffer {
  return Buffer.concat([Buffer.from(`${source.length}\n`, "ascii"), source]);
}

/**
 * Run as `PYTHON -c BOOTSTRAP_PROGRAM`. It keeps no reference to anything but sys: the agent
 * reads the rest of the same buffered stdin, so no byte read ahead is lost. Double quotes only,
 * so the command stays plain in any POSIX shell's single quotes.
 */
export const BOOTSTRAP_PROGRAM = [
  "import sys",
  "i=sys.stdin.buffer",
  "n=int(i.readline() or 0)",
  "s=i.read(n)",
  'len(s)==n>0 or sys.exit("sync-cluster: the agent source sent by the leader was cut short (%d of %d bytes)"%(len(s),n))',
  'exec(compile(s,"sync-cluster-agent","exec"),{"__name__":"__main__"})',
].join(";");

/**
 * How long the login shell and the bootstrap may take until the agent announces itself: six times
 * the node's connectTimeout (60 s by default). Not the connectTimeout itself: the login files run
 * first, and a ~/.bashrc running `pyenv init` took 7 to 24 s to start bash on this project's
 * loaded test machine (4 at once: over 30 s).
 */
export function agentStartTimeoutMs(node: Pick<NodeSpec, "connectTimeout">): number {
  return 6 * node.connectTimeout * 1000;
}

/** What the bootstrap says on stderr, and exits 127 with, when the node has no python to run the agent. */
export const NO_PYTHON_MESSAGE = "sync-cluster: no python to run the agent";

/**
 * The command line sshd hands to the login shell. Under `sh -c`, so it means the same whatever the
 * login shell is (bash, zsh, dash, ksh, fish, csh, tcsh: see portableShellCommand). The venv path is
 * quoted; only a leading `~/` is left for the shell.
 */
export function agentCommand(node: Pick<NodeSpec, "venv">): string {
  const venvPython = `${remotePath(node.venv)}/bin/python`;
  const script = [
    // The agent and the interpreters it starts are no workflow run: they pin no release (src/worker/sync_cluster_agent/selector.py).
    "export SYNC_CLUSTER_NO_PIN=1",
    `p=${venvPython}`,
    '[ -x "$p" ] || p=python3',
    `command -v "$p" >/dev/null 2>&1 || { echo "${NO_PYTHON_MESSAGE}: neither ${node.venv.replace(/[^\w ./~+@%:,=-]/g, "?")}/bin/python nor python3 on PATH ($PATH)" >&2; exit 127; }`,
    `exec "$p" -c '${BOOTSTRAP_PROGRAM}'`,
  ].join("\n");
  return portableShellCommand(script);
}
