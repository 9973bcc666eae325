import { readdirSync, readFileSync } from "node:fs";
import { isMainThread, parentPort, Worker } from "node:worker_threads";

/**
 * The peak memory of a tool's whole process tree on the leader: every `intervalMs` the sum of the
 * resident set (VmRSS, from /proc/PID/statm) of the given processes and all their descendants
 * (found through /proc/PID/task/TID/children), the highest sum kept. Sampled in a worker thread, so
 * reading /proc never holds up the bench's own event loop (which forwards the counting proxies'
 * bytes). Shared pages (libraries, a fork's copy-on-write pages) count once per process, as `ps`
 * and `top` count them; a process that lives less than one interval may be missed, which is why
 * the curve also reports the largest single process's peak from `/usr/bin/time`.
 */

const PAGE_KB = 4;

export interface TreeMemory {
  /** Highest sum of VmRSS over the tree at one sample, MB. */
  peakSumMb: number;
  /** Most processes seen at one sample. */
  peakProcesses: number;
  samples: number;
}

function childrenOf(pid: number): number[] {
  const found: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return found;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" "))
        if (c.trim()) found.push(Number(c));
    } catch {
      // The thread or process ended while we looked.
    }
  }
  return found;
}

function rssKb(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]) * PAGE_KB;
  } catch {
    return 0;
  }
}

/**
 * One sample: the RSS summed over `roots` and their descendants, and how many processes; `skip`
 * are followed to their children but not counted (the `/usr/bin/time` wrapping a tool).
 */
export function treeRssKb(
  roots: readonly number[],
  skip: readonly number[] = [],
): { kb: number; processes: number } {
  const seen = new Set<number>();
  const queue = [...roots];
  let kb = 0;
  let processes = 0;
  while (queue.length > 0) {
    const pid = queue.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const rss = rssKb(pid);
    if (rss === 0) continue;
    if (!skip.includes(pid)) {
      kb += rss;
      processes++;
    }
    queue.push(...childrenOf(pid));
  }
  return { kb, processes };
}

type Message = { begin: number[]; skip: number[]; intervalMs: number } | { end: true };

if (!isMainThread && parentPort) {
  const port = parentPort;
  let timer: NodeJS.Timeout | undefined;
  let peak = { kb: 0, processes: 0, samples: 0 };
  port.on("message", (message: Message) => {
    if ("begin" in message) {
      peak = { kb: 0, processes: 0, samples: 0 };
      const { begin: roots, skip } = message;
      const sample = () => {
        const now = treeRssKb(roots, skip);
        peak.kb = Math.max(peak.kb, now.kb);
        peak.processes = Math.max(peak.processes, now.processes);
        peak.samples++;
      };
      sample();
      timer = setInterval(sample, message.intervalMs);
    } else {
      clearInterval(timer);
      port.postMessage({ peakSumMb: peak.kb / 1024, peakProcesses: peak.processes, samples: peak.samples });
    }
  });
}

/** One sampler thread, measuring one process tree at a time. */
export class RssSampler {
  private readonly worker = new Worker(new URL(import.meta.url));

  constructor(private readonly intervalMs = 100) {
    this.worker.unref();
  }

  /** Starts sampling `roots` and their descendants; `skip` are not counted themselves. */
  begin(roots: readonly number[], skip: readonly number[] = []): void {
    this.worker.postMessage({
      begin: [...roots],
      skip: [...skip],
      intervalMs: this.intervalMs,
    } satisfies Message);
  }

  end(): Promise<TreeMemory> {
    return new Promise((resolve) => {
      this.worker.once("message", (m: TreeMemory) => resolve(m));
      this.worker.postMessage({ end: true } satisfies Message);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
