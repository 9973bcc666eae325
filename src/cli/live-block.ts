/**
 * A block of status lines at the bottom of a terminal, redrawn in place: the shared part of the
 * live views of `push` and `watch`. `render` is asked for the lines (given the terminal's width)
 * each time the block is drawn.
 */
export class LiveBlock {
  private drawnLines = 0;
  private redrawTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly render: (width: number) => string[],
  ) {}

  /** Redraws within 100 ms: status changes come in bursts, one redraw serves the whole burst. */
  redrawSoon(): void {
    this.redrawTimer ??= setTimeout(() => {
      this.redrawTimer = undefined;
      this.redraw();
    }, 100);
  }

  /** Prints text that scrolls up above the block; the block is drawn again below it. */
  printAbove(text: string): void {
    this.clear();
    this.out.write(text);
    this.draw();
  }

  /** Stops redrawing; `clear` also removes the block, so what is printed next stands alone. */
  stop({ clear }: { clear: boolean }): void {
    if (this.redrawTimer) clearTimeout(this.redrawTimer);
    this.redrawTimer = undefined;
    if (clear) this.clear();
  }

  private redraw(): void {
    this.clear();
    this.draw();
  }

  private draw(): void {
    const lines = this.render(this.out.columns ?? 100);
    if (lines.length) this.out.write(`${lines.join("\n")}\n`);
    this.drawnLines = lines.length;
  }

  private clear(): void {
    if (this.drawnLines > 0) this.out.write(`\x1b[${this.drawnLines}A\x1b[J`);
    this.drawnLines = 0;
  }
}
