/**
 * What the serve stage needs from the running pipeline beyond the store: counters, feed states, the
 * forming candles and the live stream, and the control actions of the control panel. The stages
 * produce these records and serve reads them, so they live here rather than in either: the embedded
 * pipeline implements the view in process, the distributed `serve` over Redis
 * (src/cache/remote-pipeline-view.ts).
 */
import type { Candle, Counters, Interval } from './records.ts';

export interface FeedStatus {
  name: string;
  type: string;
  state: 'starting' | 'running' | 'ended' | 'stopped' | 'failed';
  /** Records read from the feed in this process. */
  messages: number;
  lastMessageAt: number | null;
  error?: string;
  /** Live feeds: whether the provider connection is open now. */
  connected?: boolean;
  /** Live feeds: opens that followed a dropped connection. */
  reconnects?: number;
  /** Live feeds: trades fetched over REST to fill gaps after drops or restarts. */
  backfilled?: number;
  /** Live feeds: why the feed stopped for good (bad key, no entitlement, unknown symbol). */
  fatal?: string;
}

export interface Stats extends Counters {
  /** True once every bounded feed has ended and everything it produced is in the store. */
  drained: boolean;
  /** Entries in the log (all partitions) and how many the processor has committed to the store. */
  logEndOffset: number;
  processedOffset: number;
  feeds: FeedStatus[];
}

/** Live messages, as WebSocket clients receive them: `{channel, data}`. */
export type LiveListener = (channel: string, data: unknown) => void;

export interface PipelineView {
  stats(): Stats;
  /** Open windows of a symbol and interval, ascending by ts, `final: false`. */
  formingCandles(symbol: string, interval: Interval): Candle[];
  /**
   * Registers a listener for live messages on channels `ticks:SYM`, `candles:SYM:INTERVAL` and
   * `alerts`. Returns the function that removes it.
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
