import type { PushEvent } from "../push/push.js";

/** Output helpers: stdout carries results (JSON when asked), stderr carries progress and warnings. */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function isInteractive(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && process.env.CI !== "true" && process.env.TERM !== "dumb";
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A one-line live count on a terminal; silent when piped, so the summary alone is parseable. */
export function progressReporter(total: number): ((event: PushEvent) => void) | undefined {
  if (!isInteractive()) return undefined;
  let done = 0;
  let failed = 0;
  return (event) => {
    if (event.type === "node-done") done++;
    else if (event.type === "node-failed") failed++;
    else return;
    process.stderr.write(`\r\x1b[K${done + failed}/${total} workers  (${failed} failed)`);
    if (done + failed === total) process.stderr.write("\r\x1b[K");
  };
}
