import { fileURLToPath } from "node:url";

/**
 * Files of the package found from the running module's location. The compiled modules
 * (dist/src/*.js, dist/src/<layer>/*.js) are bundled into dist/bundle/*.js for the CLI, and this
 * module's code is at dist/src/ or dist/bundle/: two levels below the package root either way.
 */
export function packagePath(relativeToRoot: string): string {
  return fileURLToPath(new URL(`../../${relativeToRoot}`, import.meta.url));
}

/** Python files ship as source beside the TypeScript (the compiler does not copy them). */
export function pythonSourcePath(relativeToSrc: string): string {
  return packagePath(`src/${relativeToSrc}`);
}

/**
 * The worker agent as the bootstrap streams it: its modules (src/worker/sync_cluster_agent/)
 * joined into one source at build time (bin/join-agent.mjs).
 */
export function agentSourcePath(): string {
  return packagePath("dist/src/worker/agent.py");
}
