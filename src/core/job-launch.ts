import { type BatchSystem, GRID_BATCH_SYSTEMS } from "./inventory-schema.js";
import type { JobLaunch } from "./node-checks.js";

/**
 * How a grid batch system will start Toil's worker on a node, from the leader's side. Toil 5.9's
 * `resolveEntryPoint` submits the bare name `_toil_worker`, found on the node through the PATH the
 * scheduler copies from the leader (Slurm's `--export=ALL`); with TOIL_CHECK_ENV=True and the
 * entry point in the leader's venv it submits that absolute path instead. A run is started with
 * the leader's venv activated (README, "Running Toil on a batch system"), so the venv's bin comes
 * first on that PATH. Other batch systems run the leader's own interpreter or ship the code
 * themselves: nothing to check, undefined.
 */
export function jobLaunchOf(input: {
  batchSystem: BatchSystem;
  /** The leader's venv, expanded; null when the leader runs no venv. */
  leaderVenv: string | null;
  /** The leader's PATH (with or without the venv activated). */
  leaderPath: string;
  toilCheckEnv: boolean;
}): JobLaunch | undefined {
  if (!(GRID_BATCH_SYSTEMS as readonly string[]).includes(input.batchSystem)) return undefined;
  const venvBin = input.leaderVenv === null ? null : `${input.leaderVenv.replace(/\/+$/, "")}/bin`;
  const rest = input.leaderPath.split(":").filter((entry) => entry !== "" && entry !== venvBin);
  return {
    command: input.toilCheckEnv && venvBin ? `${venvBin}/_toil_worker` : "_toil_worker",
    path: (venvBin ? [venvBin, ...rest] : rest).join(":"),
    venv: input.leaderVenv === null ? null : input.leaderVenv.replace(/\/+$/, ""),
  };
}
