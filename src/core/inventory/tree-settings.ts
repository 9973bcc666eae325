/**
 * `tree:` in the inventory: workers are reached through ClusterShell's gateways instead of each
 * from the leader. Either the site's ClusterShell topology file or the gateways listed here.
 */
export interface TreeSettings {
  /** A ClusterShell topology.conf (absolute path); absent when `gateways` are listed. */
  topologyFile?: string;
  /** Each gateway and the node set it serves, as ClusterShell writes them (`node[001-128]`). */
  gateways?: Record<string, string>;
  /** The leader's name in the topology (ClusterShell's default: this host's short name). */
  root?: string;
  /** The interpreter that runs ClusterShell on the leader. */
  python?: string;
  /** ssh options for every hop of the tree (ClusterShell's ssh_options), e.g. `-F ~/.ssh/cluster`. */
  sshOptions?: string;
  /** Commands a gateway runs at once (ClusterShell's fanout). */
  fanout: number;
  /** Where every hop keeps its ssh multiplexing sockets (absolute, or ~/ on that hop); default /tmp. */
  controlDir?: string;
  /**
   * Seconds each hop's ssh connection stays open unused (OpenSSH's ControlPersist), so the next
   * command through the tree pays no handshake; set from the inventory's `daemon:` by the command,
   * absent when connections are not kept (`daemon: off`, --no-daemon).
   */
  persistSeconds?: number;
}

export const TREE_KEYS = ["topology", "gateways", "root", "python", "sshOptions", "fanout", "controlDir"];

/** The parts of the inventory's validator this section uses. */
export interface TreeValidator {
  fail(path: (string | number)[], problem: string): never;
  mapping(
    value: unknown,
    path: (string | number)[],
    allowed: readonly string[],
    what: string,
  ): Record<string, unknown>;
  string(value: unknown, path: (string | number)[]): string;
  integer(value: unknown, path: (string | number)[], min: number, max: number): number;
  commandWord(value: unknown, path: (string | number)[], what: string): string;
  localPath(value: string): string;
}

export const DEFAULT_TOPOLOGY_FILE = "/etc/clustershell/topology.conf";

export function readTreeSettings(v: TreeValidator, raw: unknown): TreeSettings {
  const tree = raw === null ? {} : v.mapping(raw, ["tree"], TREE_KEYS, "`tree`");
  if (tree.topology !== undefined && tree.gateways !== undefined)
    v.fail(
      ["tree", "gateways"],
      "give either `topology` (a ClusterShell topology file) or `gateways`, not both",
    );
  const settings: TreeSettings = {
    fanout: tree.fanout === undefined ? 64 : v.integer(tree.fanout, ["tree", "fanout"], 1, 4096),
  };
  if (tree.gateways !== undefined) {
    const gateways = v.mapping(
      tree.gateways,
      ["tree", "gateways"],
      Object.keys(tree.gateways ?? {}),
      "`tree.gateways`",
    );
    const entries = Object.entries(gateways);
    if (entries.length === 0)
      v.fail(
        ["tree", "gateways"],
        "lists no gateway: write `GATEWAY: NODESET` lines, e.g. `gw1: node[001-128]`",
      );
    settings.gateways = {};
    for (const [gateway, nodes] of entries) {
      v.commandWord(gateway, ["tree", "gateways", gateway], "a gateway's host name");
      settings.gateways[gateway] = v.string(nodes, ["tree", "gateways", gateway]);
    }
  } else {
    settings.topologyFile = v.localPath(
      tree.topology === undefined ? DEFAULT_TOPOLOGY_FILE : v.string(tree.topology, ["tree", "topology"]),
    );
  }
  if (tree.root !== undefined) settings.root = v.commandWord(tree.root, ["tree", "root"], "a host name");
  if (tree.python !== undefined) settings.python = v.localPath(v.string(tree.python, ["tree", "python"]));
  if (tree.sshOptions !== undefined) settings.sshOptions = v.string(tree.sshOptions, ["tree", "sshOptions"]);
  if (tree.controlDir !== undefined) {
    const dir = v.commandWord(tree.controlDir, ["tree", "controlDir"], "a directory");
    if (!dir.startsWith("/") && !dir.startsWith("~/"))
      v.fail(
        ["tree", "controlDir"],
        `\`${dir}\` must be absolute (or start with ~/): every hop of the tree uses it`,
      );
    settings.controlDir = dir.replace(/\/+$/, "");
  }
  return settings;
}
