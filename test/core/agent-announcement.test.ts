import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AGENT_MARKER,
  AnnouncementScanner,
  describePreamble,
  PREAMBLE_LIMIT,
  summarizePreamble,
} from "../../src/core/protocol/agent-announcement.js";

const announcement = (version: string) => Buffer.concat([AGENT_MARKER, Buffer.from(`${version}\n`)]);

test("the marker is found split across chunks, with what came before and after it", () => {
  const scanner = new AnnouncementScanner();
  const bytes = Buffer.concat([Buffer.from("hi\n"), announcement("2"), Buffer.from([0, 0, 0, 2, 123, 125])]);
  assert.equal(scanner.push(bytes.subarray(0, 10)).kind, "waiting");
  assert.equal(scanner.push(bytes.subarray(10, 20)).kind, "waiting");
  const found = scanner.push(bytes.subarray(20));
  assert.equal(found.kind, "announced");
  if (found.kind !== "announced") return;
  assert.equal(found.version, 2);
  assert.equal(found.preamble.toString(), "hi\n");
  assert.deepEqual([...found.rest], [0, 0, 0, 2, 123, 125]);
});

test("a marker without a version line is garbled; too much output before it overflows", () => {
  assert.equal(new AnnouncementScanner().push(announcement("two")).kind, "garbled");
  assert.equal(
    new AnnouncementScanner().push(Buffer.concat([AGENT_MARKER, Buffer.from("2222222222222222222")])).kind,
    "garbled",
  );
  const flood = new AnnouncementScanner();
  const line = Buffer.alloc(64 * 1024, "y");
  let kind = "waiting";
  for (let sent = 0; kind === "waiting" && sent <= PREAMBLE_LIMIT + line.length; sent += line.length)
    kind = flood.push(line).kind;
  assert.equal(kind, "overflow");
});

test("what the shell printed is described by its first line that says something", () => {
  const s = summarizePreamble(Buffer.from("\n\x1b[32m  Welcome\x1b[0m \x07\nquota ok\n"));
  assert.deepEqual(s, { bytes: 31, lines: 2, firstLine: "Welcome" });
  assert.equal(describePreamble(s), "printed 'Welcome' (and 1 more line(s), 31 B in all)");
  assert.equal(
    describePreamble(summarizePreamble(Buffer.from("\n \n\x07"))),
    "printed 4 byte(s) of blank or control characters",
  );
  const long = summarizePreamble(Buffer.alloc(5000, "x"));
  assert.equal(long.firstLine, `${"x".repeat(120)}...`);
  assert.equal(describePreamble(long), `printed '${"x".repeat(120)}...' (4.9 KiB)`);
});
