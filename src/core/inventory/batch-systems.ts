/**
 * Toil's --batchSystem names. The grid ones start `_toil_worker` on the node, each its own way
 * (core/readiness/job-launch.ts; Toil does not ship code to them): `check` verifies that route.
 */
export const GRID_BATCH_SYSTEMS = [
  "slurm",
  "grid_engine",
  "gridengine",
  "lsf",
  "torque",
  "htcondor",
] as const;
const OTHER_BATCH_SYSTEMS = ["single_machine", "kubernetes", "mesos", "aws_batch"] as const;
export type BatchSystem = (typeof GRID_BATCH_SYSTEMS)[number] | (typeof OTHER_BATCH_SYSTEMS)[number];
/** Every name `project.batchSystem` accepts. */
export const KNOWN_BATCH_SYSTEMS: readonly BatchSystem[] = [...GRID_BATCH_SYSTEMS, ...OTHER_BATCH_SYSTEMS];
