import assert from "node:assert/strict";
import { test } from "node:test";
import { LiveBlock } from "../../src/cli/live-block.js";

function terminal(columns: number) {
  const written: string[] = [];
  const out = { columns, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  return { out, written };
}

test("text printed above the block scrolls up and the block is drawn again below it", () => {
  const { out, written } = terminal(42);
  let lines = ["w1  syncing", "w2  in-sync"];
  const widths: number[] = [];
  const block = new LiveBlock(out, (width) => {
    widths.push(width);
    return lines;
  });
  block.printAbove("release r1\n");
  lines = ["w1  in-sync"];
  block.printAbove("release r2\n");
  assert.deepEqual(written, [
    "release r1\n",
    "w1  syncing\nw2  in-sync\n",
    "\x1b[2A\x1b[J",
    "release r2\n",
    "w1  in-sync\n",
  ]);
  assert.deepEqual(widths, [42, 42]);
  block.stop({ clear: true });
  assert.equal(written.at(-1), "\x1b[1A\x1b[J");
});

test("a burst of changes is drawn once, and a stopped block is neither redrawn nor cleared unless asked", async () => {
  const { out, written } = terminal(80);
  let renders = 0;
  const block = new LiveBlock(out, () => {
    renders++;
    return ["w1  sending"];
  });
  for (let i = 0; i < 50; i++) block.redrawSoon();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(renders, 1);
  assert.deepEqual(written, ["w1  sending\n"]);
  block.redrawSoon();
  block.stop({ clear: false });
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(renders, 1);
  assert.deepEqual(written, ["w1  sending\n"]);
});
