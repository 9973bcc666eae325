/**
 * Which project a worker's DEPLOYDIR/NAME belongs to. Two projects can end up with the same name
 * (two `src` roots, two checkouts called `pipeline`); the agent records where the releases come
 * from (the leader's host and the root the entry is found in) next to them, and a push from
 * elsewhere is refused unless told to replace the project. Pure.
 */

export interface ProjectOrigin {
  /** The leader's host name, as the leader sees it. */
  host: string;
  /** The leader's root the entry module is found in (absolute). */
  root: string;
}

function isOrigin(value: unknown): value is ProjectOrigin {
  const o = value as ProjectOrigin | null;
  return typeof o === "object" && o !== null && typeof o.host === "string" && typeof o.root === "string";
}

/**
 * Why pushing `ours` would replace another project, or undefined when it would not: nothing
 * recorded yet (a new worker, or a project directory without origin.json) is no conflict.
 */
export function originConflict(
  recorded: unknown,
  ours: ProjectOrigin,
  project: string,
  node: string,
): string | undefined {
  if (!isOrigin(recorded)) return undefined;
  if (recorded.host === ours.host && recorded.root === ours.root) return undefined;
  return (
    `${node} holds another project named \`${project}\`, pushed from ${recorded.host}:${recorded.root}; ` +
    `this push comes from ${ours.host}:${ours.root}. Set a distinct project.name in the inventory, ` +
    "or, if it is the same project moved, push with --replace."
  );
}
