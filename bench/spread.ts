/**
 * How the profiling scripts (agent-profile.ts, save-probe.ts) report a set of timings: the lower
 * median (of an even count, the smaller middle value, a time one run really took) with min and max.
 */
export const lowerMedian = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

export const spread = (xs: number[]) =>
  `${lowerMedian(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;
