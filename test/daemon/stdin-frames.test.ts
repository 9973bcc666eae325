import assert from "node:assert/strict";
import { test } from "node:test";
import { Frame, FrameDecoder } from "../../src/core/daemon/stream-mux.js";
import { writeStdin } from "../../src/daemon/client.js";

test("stdin for a held agent: each slice follows its header as a view of the caller's buffer, never a copy", () => {
  const archive = Buffer.alloc(2.5 * 1024 * 1024, 7);
  const writes: Buffer[] = [];
  let done = false;
  const socket = {
    write(data: Buffer, cb?: () => void) {
      writes.push(data);
      cb?.();
      return true;
    },
  };
  writeStdin(socket as never, archive, () => {
    done = true;
  });
  assert.ok(done, "the caller is told once the last slice is written");
  const bodies = writes.filter((w) => w.length > 5);
  assert.ok(bodies.length >= 3);
  for (const body of bodies) assert.equal(body.buffer, archive.buffer, "a view of the archive, not a copy");
  const frames: Buffer[] = [];
  const decoder = new FrameDecoder();
  for (const w of writes) for (const f of decoder.push(w)) if (f.type === Frame.stdin) frames.push(f.body);
  assert.deepEqual(Buffer.concat(frames), archive);
});
