import { Option } from "commander";
import { UsageError } from "../core/errors.js";

/** The options every command that reaches nodes shares, spelled and parsed once. */

export interface SharedOptions {
  inventory?: string;
  jobs?: string;
  acceptNew?: boolean;
}

export function inventoryOption(): Option {
  return new Option(
    "-i, --inventory <path>",
    "the cluster inventory (default: $SYNC_CLUSTER_INVENTORY, ./sync-cluster.yaml, config/cluster.yaml)",
  );
}

/** `what` names what runs in parallel: "workers handled", "nodes checked". */
export function jobsOption(what: string, defaultNote = "the inventory's concurrency"): Option {
  return new Option("-j, --jobs <n>", `${what} at once (default: ${defaultNote})`);
}

export function acceptNewOption(): Option {
  return new Option("--accept-new", "accept and record host keys not yet in known_hosts");
}

export function parseJobs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`-j takes a whole number of workers at once (1 or more), not ${value}.`);
  return n;
}
