import { Option } from "commander";
import { DEFAULT_IDLE_SECONDS } from "../core/daemon/daemon-policy.js";
import type { Inventory } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";

/** `--flat`: every worker from the leader, even when the inventory names ClusterShell gateways. */
export function flatOption(): Option {
  return new Option(
    "--flat",
    "reach every worker from the leader, not through the inventory's `tree:` gateways",
  );
}

/**
 * The inventory when its workers are reached through the tree for this command, else undefined.
 * Its hops keep their connections as long as the daemon would (`daemon:`), unless the daemon is off.
 */
export function throughTree(
  inventory: Inventory,
  options: { flat?: boolean; daemon?: boolean },
  env: NodeJS.ProcessEnv = process.env,
): (Inventory & { tree: TreeSettings }) | undefined {
  if (!inventory.tree || options.flat) return undefined;
  const off = options.daemon === false || env.SYNC_CLUSTER_DAEMON === "off" || inventory.daemon === "off";
  const persistSeconds = typeof inventory.daemon === "number" ? inventory.daemon : DEFAULT_IDLE_SECONDS;
  return { ...inventory, tree: { ...inventory.tree, ...(off ? {} : { persistSeconds }) } };
}
