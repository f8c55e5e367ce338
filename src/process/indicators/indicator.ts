/**
 * The one shape every streaming indicator has (after trading-signals): one value in at a time, an
 * O(1) answer, `null` until warm, and a JSON-serialisable state for checkpoints.
 */
export interface Indicator<Result, State> {
  add(value: number): void;
  /** The current value, or null until enough values were added. */
  getResult(): Result | null;
  /** JSON-serialisable state; `restore` on a fresh instance continues bit-identically. */
  snapshot(): State;
  restore(state: State): void;
}
