import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { keepExitForLateListeners } from "../../src/transport/late-exit.js";

/**
 * A command that ends at once can have its exit status in the same read as the channel's opening:
 * ssh2 emits "exit" before whoever awaited the channel has attached a listener. Found in CI:
 * `exec` through a direct connection reported status null for a command that exited 3.
 */

test("an exit emitted before anyone listens reaches a listener added later, before the channel closes", async () => {
  const channel = new EventEmitter();
  keepExitForLateListeners(channel);
  channel.emit("exit", 3, undefined);
  const seen: unknown[] = [];
  channel.on("exit", (code: unknown, signal: unknown) => seen.push(["exit", code, signal]));
  channel.on("close", () => seen.push(["close"]));
  setImmediate(() => channel.emit("close"));
  await new Promise((resolve) => channel.once("close", resolve));
  assert.deepEqual(seen, [["exit", 3, undefined], ["close"]]);
});

test("a listener there in time hears the exit once; one added with once() after it hears it too", async () => {
  const channel = new EventEmitter();
  keepExitForLateListeners(channel);
  const early: unknown[] = [];
  channel.on("exit", (code: unknown) => early.push(code));
  channel.emit("exit", null, "TERM");
  const late: unknown[] = [];
  channel.once("exit", (code: unknown, signal: unknown) => late.push([code, signal]));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(early, [null]);
  assert.deepEqual(late, [[null, "TERM"]]);
});

test("before the exit, a listener is only called by the exit itself", async () => {
  const channel = new EventEmitter();
  keepExitForLateListeners(channel);
  const seen: unknown[] = [];
  channel.on("exit", (code: unknown) => seen.push(code));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(seen, []);
  channel.emit("exit", 0);
  assert.deepEqual(seen, [0]);
});
