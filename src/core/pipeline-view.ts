/**
 * What the serve stage needs from the running pipeline beyond the store: counters, feed states, the
 * forming candles and the live stream, and the control actions of the control panel. The stages
 * produce these records and serve reads them, so they live here rather than in either: the embedded
 * pipeline implements the view in process, the distributed `serve` over Redis
 * (src/cache/remote-pipeline-view.ts).
 */
import type { HealthEntry } from './health.ts';
import type { Candle, Counters, Interval } from './records.ts';

/**
 * A feed's state. Every feed starts `starting`; a bounded or local feed (replay, synthetic, backfill) is then
 * `running` until it `ended` (ran to its end), `stopped` (from the control panel or at shutdown) or `failed`.
 * A live feed, while it runs, shows its connection instead of `running`: `connecting` (first attempt under
 * way), `connected`, `reconnecting` (a connection that was up dropped; trying again), `failing` (attempts
 * fail, see `cause` and `failedAttempts`), or `fatal` (stopped for good: retrying cannot help).
 */
export type FeedState =
  | 'starting'
  | 'running'
  | 'ended'
  | 'stopped'
  | 'failed'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'failing'
  | 'fatal';

/** Live feed states: the feed is running and these say how its connection is. */
export const LIVE_FEED_STATES: readonly FeedState[] = [
  'connecting',
  'connected',
  'reconnecting',
  'failing',
  'fatal',
];

/**
 * What a cause is about: `dns` (the host does not resolve), `refused` (nothing listens on the port), `tls`
 * (handshake or certificate), `http` (the provider answered with an HTTP status), `timeout`, `network`
 * (reset, unreachable...), `closed` (the provider closed an open connection), `stale` (nothing received for
 * too long), `provider` (the provider's own message, e.g. a bad key).
 */
export type FeedCauseKind =
  | 'dns'
  | 'refused'
  | 'tls'
  | 'http'
  | 'timeout'
  | 'network'
  | 'closed'
  | 'stale'
  | 'provider';

export interface FeedStatus {
  name: string;
  type: string;
  /** See `FeedState`: a string, one of the values listed there. */
  state: FeedState;
  /** Records read from the feed in this process. */
  messages: number;
  lastMessageAt: number | null;
  /** When the feed's current run started (ms). */
  startedAt?: number;
  error?: string;
  /** Live feeds: whether the provider connection is open now. */
  connected?: boolean;
  /** Live feeds: opens that followed a dropped connection. */
  reconnects?: number;
  /**
   * Live feeds: why the feed is not `connected`, in words a user can act on ("DNS lookup failed for
   * stream.example.com (ENOTFOUND: the host does not resolve)", "connection refused by 127.0.0.1:9 (nothing
   * listens there)", "upgrade refused by host:443: HTTP 503 ..."). Unset while connected.
   */
  cause?: string;
  /** Live feeds: the kind of `cause` (see `FeedCauseKind`), for alerting and dashboards. */
  causeKind?: FeedCauseKind;
  /** Live feeds: connection attempts that failed since the feed was last connected (0 while connected). */
  failedAttempts?: number;
  /** Live feeds: when the feed last got connected (ms); null when it has never connected in this run. */
  lastConnectedAt?: number | null;
  /** Live feeds: trades fetched over REST to fill gaps after drops or restarts. */
  backfilled?: number;
  /** Live feeds: why the feed stopped for good (bad key, no entitlement, unknown symbol). */
  fatal?: string;
  /**
   * Set while ingest holds the feed back because the log cannot take its appends (`no_space`: the
   * disk is full); ingest retries and resumes by itself, losing nothing.
   */
  stalled?: { reason: 'no_space'; since: number; message: string };
}

export interface Stats extends Counters {
  /** True once every bounded feed has ended and everything it produced is in the store. */
  drained: boolean;
  /** Entries in the log (all partitions) and how many the processor has committed to the store. */
  logEndOffset: number;
  processedOffset: number;
  feeds: FeedStatus[];
  /** Every dependency that reported its health (core/health.ts): a degraded one names its cause. */
  health?: HealthEntry[];
  /** The configured sinks (issue #15); absent where the process runs none. */
  sinks?: SinkStatus[];
  /** Store retention's progress (docs/design.md, Retention and history), when it runs in this process. */
  retention?: RetentionProgress;
}

/** Where a sink stands (src/sinks): how far behind the processor's commits and why. */
export interface SinkStatus {
  name: string;
  type: string;
  /** The record kinds it takes: ticks, candles, indicators, alerts. */
  records: string[];
  /** connecting (first open), live (writing as commits arrive), catching_up (replaying the log), retrying (the target failed), stopped. */
  state: 'connecting' | 'live' | 'catching_up' | 'retrying' | 'stopped';
  /** Log entries whose output the target holds (sum over partitions). */
  deliveredOffset: number;
  /** Log entries the processor committed that the target does not hold yet. */
  lagEntries: number;
  /** Rows queued in memory for it. */
  backlogRows: number;
  rowsDelivered: number;
  batchesDelivered: number;
  /** Failed writes (each retried). */
  errors: number;
  /** Times the backlog overflowed and the sink switched to catching up from the log. */
  overflows: number;
  lastError: string | null;
  /** ms since the epoch. */
  lastDeliveredAt: number | null;
}

/** Where store retention stands: what it deleted up to, how much, and its longest step. */
export interface RetentionProgress {
  /** Every tick with ts < this is gone (undefined until the first step). */
  ticksDeletedBeforeMs?: number;
  /** Every candle, indicator point and alert with ts < this is gone. */
  candlesDeletedBeforeMs?: number;
  deletedRows: { ticks: number; candles: number; indicators: number; alerts: number; deadLetters: number };
  /** The longest one step held the store's write queue, ms. */
  longestStepMs: number;
}

/** Live messages, as WebSocket clients receive them: `{channel, data}`. */
export type LiveListener = (channel: string, data: unknown) => void;

/**
 * A live message's data that arrived already serialised, from another process (the Redis live bus):
 * `json` is its JSON text. A listener that only forwards it (the WebSocket hub) sends `json` as it
 * is, so a serve process parses nothing nobody watches; one that needs the object calls `value()`
 * (parsed once, then kept).
 */
export class LiveJson {
  readonly json: string;
  #value: unknown;
  #parsed = false;

  constructor(json: string) {
    this.json = json;
  }

  value(): unknown {
    if (!this.#parsed) {
      this.#value = JSON.parse(this.json);
      this.#parsed = true;
    }
    return this.#value;
  }
}

/** The data of a live message as an object, whether it came as one or as a LiveJson. */
export function liveValue(data: unknown): unknown {
  return data instanceof LiveJson ? data.value() : data;
}

export interface PipelineView {
  stats(): Stats;
  /** Open windows of a symbol and interval, ascending by ts, `final: false`. */
  formingCandles(symbol: string, interval: Interval): Candle[];
  /**
   * Registers a listener for live messages on channels `ticks:SYM`, `candles:SYM:INTERVAL` and
   * `alerts`. Returns the function that removes it. The data may be a LiveJson (it came serialised
   * from another process): `liveValue(data)` is the object either way.
   */
  onLive(listener: LiveListener): () => void;
}

/** Why a control action was refused; `code` is stable (see docs/errors.md). */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  readonly code: 'unknown_feed' | 'unsupported' | 'invalid_symbol' | 'conflict';

  constructor(code: ControlError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** Changes to the running pipeline (the control panel). Every call needs an `admin` key. */
export interface PipelineControl {
  /** Starts a stopped feed again from where it stopped. */
  startFeed(name: string): Promise<void>;
  /** Stops a running feed; what it already produced stays. */
  stopFeed(name: string): Promise<void>;
  /** Symbols a feed currently trades or subscribes to. */
  feedSymbols(name: string): string[];
  addSymbol(feedName: string, symbol: string): Promise<void>;
  removeSymbol(feedName: string, symbol: string): Promise<void>;
}
