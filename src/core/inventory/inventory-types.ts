import type { NodeRoute } from "../ssh/node-route.js";
import type { BatchSystem } from "./batch-systems.js";
import type { TreeSettings } from "./tree-settings.js";
import type { WorkersSource } from "./workers-source.js";

/** The inventory after validation, with defaults merged and ~/.ssh/config applied. */

export type NodeRole = "leader" | "worker";

export interface NodeSpec {
  /** Unique name used in output and selectors: `name:` key, else the ssh alias, else host:port. */
  name: string;
  role: NodeRole;
  /** Address to connect to (after ~/.ssh/config HostName resolution). */
  host: string;
  port: number;
  user: string;
  /** Absolute local paths of private keys to try, in order (may be empty when an agent is used). */
  identityFiles: string[];
  /** Absolute local path of the known_hosts file used to verify this node. */
  knownHosts: string;
  /** Remote virtualenv path as written (may start with `~/`; expanded on the node). */
  venv: string;
  /** Remote deploy directory as written (may start with `~/`; expanded on the node). */
  deployDir: string;
  /** Add an unknown host key to known_hosts instead of refusing it. */
  acceptNewHostKeys: boolean;
  /** Seconds to wait for the TCP connection and SSH handshake. */
  connectTimeout: number;
  /** How the node is reached when not directly: jump hosts and/or a ProxyCommand (node-route.ts). */
  route?: NodeRoute;
  /** Releases kept for `rollback` besides `current` and those workflow runs use. */
  keep: number;
}

export interface ProjectSpec {
  /** `-m pkg.mod` or `script.py`, as written in the inventory; undefined when not given. */
  entry?: string;
  /** Absolute local directory python is started from. */
  root: string;
  /** Leader interpreter as written (resolved relative to the inventory's directory). */
  python?: string;
  include: string[];
  exclude: string[];
  /** Name of the project on the workers: DEPLOYDIR/NAME/. */
  name: string;
  /** Toil's --batchSystem for the runs (default slurm): grid ones start jobs through the leader's PATH. */
  batchSystem: BatchSystem;
}

export interface Inventory {
  /** Absolute path of the file it was read from. */
  file: string;
  project: ProjectSpec;
  concurrency: number;
  /** Seconds the user's daemon stays up unused (default DEFAULT_IDLE_SECONDS), or "off": connect directly. */
  daemon?: number | "off";
  leader?: NodeSpec;
  workers: NodeSpec[];
  /** Workers reached through ClusterShell's gateways (`tree:`); absent: each from the leader. */
  tree?: TreeSettings;
  /** Set when the workers are listed by a command (`workers: {command}` or `{slurm}`), run at load. */
  workersSource?: WorkersSource;
}
