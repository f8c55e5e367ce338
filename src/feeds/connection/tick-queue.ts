/**
 * Bridges a live feed's callbacks (socket messages, library events) to `Feed.run`'s async iterable:
 * callbacks push raw tick records synchronously, and the consumer takes everything pending as one batch,
 * so a burst of trades crosses the stage boundary in one hop. Used by the IB feed, whose library calls back.
 */
import type { FeedBatch } from '../feed.ts';

export class TickQueue {
  #values: unknown[] = [];
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  /** Adds one raw tick record. */
  push(value: unknown): void {
    this.#values.push(value);
    this.#notify();
  }

  /** Ends the iteration with `error` once what is pending has been handed over. */
  fail(error: Error): void {
    this.#error ??= error;
    this.#notify();
  }

  /** Yields pending records as batches until `signal` aborts or `fail` is called. Live feeds keep no position. */
  async *batches(signal: AbortSignal): AsyncGenerator<FeedBatch> {
    const onAbort = (): void => this.#notify();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        if (this.#values.length > 0) {
          const values = this.#values;
          this.#values = [];
          yield { values, position: null };
          continue;
        }
        if (this.#error) throw this.#error;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
