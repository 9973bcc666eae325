/** The inventory's types live in the core, which validates them (core/inventory-schema.ts). */
export type { Inventory, NodeRole, NodeSpec, ProjectSpec } from "../core/inventory-types.js";
