import { InventoryError } from "../core/errors.js";
import {
  HostListError,
  hostListGroups,
  type ListedHost,
  parseHostList,
} from "../core/inventory/host-list.js";
import type { GroupMembers } from "../core/inventory/node-set.js";
import {
  type CommandStep,
  describeStep,
  NotInJobError,
  usableSinfoNodes,
  type WorkersSource,
  workersCommandSteps,
} from "../core/inventory/workers-source.js";
import { type RunOutcome, runBounded, stderrTail } from "./bounded-run.js";
import { lookUpNodeGroup, NodeGroupError } from "./node-groups.js";

/**
 * Runs an inventory's workers command on this machine (the leader) and reads the hosts it
 * prints, asking ClusterShell for the groups among them. Every failure (the command exits
 * non-zero, runs past its timeout, prints nothing or prints something that is not a host) is an
 * InventoryError naming the file, the key and the command, with the end of its stderr.
 */

/** Output beyond this is not a host list any more. */
const MAX_OUTPUT = 16 * 1024 * 1024;

/** What went wrong with one step, or undefined when it worked. */
function stepProblem(step: CommandStep, outcome: RunOutcome, timeoutSeconds: number): string | undefined {
  const command = `\`${describeStep(step)}\``;
  if (outcome.spawnError) {
    const code = (outcome.spawnError as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? `${command} cannot be run: \`${step.argv[0]}\` is not installed on this machine (or not on PATH)`
      : `${command} cannot be run: ${outcome.spawnError.message}`;
  }
  if (outcome.timedOut)
    return `${command} did not finish within ${timeoutSeconds}s and was killed (raise workers.timeout if it is only slow); ${stderrTail(outcome.stderr)}`;
  if (outcome.overflowed) return `${command} printed more than 16 MiB: that is no host list`;
  if (outcome.code !== 0) {
    const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with status ${outcome.code}`;
    return `${command} ${how}; ${stderrTail(outcome.stderr)}`;
  }
  if (outcome.stdout.trim() === "") return `${command} printed no host; ${stderrTail(outcome.stderr)}`;
  return undefined;
}

/** What an empty answer from Slurm usually means. */
function slurmHint(source: WorkersSource, outcome: RunOutcome): string {
  if (!source.slurm || outcome.code !== 0 || outcome.stdout.trim() !== "") return "";
  if ("partition" in source.slurm)
    return ` (no node of partition ${source.slurm.partition} is idle, mixed, allocated or completing and answering: is the partition's name right? \`sinfo --partition=${source.slurm.partition}\` shows its nodes)`;
  return ` (job ${source.slurm.job} has no nodes: is it still pending? \`squeue --jobs=${source.slurm.job}\` shows it)`;
}

/**
 * The hosts the source's command prints now. Run in `cwd` (the inventory's directory, so a
 * script beside it can be named `./list-nodes`) with `env`.
 */
export async function listWorkers(
  source: WorkersSource,
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<ListedHost[]> {
  const fail = (problem: string): never => {
    throw new InventoryError(source.at, problem);
  };
  let steps: CommandStep[];
  try {
    steps = workersCommandSteps(source, options.env);
  } catch (error) {
    if (error instanceof NotInJobError) fail(error.message);
    throw error;
  }
  let output = "";
  for (const step of steps) {
    const argv = step.previousOutput ? [...step.argv, output.trim()] : step.argv;
    const outcome = await runBounded(argv, {
      ...options,
      timeoutMs: source.timeoutSeconds * 1000,
      maxOutput: MAX_OUTPUT,
    });
    const problem = stepProblem({ ...step, argv }, outcome, source.timeoutSeconds);
    if (problem) fail(`the workers could not be listed: ${problem}${slurmHint(source, outcome)}`);
    output = step.sinfoStates ? usableSinfoNodes(outcome.stdout) : outcome.stdout;
  }
  const command = `\`${describeStep(steps.at(-1)!)}\``;
  let hosts: ListedHost[] = [];
  try {
    const groups = await groupsOfListing(output, options, (line, text, problem) =>
      fail(`line ${line} of the output of ${command} (\`${text}\`): ${problem}`),
    );
    hosts = parseHostList(output, groups);
  } catch (error) {
    if (error instanceof HostListError) fail(`the output of ${command} is not a host list: ${error.message}`);
    throw error;
  }
  if (hosts.length === 0) fail(`${command} printed no host, only blank lines and comments`);
  return hosts;
}

/** The members of the ClusterShell groups a listing names, asked of `nodeset`. */
async function groupsOfListing(
  output: string,
  options: { cwd: string; env: NodeJS.ProcessEnv },
  fail: (line: number, text: string, problem: string) => never,
): Promise<GroupMembers> {
  const members = new Map<string, string[]>();
  for (const { group, line, text } of hostListGroups(output)) {
    try {
      members.set(group, await lookUpNodeGroup(group, options));
    } catch (error) {
      if (error instanceof NodeGroupError) fail(line, text, error.message);
      throw error;
    }
  }
  return members;
}
