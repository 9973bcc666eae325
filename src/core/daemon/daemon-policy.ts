/**
 * When the daemon goes away and when it distrusts a held connection: pure decisions on times the
 * daemon measures (milliseconds), so they are tested without waiting.
 */

/** As long as OpenSSH's ControlPersist is commonly set: long enough to span a working session's pauses. */
export const DEFAULT_IDLE_SECONDS = 600;

/** A connection unused this long is probed before it is handed out: it may have died quietly. */
export const PROBE_AFTER_MS = 20_000;

/** Wall-clock time running this far ahead of the monotonic clock means the machine slept. */
export const SUSPEND_GAP_MS = 5_000;

/** Nothing open and nothing done for the idle period: the daemon exits. */
export function idleExpired(state: {
  openStreams: number;
  lastActivityMs: number;
  nowMs: number;
  idleMs: number;
}): boolean {
  return state.openStreams === 0 && state.nowMs - state.lastActivityMs >= state.idleMs;
}

/**
 * Whether the clock readings of two ticks show a suspend: the wall clock counts the time asleep,
 * the monotonic clock (CLOCK_MONOTONIC) does not.
 */
export function sleptBetween(wallDeltaMs: number, monotonicDeltaMs: number): boolean {
  return wallDeltaMs - monotonicDeltaMs >= SUSPEND_GAP_MS;
}

/** A held connection is probed when it has been quiet a while or the machine slept since it was last proven alive. */
export function needsProbe(state: { lastAliveMs: number; nowMs: number; sleptSinceAlive: boolean }): boolean {
  return state.sleptSinceAlive || state.nowMs - state.lastAliveMs >= PROBE_AFTER_MS;
}
