import { DaemonLinker } from "../daemon/client.js";
import { resolveThroughDaemon } from "../daemon/resolve-client.js";
import { resolveWithStoredDigests } from "../resolve/cached-resolve.js";
import type { Resolution, ResolveOptions } from "../resolve/resolver.js";
import type { NodeLinker } from "../transport/node-link.js";

/**
 * The project's resolution for a command that reaches its nodes through `links`: the daemon's,
 * kept warm between commands, when the command goes through the daemon; else made here. Whatever
 * keeps the daemon from answering, the command resolves itself: the daemon saves time, it never
 * decides what is pushed.
 */
export async function resolveForCommand(options: ResolveOptions, links: NodeLinker): Promise<Resolution> {
  if (!(links instanceof DaemonLinker) || (await links.reachable()) !== undefined)
    return resolveWithStoredDigests(options);
  const { place, idleSeconds, note } = links.options;
  try {
    const answer = await resolveThroughDaemon(place, options, idleSeconds);
    note?.(
      answer.warm
        ? "daemon: the resolution the daemon keeps is current (nothing it read has changed)"
        : `daemon: resolved by the daemon (${answer.reason})`,
    );
    return answer.resolution;
  } catch (error) {
    note?.(`daemon: resolved here: ${(error as Error).message}`);
    return resolveWithStoredDigests(options);
  }
}
