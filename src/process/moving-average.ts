/** Window lengths of the per-tick moving averages (docs/design.md, Rules). */
export const SHORT_WINDOW = 5;
export const LONG_WINDOW = 20;

/**
 * The per-tick moving averages of one symbol: `short` = mean of the last 5 prices, `long` = of the
 * last 20, null until that many were seen. Each mean is summed oldest first over its window (not a
 * running sum), so it matches a straightforward reference to the last bit. Both sums run in one loop:
 * they are independent chains of additions, so the CPU overlaps them.
 */
export class TickMovingAverages {
  /** Mirrored ring (slot i and i + 20 hold the same price): the last 20 prices are contiguous. */
  private readonly prices = new Float64Array(2 * LONG_WINDOW);
  private next = 0;
  private seen = 0;
  /** Mean of the last 5 prices after the latest `add`, or null. */
  short: number | null = null;
  /** Mean of the last 20 prices after the latest `add`, or null. */
  long: number | null = null;

  add(price: number): void {
    const prices = this.prices;
    const slot = this.next;
    prices[slot] = price;
    prices[slot + LONG_WINDOW] = price;
    const next = slot + 1 === LONG_WINDOW ? 0 : slot + 1;
    this.next = next;
    const end = next + LONG_WINDOW;
    if (this.seen < LONG_WINDOW) {
      this.seen++;
      if (this.seen < SHORT_WINDOW) return;
      let shortSum = 0;
      for (let i = end - SHORT_WINDOW; i < end; i++) shortSum += prices[i]!;
      this.short = shortSum / SHORT_WINDOW;
      if (this.seen < LONG_WINDOW) return;
    }
    let longSum = 0;
    let shortSum = 0;
    for (let i = end - LONG_WINDOW; i < end - SHORT_WINDOW; i++) longSum += prices[i]!;
    for (let i = end - SHORT_WINDOW; i < end; i++) {
      const value = prices[i]!;
      longSum += value;
      shortSum += value;
    }
    this.short = shortSum / SHORT_WINDOW;
    this.long = longSum / LONG_WINDOW;
  }

  /** The last (up to) 20 prices, oldest first. */
  snapshot(): number[] {
    const end = this.next + LONG_WINDOW;
    return Array.from(this.prices.subarray(end - this.seen, end));
  }

  restore(prices: readonly number[]): void {
    this.next = 0;
    this.seen = 0;
    this.short = null;
    this.long = null;
    for (const price of prices.slice(-LONG_WINDOW)) this.add(price);
  }
}
