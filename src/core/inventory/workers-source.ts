import type { FileLocation } from "../errors.js";
import { shellQuote } from "../ssh/shell-quote.js";

/**
 * Workers given by a command instead of a list (`workers: {command: ...}` or the `slurm`
 * shorthand): what the inventory asked for, and the programs that ask the scheduler. Pure: the
 * programs are run by inventory/workers-command.ts, on the machine sync-cluster runs on.
 */

/**
 * The node states a partition's usable nodes are in: up, whether busy or not. sinfo counts a
 * drained idle node as idle too: those are dropped from its output (usableSinfoNodes), as no new
 * job starts there.
 */
export const SLURM_USABLE_STATES = ["idle", "mixed", "allocated", "completing"] as const;

export type SlurmSelection = { partition: string } | { job: string };

export interface WorkersSource {
  /** The inventory key it was written under (`workers.command`, `workers.slurm`), for messages. */
  key: string;
  /** Where that key is in the inventory file. */
  at: FileLocation;
  /** `command`: run with `sh -c` in the inventory's directory. */
  command?: string;
  slurm?: SlurmSelection;
  /** How long one run may take before it is killed and counted as failed. */
  timeoutSeconds: number;
  /** How often `watch` runs it again. */
  refreshSeconds: number;
}

/**
 * One program run without a shell. With `previousOutput`, the previous step's output (trimmed)
 * is its last argument: `squeue` prints a job's nodes as `n[1-3]`, `scontrol show hostnames`
 * expands that to one a line.
 */
export interface CommandStep {
  argv: string[];
  previousOutput?: true;
  /** Its output is `NAME STATE` lines from sinfo, read by usableSinfoNodes. */
  sinfoStates?: true;
}

/** A `current` job needs the environment of a job: sync-cluster started inside it. */
export class NotInJobError extends Error {}

/** The steps that list the workers; `env` is the leader's environment (for `job: current`). */
export function workersCommandSteps(
  source: WorkersSource,
  env: Readonly<Record<string, string | undefined>>,
): CommandStep[] {
  if (source.command !== undefined) return [{ argv: ["/bin/sh", "-c", source.command] }];
  const slurm = source.slurm!;
  if ("partition" in slurm) {
    return [
      {
        argv: [
          "sinfo",
          "--Node",
          "--noheader",
          "--format=%N %T",
          `--partition=${slurm.partition}`,
          `--states=${SLURM_USABLE_STATES.join(",")}`,
          // Nodes in those states are listed even when their slurmd stopped answering: not those.
          "--responding",
        ],
        sinfoStates: true,
      },
    ];
  }
  let job = slurm.job;
  if (job === "current") {
    job = env.SLURM_JOB_ID ?? "";
    if (!job)
      throw new NotInJobError(
        "`job: current` means the Slurm job sync-cluster runs in, but SLURM_JOB_ID is not set: run it inside the job (salloc, or a command of the batch script), or name the job",
      );
  }
  return [
    { argv: ["squeue", "--noheader", `--jobs=${job}`, "--format=%N"] },
    { argv: ["scontrol", "show", "hostnames"], previousOutput: true },
  ];
}

/** A step as a user would type it, for messages. */
export function describeStep(step: CommandStep): string {
  if (step.argv[0] === "/bin/sh" && step.argv[1] === "-c") return step.argv[2]!;
  return step.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : shellQuote(a))).join(" ");
}

/** sinfo's `NAME STATE` lines to one host a line, without the drained and draining nodes. */
export function usableSinfoNodes(output: string): string {
  const names: string[] = [];
  for (const line of output.split("\n")) {
    const [name, state = ""] = line.trim().split(/\s+/);
    if (name && !state.toLowerCase().startsWith("drain")) names.push(name);
  }
  return names.map((n) => `${n}\n`).join("");
}
