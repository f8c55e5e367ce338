/**
 * The last `capacity` values of a stream, kept in a mirrored ring (slot i and slot i + capacity hold
 * the same value) so that the newest n values are always contiguous: a window sum is one forward
 * loop, oldest first, with no wrap-around and no allocation.
 */
export class RollingWindow {
  readonly capacity: number;
  private readonly values: Float64Array;
  /** Slot the next value goes to, in [0, capacity). */
  private next = 0;
  private held = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.values = new Float64Array(capacity * 2);
  }

  /** How many values are held: min(values pushed, capacity). */
  get count(): number {
    return this.held;
  }

  push(value: number): void {
    const slot = this.next;
    this.values[slot] = value;
    this.values[slot + this.capacity] = value;
    this.next = slot + 1 === this.capacity ? 0 : slot + 1;
    if (this.held < this.capacity) this.held++;
  }

  /**
   * Sum of the newest `n` values (n <= count), added oldest to newest from 0, so it is bit-identical
   * to a straightforward `values.slice(-n).reduce((a, b) => a + b, 0)`; a running sum would drift.
   */
  sumLast(n: number): number {
    const end = this.next + this.capacity;
    let sum = 0;
    for (let i = end - n; i < end; i++) sum += this.values[i]!;
    return sum;
  }

  /** Sum of (value - center)^2 over the newest `n` values, oldest first: the second pass of a variance. */
  squaredDeviationSumLast(n: number, center: number): number {
    const end = this.next + this.capacity;
    let sum = 0;
    for (let i = end - n; i < end; i++) {
      const deviation = this.values[i]! - center;
      sum += deviation * deviation;
    }
    return sum;
  }

  /** The held values, oldest first (a fresh array). */
  toArray(): number[] {
    const end = this.next + this.capacity;
    const result: number[] = [];
    for (let i = end - this.held; i < end; i++) result.push(this.values[i]!);
    return result;
  }

  clear(): void {
    this.next = 0;
    this.held = 0;
  }
}
