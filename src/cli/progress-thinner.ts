import type { PushEvent } from "../push/push.js";

/**
 * `push --ndjson`: the push as it happens, one JSON object per line, for scripts and CI logs that
 * want to follow a long push. Byte progress is thinned to one line per worker every
 * `intervalMs` (and always the last one), so a large archive does not flood the log.
 */
export function progressThinner(intervalMs: number, now: () => number = () => performance.now()) {
  const lastSending = new Map<string, number>();
  return (event: PushEvent): boolean => {
    if (event.type !== "node-progress" || event.phase !== "sending") return true;
    const at = now();
    const previous = lastSending.get(event.node);
    const complete = event.bytesSent === event.bytesTotal;
    if (!complete && previous !== undefined && at - previous < intervalMs) return false;
    lastSending.set(event.node, at);
    return true;
  };
}
