/**
 * Collects items between animation frames and hands them over once per frame, so a burst of 2 000
 * ticks a second costs one redraw per frame instead of one per tick.
 */
export class FrameBatch<T> {
  #items: T[] = [];
  #scheduled = 0;
  readonly #flush: (items: T[]) => void;

  constructor(flush: (items: T[]) => void) {
    this.#flush = flush;
  }

  push(item: T): void {
    this.#items.push(item);
    if (this.#scheduled === 0) this.#scheduled = requestAnimationFrame(this.#run);
  }

  readonly #run = (): void => {
    this.#scheduled = 0;
    const items = this.#items;
    this.#items = [];
    if (items.length > 0) this.#flush(items);
  };

  cancel(): void {
    if (this.#scheduled !== 0) cancelAnimationFrame(this.#scheduled);
    this.#scheduled = 0;
    this.#items = [];
  }
}
