import { Option } from "commander";
import { DEFAULT_IDLE_SECONDS } from "../core/daemon/daemon-policy.js";
import type { Inventory } from "../core/inventory/inventory-types.js";
import { DaemonLinker } from "../daemon/client.js";
import { daemonPlace } from "../daemon/place.js";
import { directLinker, type NodeLinker } from "../transport/node-link.js";

/** How a command reaches its nodes: through the user's daemon unless something says otherwise. */

export interface LinkOptions {
  /** false with --no-daemon. */
  daemon?: boolean;
  verbose?: boolean;
}

export function noDaemonOption(): Option {
  return new Option(
    "--no-daemon",
    "connect directly, neither using nor starting the daemon (also: SYNC_CLUSTER_DAEMON=off)",
  );
}

export function verboseOption(): Option {
  return new Option(
    "-v, --verbose",
    "say how the nodes are reached (through the daemon or directly, and why)",
  );
}

export function linkerFor(
  inventory: Pick<Inventory, "daemon">,
  options: LinkOptions,
  env: NodeJS.ProcessEnv = process.env,
): NodeLinker {
  const note = options.verbose ? (message: string) => process.stderr.write(`${message}\n`) : undefined;
  const off =
    options.daemon === false
      ? "--no-daemon"
      : env.SYNC_CLUSTER_DAEMON === "off"
        ? "SYNC_CLUSTER_DAEMON=off"
        : inventory.daemon === "off"
          ? "the inventory says `daemon: off`"
          : undefined;
  if (off) {
    note?.(`daemon: direct connections: ${off}`);
    return directLinker;
  }
  return new DaemonLinker({
    place: daemonPlace(env),
    idleSeconds: typeof inventory.daemon === "number" ? inventory.daemon : DEFAULT_IDLE_SECONDS,
    ...(note ? { note } : {}),
    env,
  });
}
