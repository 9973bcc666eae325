import { Option } from "commander";
import type { Inventory } from "../core/inventory/inventory-types.js";
import type { TreeSettings } from "../core/inventory/tree-settings.js";

/** `--flat`: every worker from the leader, even when the inventory names ClusterShell gateways. */
export function flatOption(): Option {
  return new Option(
    "--flat",
    "reach every worker from the leader, not through the inventory's `tree:` gateways",
  );
}

/** The inventory when its workers are reached through the tree for this command, else undefined. */
export function throughTree(
  inventory: Inventory,
  options: { flat?: boolean },
): (Inventory & { tree: TreeSettings }) | undefined {
  return inventory.tree && !options.flat ? (inventory as Inventory & { tree: TreeSettings }) : undefined;
}
