/**
 * What the serve stage needs from the running pipeline beyond the store: counters, the forming
 * candles and the live stream. The embedded runner implements it in process; a distributed
 * `serve` will implement it over Redis.
 */
import type { Candle, Counters, Interval } from '../core/records.ts';

export interface FeedStatus {
  name: string;
  type: string;
  state: 'starting' | 'running' | 'ended' | 'stopped' | 'failed';
  /** Records read from the feed in this process. */
  messages: number;
  lastMessageAt: number | null;
  error?: string;
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
