/**
 * The framing on a daemon client's unix socket: one remote stream per socket, whose stdin, stdout,
 * stderr, exit status and window size travel as typed frames (1 type byte, 4-byte big-endian
 * length, body), so stderr stays apart from stdout and the end of each is known.
 */

export const Frame = {
  /** client → daemon: the JSON request that opens the stream; daemon → client: the JSON answer. */
  open: 1,
  stdin: 2,
  stdinEnd: 3,
  /** client → daemon: JSON {rows, cols} of the terminal (ssh's PTY). */
  window: 4,
  stdout: 5,
  stderr: 6,
  /** daemon → client: JSON {code, signal} of the remote command. */
  exit: 7,
  /** daemon → client: JSON {message}; the stream failed and the socket closes next. */
  error: 8,
} as const;

export type FrameType = (typeof Frame)[keyof typeof Frame];

const HEADER = 5;
// Larger frames are refused: nothing the daemon or a client writes comes near it.
const MAX_BODY = 64 * 1024 * 1024;

export function encodeFrame(type: FrameType, body: Uint8Array | string = new Uint8Array(0)): Buffer {
  const data = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return Buffer.concat([frameHeader(type, data.length), data]);
}

/** A frame's header alone: a large body can then be written after it as it is, without a copy. */
export function frameHeader(type: FrameType, bodyLength: number): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(bodyLength, 1);
  return header;
}

export function encodeJsonFrame(type: FrameType, value: unknown): Buffer {
  return encodeFrame(type, JSON.stringify(value));
}

/** Cuts a byte stream into whole frames, keeping the unfinished tail until more arrives. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { type: number; body: Buffer }[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: { type: number; body: Buffer }[] = [];
    while (this.pending.length >= HEADER) {
      const length = this.pending.readUInt32BE(1);
      if (length > MAX_BODY) throw new Error(`a frame of ${length} bytes is over the limit of ${MAX_BODY}`);
      if (this.pending.length < HEADER + length) break;
      frames.push({
        type: this.pending.readUInt8(0),
        body: this.pending.subarray(HEADER, HEADER + length),
      });
      this.pending = this.pending.subarray(HEADER + length);
    }
    return frames;
  }

  /** Bytes of an unfinished frame: a stream that ends with some was cut. */
  get buffered(): number {
    return this.pending.length;
  }
}
