/**
 * Splits a byte stream into whole lines for prefixed output, keeping the unfinished tail until
 * more arrives, so two nodes' output never interleaves inside one line.
 */
export class LineSplitter {
  private tail = "";
  private readonly decoder = new TextDecoder("utf-8");

  /** Whole lines completed by this chunk, without their newline. */
  push(chunk: Uint8Array): string[] {
    const text = this.tail + this.decoder.decode(chunk, { stream: true });
    const parts = text.split("\n");
    this.tail = parts.pop() ?? "";
    return parts;
  }

  /** The last line when the stream ended without a newline. */
  end(): string[] {
    const rest = this.tail + this.decoder.decode();
    this.tail = "";
    return rest.length > 0 ? [rest] : [];
  }
}
