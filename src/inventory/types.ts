/** The inventory's types live in the core, which validates them (core/inventory-schema.ts). */
export type {
  Inventory,
  JumpHop,
  NodeRole,
  NodeRoute,
  NodeSpec,
  ProjectSpec,
  ProxyCommandSpec,
} from "../core/inventory-types.js";
