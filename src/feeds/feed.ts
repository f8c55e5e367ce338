/**
 * The feed stage: one adapter per provider. An adapter only maps what the provider sends onto raw
 * records; validation, normalisation and dedup are ingest's job (DESIGN §1).
 */

/** What a feed hands to ingest at once. */
export interface FeedBatch {
  /** Raw lines still to be parsed as JSON (a replay file). */
  lines?: string[];
  /** Records the adapter already decoded (live providers, the synthetic market). */
  values?: unknown[];
  /**
   * Where the feed stands after this batch, JSON-serialisable. Recorded in the log with what the batch
   * produced, and handed back on restart, so input is neither re-read nor skipped.
   */
  position: unknown;
}

export interface Feed {
  /** Unique within a config: names the feed's position in the log's producer state. */
  readonly name: string;
  readonly type: string;
  /** A bounded feed (a replay) ends; its end makes every open window final. */
  readonly bounded: boolean;
  /** The `source` of ticks whose record names none. */
  readonly defaultSource: string;
  /** Yields batches from `position` (undefined: from the start) until it ends or `signal` aborts. */
  run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch>;
  /** Progress of a bounded feed, for a terminal progress line. */
  progress?(): { done: number; total: number; unit: string };
  /** Symbols the feed trades or subscribes to now; feeds that can change them at run time also implement the two below. */
  symbols?(): string[];
  /** Adds a symbol while running (a live feed subscribes to it). `symbol` is already normalised. */
  addSymbol?(symbol: string): void;
  removeSymbol?(symbol: string): void;
  /** Connection health of a live feed, merged into its FeedStatus (see src/feeds/connection). */
  status?(): { connected?: boolean; reconnects?: number; backfilled?: number; fatal?: string | null };
}
