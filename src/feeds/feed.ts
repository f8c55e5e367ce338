/**
 * The feed stage: one adapter per provider. An adapter only maps what the provider sends onto raw
 * records; validation, normalisation and dedup are ingest's job (docs/design.md, The flow).
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
  /** Connection health of a live feed, merged into its FeedStatus by ingest (see src/feeds/connection). */
  status?(): FeedHealth;
}

/**
 * What a live feed says about its connection. `state` is one of `connecting` (the first attempt is under
 * way), `connected`, `reconnecting` (a connection that was up dropped), `failing` (attempts keep failing),
 * `fatal` (stopped for good), or `idle`/`stopped` around a run; `cause` says why it is not connected, in
 * words a user can act on, and `causeKind` classifies it (dns, refused, tls, http, timeout, network, closed,
 * stale, provider).
 */
export interface FeedHealth {
  state?: string;
  connected?: boolean;
  reconnects?: number;
  /** Connection attempts that failed since the feed was last connected. */
  failedAttempts?: number;
  cause?: string;
  causeKind?: string;
  /** When the feed last got connected (ms); null: never in this run. */
  lastConnectedAt?: number | null;
  backfilled?: number;
  /** Provider messages that could not be used (counted, never thrown). */
  malformed?: number;
  fatal?: string | null;
}
