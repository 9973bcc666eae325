import assert from "node:assert/strict";
import { test } from "node:test";
import { clock24, WatchDisplay } from "../../src/cli/watch-display.js";

test("the watch log's clock is 24-hour, whatever the locale", () => {
  assert.equal(clock24(new Date(2026, 0, 2, 15, 4, 5)), "15:04:05");
  assert.equal(clock24(new Date(2026, 0, 2, 0, 0, 9)), "00:00:09");
});

/** A terminal that records what is written to it (the block's cursor moves stripped). */
function fakeTerminal() {
  let written = "";
  const out = {
    columns: 200,
    write(text: string) {
      written += text;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { out, text: () => written.replace(/\x1b\[\d*[AJ]/g, "") };
}

test("the command's output is prefixed line by line, with nothing a terminal would act on", () => {
  const term = fakeTerminal();
  const display = new WatchDisplay(term.out);
  display.handle({
    type: "on-synced-output",
    release: "abc",
    stream: "stdout",
    lines: ["\x1b[31mred\x1b[0m and \x1b[2Kcleared", "progress\r 50%\r100%"],
  });
  display.handle({
    type: "on-synced-done",
    release: "abc",
    ok: false,
    code: 3,
    signal: null,
    ms: 12,
    stderrTail: ["toil: the job store is locked"],
  });
  display.close();
  const lines = term.text().split("\n");
  assert.match(lines[0]!, /^\d\d:\d\d:\d\d on-synced \| red and cleared$/);
  assert.match(lines[1]!, /^\d\d:\d\d:\d\d on-synced \| progress 50%100%$/);
  assert.match(
    term.text(),
    /on-synced: FAILED for release abc \(exit 3\); watch goes on; its last stderr lines:\n {2}toil: the job store is locked\n/,
  );
});

test("nodes that left stay in the block as left, the five most recent only", () => {
  const term = fakeTerminal();
  const display = new WatchDisplay(term.out);
  for (let i = 1; i <= 7; i++)
    display.handle({ type: "node-phase", node: `n${i}`, phase: "in-sync", release: "r1" });
  for (let i = 1; i <= 6; i++) display.handle({ type: "node-left", node: `n${i}`, source: "workers.slurm" });
  display.close();
  const text = term.text();
  assert.match(text, /n6 left \(no longer listed by workers\.slurm\)\n/);
  // The block drawn last: n7 still in sync, n2..n6 left, n1 forgotten.
  const block = text.slice(text.lastIndexOf("n6 left (no longer")).split("\n").slice(1, -1);
  assert.deepEqual(
    block.map((l) => l.split(/\s+/).slice(0, 2).join(" ")),
    ["n7 in-sync", "n2 left", "n3 left", "n4 left", "n5 left", "n6 left"],
  );
});
