import type { EventEmitter } from "node:events";

/**
 * ssh2 emits a channel's "exit" straight from its packet parser: a command that ends at once can
 * have its exit status in the same read as the channel's opening, and so emit it before whoever
 * awaited the channel has resumed and attached a listener (`exec` reported status null under
 * load). This remembers the exit and gives it to listeners added later, on the next tick: before
 * the channel's "close", which waits for its output to be read.
 */
export function keepExitForLateListeners(channel: EventEmitter): void {
  let exit: unknown[] | undefined;
  channel.once("exit", (...args: unknown[]) => {
    exit = args;
  });
  channel.on("newListener", (event: string | symbol, listener: (...args: unknown[]) => void) => {
    if (event !== "exit" || exit === undefined) return;
    const args = exit;
    process.nextTick(() => listener(...args));
  });
}
