import type { DelayProxy } from "../test/harness/tcp-delay-proxy.js";

/**
 * What the leader sent: the curve puts a proxy with no delay (test/harness/tcp-delay-proxy.ts) in
 * front of every hop the leader talks to directly (every worker for flat pushes and the anchor,
 * the gateways for the tree), so it is read off the proxies it went through, the same way for
 * every tool (SSH's framing and handshakes included).
 */

/** Bytes sent toward the hops of `proxies` while `during` runs. */
export async function bytesUpDuring<T>(
  proxies: readonly DelayProxy[],
  during: () => Promise<T>,
): Promise<{ value: T; bytes: number }> {
  const sum = () => proxies.reduce((s, p) => s + p.bytesUp, 0);
  const before = sum();
  const value = await during();
  return { value, bytes: sum() - before };
}
