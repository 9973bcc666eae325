import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { NodeError } from "../core/errors.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";
import { type NodeRun, relayEvent } from "../core/tree/relay-events.js";
import { topologyText } from "../core/tree/topology-file.js";
import { pythonSourcePath } from "../package-files.js";

/**
 * Runs commands on nodes through ClusterShell's gateway tree: the relay (relay.py) runs on the
 * leader with ClusterShell's Task API, and each run's stdin crosses the leader's link once per
 * gateway, which hands it to every node of the run it serves.
 */

export interface TreeRun {
  id: string;
  nodes: readonly string[];
  command: string;
  stdin: Buffer;
  /** Seconds the run may take on a node before it counts as hung. */
  timeoutSeconds: number;
}

export interface TreeRunOptions {
  /** A node's command ended (whatever the other nodes of its run are doing). */
  onNodeDone?: (run: string, result: NodeRun) => void;
  /** Each line a node prints, as it arrives. */
  onLine?: (run: string, node: string, stream: "out" | "err", line: string) => void;
  signal?: AbortSignal;
}

/** What a tree command could not do at all (ClusterShell missing, a topology it refuses). */
export class TreeError extends NodeError {}

/** Bytes the relay was given, for the benchmark's account of what the leader sent. */
export interface RelayStats {
  stdinBytes: number;
}

// Gateways that stop answering are noticed by ssh's keepalive; nodes by the run's timeout.
const KEEPALIVE = "-oServerAliveInterval=5 -oServerAliveCountMax=3 -oBatchMode=yes";
// ClusterShell gathers a gateway's output this long before sending it up (its default is 0.25 s).
const GROOMING_SECONDS = 0.02;

/** The interpreter ClusterShell's own `clush` runs with, else python3. */
export function relayPython(settings: Pick<TreeSettings, "python">): string {
  if (settings.python) return settings.python;
  const found = spawnSync("sh", ["-c", "command -v clush"], { encoding: "utf8" });
  const clush = found.status === 0 ? found.stdout.trim() : "";
  if (clush) {
    try {
      const first = readFileSync(clush, "utf8").split("\n", 1)[0] ?? "";
      const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
      if (shebang) return shebang[1]!.endsWith("/env") && shebang[2] ? shebang[2] : shebang[1]!;
    } catch {
      // An unreadable clush: fall back to python3.
    }
  }
  return "python3";
}

/**
 * Each hop keeps its ssh connection open for the next command, as the daemon does for direct
 * connections: OpenSSH's ControlMaster, on the leader towards the gateways and on each gateway
 * towards its nodes. The socket is per user (%i) and per destination (%C).
 */
function multiplexing(settings: TreeSettings): string {
  if (settings.persistSeconds === undefined) return "";
  const dir = settings.controlDir ?? "/tmp";
  return `-oControlMaster=auto -oControlPath=${dir}/sync-cluster-%i-%C -oControlPersist=${Math.round(settings.persistSeconds)}`;
}

function shortHostname(): string {
  return hostname().split(".")[0]!;
}

export async function runOnTree(
  settings: TreeSettings,
  runs: readonly TreeRun[],
  options: TreeRunOptions = {},
): Promise<{ results: Map<string, NodeRun[]>; stats: RelayStats }> {
  if (runs.length === 0) return { results: new Map(), stats: { stdinBytes: 0 } };
  const scratch = mkdtempSync(join(tmpdir(), "sync-cluster-tree-"));
  try {
    const root = settings.root ?? (settings.gateways ? "sync-cluster-leader" : shortHostname());
    let topology = settings.topologyFile;
    if (!topology) {
      topology = join(scratch, "topology.conf");
      writeFileSync(topology, topologyText(root, settings.gateways ?? {}));
    }
    const plan = {
      topology,
      root,
      info: {
        fanout: settings.fanout,
        grooming_delay: GROOMING_SECONDS,
        ssh_options: [KEEPALIVE, multiplexing(settings), settings.sshOptions ?? ""].join(" ").trim(),
      },
      runs: runs.map((r) => ({
        id: r.id,
        nodes: r.nodes,
        command: r.command,
        stdin: r.stdin.length,
        timeout: r.timeoutSeconds,
      })),
    };
    return await relay(relayPython(settings), plan, runs, options);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function relay(
  python: string,
  plan: object,
  runs: readonly TreeRun[],
  options: TreeRunOptions,
): Promise<{ results: Map<string, NodeRun[]>; stats: RelayStats }> {
  const child = spawn(python, [pythonSourcePath("tree/relay.py")], { stdio: ["pipe", "pipe", "pipe"] });
  const routes = new Map<string, string | null>();
  const open = new Map<string, Map<string, NodeRun>>();
  const results = new Map<string, NodeRun[]>();
  for (const run of runs) {
    open.set(run.id, new Map());
    results.set(run.id, []);
  }
  const stderr: string[] = [];
  let done = false;
  const nodeRun = (run: string, node: string): NodeRun => {
    const inRun = open.get(run)!;
    let r = inRun.get(node);
    if (!r) {
      r = { node, via: routes.get(node) ?? null, out: [], err: [], end: { lost: "no answer" } };
      inRun.set(node, r);
    }
    return r;
  };
  const finish = (run: string, r: NodeRun) => {
    open.get(run)?.delete(r.node);
    results.get(run)?.push(r);
    options.onNodeDone?.(run, r);
  };
  const stop = () => child.kill("SIGTERM");
  options.signal?.addEventListener("abort", stop, { once: true });
  child.stdin.on("error", () => {});
  child.stdin.write(`${JSON.stringify(plan)}\n`);
  for (const run of runs) child.stdin.write(run.stdin);
  child.stdin.end();
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    if (stderr.join("").length < 64 * 1024) stderr.push(chunk);
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    const event = relayEvent(line);
    if (!event) return;
    switch (event.kind) {
      case "route":
        routes.set(event.node, event.via);
        return;
      case "done":
        done = true;
        return;
      case "out":
      case "err":
        nodeRun(event.run, event.node)[event.kind].push(event.line);
        options.onLine?.(event.run, event.node, event.kind, event.line);
        return;
      case "rc":
        finish(event.run, { ...nodeRun(event.run, event.node), end: { rc: event.rc } });
        return;
      case "timeout":
        finish(event.run, { ...nodeRun(event.run, event.node), end: { timeout: true } });
        return;
      case "lost":
        finish(event.run, { ...nodeRun(event.run, event.node), end: { lost: event.reason } });
        return;
    }
  });
  return new Promise((resolve, reject) => {
    child.once("error", (error) => reject(new TreeError("leader", relayFailure(python, error.message))));
    child.once("close", (code, signal) => {
      options.signal?.removeEventListener("abort", stop);
      if (!done && !options.signal?.aborted) {
        const said = stderr.join("").trim();
        if (routes.size === 0) {
          reject(new TreeError("leader", relayFailure(python, said || `it exited with ${signal ?? code}`)));
          return;
        }
        // Whatever the relay had not reported when it died: those nodes are not known to be done.
        for (const run of runs)
          for (const node of run.nodes)
            if (!results.get(run.id)!.some((r) => r.node === node))
              finish(run.id, {
                ...nodeRun(run.id, node),
                end: { lost: `ClusterShell stopped on the leader (${lastLine(said) || signal || code})` },
              });
      }
      for (const run of runs)
        for (const node of run.nodes)
          if (!results.get(run.id)!.some((r) => r.node === node))
            finish(run.id, { ...nodeRun(run.id, node), end: { lost: "the command was stopped" } });
      resolve({ results, stats: { stdinBytes: runs.reduce((s, r) => s + r.stdin.length, 0) } });
    });
  });
}

function lastLine(text: string): string {
  return (
    text
      .split("\n")
      .filter((l) => l.trim())
      .at(-1) ?? ""
  );
}

function relayFailure(python: string, said: string): string {
  if (/No module named '?ClusterShell/.test(said) || /ENOENT/.test(said))
    return `the tree (inventory \`tree:\`) needs ClusterShell on the leader, and ${python} ${/ENOENT/.test(said) ? "was not found" : "cannot import it"}: install it (Debian: apt install clustershell; else pip install ClusterShell) or set \`tree.python\` to an interpreter that has it`;
  if (/TopologyError|topology/i.test(said))
    return `ClusterShell refused the tree's topology: ${lastLine(said)}`;
  return `ClusterShell could not run on the leader: ${lastLine(said)}`;
}
