import assert from "node:assert/strict";
import { test } from "node:test";
import { clock24 } from "../../src/cli/watch-display.js";

test("the watch log's clock is 24-hour, whatever the locale", () => {
  assert.equal(clock24(new Date(2026, 0, 2, 15, 4, 5)), "15:04:05");
  assert.equal(clock24(new Date(2026, 0, 2, 0, 0, 9)), "00:00:09");
});
