import type { ChildProcess } from "node:child_process";
import { AnnouncementScanner } from "../../src/core/protocol/agent-announcement.js";
import { localAgent } from "../fixtures/local-agent.js";

export type Reply = { ok: boolean; code?: string; message?: string; [key: string]: unknown };

/** One request frame: 4-byte big-endian length, then the JSON. */
export function frame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/**
 * The agent as a local process spoken to byte by byte: what is written goes to its stdin as is,
 * and every reply frame it sends is kept, so a test sees replies nobody asked for too.
 */
export function rawAgent(children: ChildProcess[]) {
  const { child } = localAgent();
  children.push(child);
  let buffer = Buffer.alloc(0);
  const replies: Reply[] = [];
  const waiting: ((r: Reply) => void)[] = [];
  // The frames follow the agent's announcement (src/core/protocol/agent-announcement.ts).
  let scanner: AnnouncementScanner | undefined = new AnnouncementScanner();
  child.stdout!.on("data", (data: Buffer) => {
    let chunk = data;
    if (scanner) {
      const found = scanner.push(chunk);
      if (found.kind !== "announced") return;
      scanner = undefined;
      chunk = found.rest;
    }
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 4 && buffer.length >= 4 + buffer.readUInt32BE(0)) {
      const length = buffer.readUInt32BE(0);
      const reply = JSON.parse(buffer.subarray(4, 4 + length).toString("utf8")) as Reply;
      buffer = buffer.subarray(4 + length);
      const w = waiting.shift();
      if (w) w(reply);
      else replies.push(reply);
    }
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    exited,
    write: (data: Buffer) => new Promise<void>((r) => child.stdin!.write(data, () => r())),
    next: (): Promise<Reply> => {
      const r = replies.shift();
      return r ? Promise.resolve(r) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}
