import { runBounded, stderrTail } from "./bounded-run.js";

/**
 * ClusterShell groups (`@compute`, `@source:name`) looked up by ClusterShell itself, with
 * `nodeset -e @group`: groups.conf, groups.d/*.yaml and *.cfg and the upcalls they name are its
 * configuration, read as clush reads them ($CLUSTERSHELL_CFGDIR first). Run without a shell,
 * killed with what it started after GROUP_TIMEOUT_SECONDS.
 */

export const GROUP_TIMEOUT_SECONDS = 30;
const MAX_OUTPUT = 16 * 1024 * 1024;

/** A group that cannot be looked up: ClusterShell missing, the group unknown or empty, `nodeset` failing. */
export class NodeGroupError extends Error {
  constructor(
    readonly group: string,
    readonly problem: string,
  ) {
    super(problem);
    this.name = "NodeGroupError";
  }
}

export interface GroupLookupOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  timeoutSeconds?: number;
}

/** The members of each group, as `nodeset -e` prints them. Throws NodeGroupError. */
export async function lookUpNodeGroups(
  groups: readonly string[],
  options: GroupLookupOptions,
): Promise<Map<string, string[]>> {
  const members = new Map<string, string[]>();
  for (const group of new Set(groups)) members.set(group, await lookUpNodeGroup(group, options));
  return members;
}

async function nodeset(args: string[], options: GroupLookupOptions) {
  const seconds = options.timeoutSeconds ?? GROUP_TIMEOUT_SECONDS;
  const outcome = await runBounded(["nodeset", ...args], {
    cwd: options.cwd,
    env: options.env,
    timeoutMs: seconds * 1000,
    maxOutput: MAX_OUTPUT,
  });
  return { outcome, seconds };
}

/** The nodes of one group, as `nodeset -e` prints them. Throws NodeGroupError. */
export async function lookUpNodeGroup(group: string, options: GroupLookupOptions): Promise<string[]> {
  const fail = (problem: string): never => {
    throw new NodeGroupError(group, problem);
  };
  // The group is one argument starting with "@": never read as an option, never seen by a shell.
  const { outcome, seconds } = await nodeset(["-e", group], options);
  const command = `\`nodeset -e ${group}\``;
  if (outcome.spawnError) {
    if ((outcome.spawnError as NodeJS.ErrnoException).code === "ENOENT")
      fail(`${group} is a ClusterShell group: install ClusterShell (Debian: clustershell) or list the nodes`);
    fail(`${command} cannot be run: ${outcome.spawnError.message}`);
  }
  if (outcome.timedOut)
    fail(
      `${command} did not finish within ${seconds}s and was killed (a slow upcall in ClusterShell's groups.conf?); ${stderrTail(outcome.stderr)}`,
    );
  if (outcome.overflowed) fail(`${command} printed more than 16 MiB: that is no list of nodes`);
  if (outcome.code !== 0)
    fail(
      `${command} ${outcome.signal ? `was killed by ${outcome.signal}` : `exited with status ${outcome.code}`}; ${stderrTail(outcome.stderr)}`,
    );
  const names = outcome.stdout.split(/\s+/).filter((n) => n !== "");
  if (names.length === 0) fail(await emptyGroupProblem(group, options));
  return names;
}

/** `nodeset -e` prints nothing both for an empty group and for an unknown one: its list tells them apart. */
async function emptyGroupProblem(group: string, options: GroupLookupOptions): Promise<string> {
  const where = `ClusterShell's groups (${configPlaces(options.env)})`;
  const colon = group.indexOf(":");
  const source = colon < 0 ? undefined : group.slice(1, colon);
  const name = colon < 0 ? group.slice(1) : group.slice(colon + 1);
  if (name === "*") return `${where} list no nodes for ${group} (the source has no \`all\` upcall or list)`;
  const { outcome } = await nodeset(source === undefined ? ["-l"] : ["-l", "-s", source], options);
  const known = outcome.code === 0 ? outcome.stdout.split(/\s+/).filter((g) => g !== "") : [];
  // `-l -s SOURCE` prints `@SOURCE:name`; `-l` prints `@name` for the default source.
  const names = known.map((g) => g.replace(/^@([^:]*:)?/, ""));
  if (names.includes(name)) return `${group} is empty in ${where}`;
  const shown = known.length > 12 ? `${known.slice(0, 12).join(", ")}, ...` : known.join(", ");
  return `${where} have no group ${group}${shown ? ` (groups: ${shown})` : ""}`;
}

function configPlaces(env: NodeJS.ProcessEnv): string {
  const home = env.CLUSTERSHELL_CFGDIR ? `$CLUSTERSHELL_CFGDIR=${env.CLUSTERSHELL_CFGDIR}, ` : "";
  return `${home}/etc/clustershell, ~/.config/clustershell: groups.conf and groups.d/`;
}
