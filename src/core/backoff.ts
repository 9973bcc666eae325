/**
 * Retry delays for a node that keeps failing: exponential, capped, with jitter so a cluster of
 * workers that went down together does not reconnect in lockstep. Pure: `random` is passed in.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: the share of the delay that is randomized. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

export function retryDelayMs(
  attempt: number,
  random: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
): number {
  const exponent = Math.min(Math.max(0, attempt), 30);
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** exponent);
  const r = Math.min(Math.max(random, 0), 1);
  // Between (1 - jitter) * base and base: never longer than the cap, never zero.
  return Math.round(base * (1 - policy.jitter + policy.jitter * r));
}
