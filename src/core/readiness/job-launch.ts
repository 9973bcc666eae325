import { type BatchSystem, GRID_BATCH_SYSTEMS } from "../inventory/batch-systems.js";
import type { JobLaunch, JobPath } from "./node-checks.js";

type GridBatchSystem = (typeof GRID_BATCH_SYSTEMS)[number];

/** How one scheduler starts a job Toil submitted: which PATH the job's command is looked up on. */
export interface SchedulerLaunch {
  /** The scheduler's name, for messages. */
  name: string;
  path: JobPath;
  /** How Toil 5.9 submits and what the scheduler then does, for messages. */
  how: string;
}

/**
 * How each grid batch system of Toil 5.9 starts `_toil_worker`, read from its submission code
 * (toil/batchSystems/*.py) and the scheduler's documentation. Every one of them also carries the
 * leader's other variables, SYNC_CLUSTER_RELEASE included (the one-release-per-run promise).
 *
 * - Slurm: `sbatch --export=ALL` copies the leader's environment, PATH included.
 * - Grid Engine: `qsub -V -b y` carries the variables, but the execd runs the command through the
 *   queue's shell (/bin/sh), and with the default `shell_start_mode posix_compliant` and `sh` in
 *   `login_shells` that shell is a login shell: /etc/profile and ~/.profile set PATH (the leader's
 *   arrives only as SGE_O_PATH). Seen on Son of Grid Engine 8.1.9 (test/toil/grid-engine.test.ts).
 * - LSF: `bsub` with no `-env` copies the whole submission environment, PATH included, and runs
 *   the command with /bin/sh, not a login shell (unless -L, which Toil does not pass).
 * - HTCondor: Toil submits `getenv = True` (the submitter's environment, PATH included) with
 *   `executable = /bin/sh` and `-c COMMAND`: no login shell.
 * - Torque and PBS: `qsub -V -S /bin/sh` carries the variables, but pbs_mom starts the job's shell
 *   as a login shell, whose start-up files set PATH.
 */
export const SCHEDULER_LAUNCH: Record<GridBatchSystem, SchedulerLaunch> = {
  slurm: {
    name: "Slurm",
    path: "leader",
    how: "sbatch --export=ALL gives each job the leader's environment, PATH included",
  },
  grid_engine: {
    name: "Grid Engine",
    path: "login-shell",
    how: "qsub -V -b y carries the leader's variables but runs the command through the queue's shell as a login shell (shell_start_mode posix_compliant, sh in login_shells), whose start-up files set PATH",
  },
  gridengine: {
    name: "Grid Engine",
    path: "login-shell",
    how: "qsub -V -b y carries the leader's variables but runs the command through the queue's shell as a login shell (shell_start_mode posix_compliant, sh in login_shells), whose start-up files set PATH",
  },
  lsf: {
    name: "LSF",
    path: "leader",
    how: "bsub copies the leader's environment, PATH included, and runs the command with /bin/sh",
  },
  htcondor: {
    name: "HTCondor",
    path: "leader",
    how: "Toil submits with getenv = True (the leader's environment, PATH included) and runs /bin/sh -c COMMAND",
  },
  torque: {
    name: "Torque/PBS",
    path: "login-shell",
    how: "qsub -V -S /bin/sh carries the leader's variables but pbs_mom starts the job's shell as a login shell, whose start-up files set PATH",
  },
};

/**
 * The PATH a login shell gives a job on a node, as far as the leader can tell: what Debian's
 * /etc/profile sets. The node's own start-up files may say otherwise, which is why `check` never
 * trusts a bare `_toil_worker` there.
 */
export const LOGIN_SHELL_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * How a grid batch system will start Toil's worker on a node, from the leader's side. Toil 5.9's
 * `resolveEntryPoint` submits the bare name `_toil_worker`; with TOIL_CHECK_ENV=True and the leader
 * in a venv it submits the absolute path VENV/bin/_toil_worker instead. A run is started with the
 * leader's venv activated (README, "Running Toil on a batch system"), so the venv's bin comes
 * first on the leader's PATH. Other batch systems run the leader's own interpreter or ship the code
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
  const scheduler = SCHEDULER_LAUNCH[input.batchSystem as GridBatchSystem];
  const venv = input.leaderVenv === null ? null : input.leaderVenv.replace(/\/+$/, "");
  const venvBin = venv === null ? null : `${venv}/bin`;
  const rest = input.leaderPath.split(":").filter((entry) => entry !== "" && entry !== venvBin);
  const absolute = input.toilCheckEnv && venvBin !== null;
  return {
    command: absolute ? `${venvBin}/_toil_worker` : "_toil_worker",
    path: scheduler.path === "leader" ? (venvBin ? [venvBin, ...rest] : rest).join(":") : LOGIN_SHELL_PATH,
    venv,
    scheduler: scheduler.name,
    jobPath: scheduler.path,
    absolute,
    how: scheduler.how,
  };
}
