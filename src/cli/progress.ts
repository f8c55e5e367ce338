/**
 * A one-line progress display for long work (a replay) on a terminal; silent when the output is not
 * a terminal, so logs and CI stay clean. Small enough not to warrant a dependency.
 */
export interface ProgressSource {
  /** Units done and in all, and extra text such as a rate. */
  read(): { done: number; total: number; text: string };
}

export class ProgressLine {
  readonly #stream: NodeJS.WriteStream;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #source: ProgressSource;
  #lastLength = 0;

  constructor(source: ProgressSource, stream: NodeJS.WriteStream = process.stderr, intervalMs = 250) {
    this.#stream = stream;
    this.#source = source;
    this.#timer = stream.isTTY ? setInterval(() => this.#draw(), intervalMs) : undefined;
    this.#timer?.unref();
  }

  /** Draws the final state and moves to a new line. */
  finish(): void {
    if (!this.#timer) return;
    clearInterval(this.#timer);
    this.#draw();
    this.#stream.write('\n');
  }

  #draw(): void {
    const { done, total, text } = this.#source.read();
    const fraction = total > 0 ? Math.min(1, done / total) : 0;
    const width = 24;
    const filled = Math.round(fraction * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(1).padStart(5)}% ${text}`;
    const pad = this.#lastLength > line.length ? ' '.repeat(this.#lastLength - line.length) : '';
    this.#lastLength = line.length;
    this.#stream.write(`\r${line}${pad}`);
  }
}
