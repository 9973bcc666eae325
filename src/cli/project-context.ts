import { resolve as resolvePath } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../core/errors.js";
import type { Inventory } from "../core/inventory/inventory-types.js";
import { type Entry, parseEntry } from "../core/module-set/entry-rules.js";
import { findInventory, loadInventory } from "../inventory/load.js";
import type { ResolveOptions } from "../resolve/resolver.js";
import { inventoryOption } from "./shared-options.js";

/** Options shared by the commands that resolve the workflow (resolve, push, watch). */
export interface EntryOptions {
  module?: string;
  root?: string;
  python?: string;
  inventory?: string;
}

export function addEntryOptions(command: Command): Command {
  return command
    .option("-m, --module <module>", "run the workflow as `python3 -m MODULE` (package-hierarchy scenario)")
    .addOption(inventoryOption());
}

export interface ProjectContext {
  inventory: Inventory | undefined;
  resolveOptions: ResolveOptions;
}

/** The inventory named by -i, else the first one found; undefined only when none exists and none was asked for. */
export async function inventoryFor(
  options: { inventory?: string },
  required: boolean,
  listWorkers = true,
): Promise<Inventory | undefined> {
  const lookup = { explicitPath: options.inventory, env: process.env, cwd: process.cwd(), listWorkers };
  if (!options.inventory && !required) {
    try {
      findInventory(lookup);
    } catch {
      return undefined;
    }
  }
  return loadInventory(lookup);
}

/** Combines the command line (which wins) with the inventory's `project` section. */
export async function projectFromOptions(
  script: string | undefined,
  options: EntryOptions,
  requireInventory = false,
): Promise<ProjectContext> {
  if (script && options.module) {
    throw new UsageError("Give either a SCRIPT or -m MODULE, not both.");
  }
  // Only the commands that reach nodes ask the scheduler for them (`resolve` needs the project only).
  const inventory = await inventoryFor(options, requireInventory, requireInventory);
  let entry: Entry;
  if (options.module) entry = { kind: "module", name: options.module };
  // A script named on the command line is relative to where the user is, not to the project root.
  else if (script) entry = { kind: "script", path: resolvePath(script) };
  else if (inventory?.project.entry) entry = parseEntry(inventory.project.entry);
  else {
    throw new UsageError(
      "Which workflow? Give the main script (sync-cluster push workflow.py), a module (-m workflow.main), or set project.entry in the inventory.",
    );
  }
  const startDir = options.root ?? inventory?.project.root ?? process.cwd();
  const resolveOptions: ResolveOptions = {
    entry,
    startDir: resolvePath(startDir),
    include: inventory?.project.include ?? [],
    exclude: inventory?.project.exclude ?? [],
    env: process.env,
  };
  const python = options.python ?? inventory?.project.python;
  if (python) resolveOptions.python = python;
  return { inventory, resolveOptions };
}
