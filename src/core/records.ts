/**
 * The records every stage shares (docs/design.md, Records). Pure types and constants, no I/O.
 */

/** The taker's side of a trade. */
export type Side = 'buy' | 'sell';

/** An accepted trade, as ingest writes it to the `price-ticks` topic. */
export interface Tick {
  source: string;
  /** Trimmed and upper-cased. */
  symbol: string;
  /** Event time, integer ms since the epoch (UTC). */
  ts: number;
  price: number;
  size: number;
  /** The provider's trade id, normalised to a string. */
  id?: string;
  side?: Side;
  /** Wall-clock ms at which ingest accepted the tick. */
  receivedAt: number;
}

/** A tick after processing: what the store keeps and `GET /ticks` serves. */
export interface ProcessedTick extends Tick {
  /** The tick's place in ingest order (its log offset in the embedded log): the order of acceptance. */
  seq: number;
  maShort: number | null;
  maLong: number | null;
  /** True when the tick's 1m bucket had already closed when it arrived: it enters no candle. */
  late: boolean;
}

export const INTERVALS = ['1m', '5m', '15m', '1h', '1d'] as const;
export type Interval = (typeof INTERVALS)[number];
export const INTERVAL_MS: Readonly<Record<Interval, number>> = {
  '1m': 60_000,
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '1d': 86_400_000,
};

export function isInterval(value: unknown): value is Interval {
  return typeof value === 'string' && (INTERVALS as readonly string[]).includes(value);
}

export interface Candle {
  symbol: string;
  interval: Interval;
  /** Bucket start, ms. */
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number;
  /** sum(price*size)/volume, null when volume is 0. */
  vwap: number | null;
  /** False while the window is still open. */
  final: boolean;
}

/** One per final candle, per symbol and interval. */
export interface IndicatorPoint {
  symbol: string;
  interval: Interval;
  ts: number;
  sma20: number | null;
  ema20: number | null;
  rsi14: number | null;
  bbUpper: number | null;
  bbMiddle: number | null;
  bbLower: number | null;
}

export const ALERT_KINDS = ['price_above', 'price_below', 'golden_cross', 'death_cross', 'anomaly'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface Alert {
  /** Increases in ingest order over the whole run (see ALERT_SEQ_STRIDE): orders alerts that share a ts. */
  seq: number;
  ts: number;
  symbol: string;
  kind: AlertKind;
  price: number;
  threshold?: number;
  message: string;
}

export const REJECT_REASONS = [
  'invalid_json',
  'not_object',
  'invalid_symbol',
  'invalid_ts',
  'invalid_price',
  'invalid_size',
  'invalid_id',
  /** A tick whose id is not a canonical integer, older than the dedup horizon (docs/design.md, Duplicates). */
  'too_old',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** A rejected input record, kept with its reason. */
export interface DeadLetter {
  /** The rejection entry's place in ingest order (its log offset in the embedded log). */
  seq: number;
  source: string;
  reason: RejectReason;
  /** Human-readable explanation, e.g. `price must be a finite number > 0, got "abc"`. */
  detail: string;
  /** The raw input (a line, or the JSON of an object), cut to 4 KiB. */
  raw: string;
  receivedAt: number;
}

/**
 * What ingest appends to the `price-ticks` topic. Everything the feeds produced is in the log, so
 * the processor derives every counter from it and the counters survive a crash with the data.
 */
export type IngestEntry = (
  | ({ kind: 'tick' } & Tick)
  | {
      kind: 'rejected';
      source: string;
      reason: RejectReason;
      detail: string;
      raw: string;
      receivedAt: number;
    }
  | { kind: 'duplicate'; source: string; symbol: string; id: string; receivedAt: number }
  /** Live feeds' wall clock: lets quiet symbols' windows close (docs/design.md, Rules), deterministically from the log. */
  | { kind: 'clock'; wallMs: number }
  /** A bounded feed (a replay) ended: the watermark of every symbol jumps to +infinity. */
  | { kind: 'end'; source: string }
) & {
  /**
   * The entry's place in ingest order over all partitions, stamped by a distributed `ingest`
   * (Kafka offsets are per partition and skip). Absent in the embedded log, whose offsets are it.
   */
  seq?: number;
};

/** The topic names of docs/design.md, The flow. */
export const TOPIC_TICKS = 'price-ticks';
export const TOPIC_ALERTS = 'alerts';

/** The store checkpoint the embedded processor writes (and readers of its counters read). */
export const PROCESSOR_CHECKPOINT = 'processor';

/** Pipeline counters, as `GET /api/v1/stats` reports them. */
export interface Counters {
  received: number;
  accepted: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  duplicates: number;
  late: number;
  candlesClosed: number;
  alertsFired: number;
}

/** All counters at zero. */
export function emptyCounters(): Counters {
  return {
    received: 0,
    accepted: 0,
    rejected: 0,
    rejectedByReason: {},
    duplicates: 0,
    late: 0,
    candlesClosed: 0,
    alertsFired: 0,
  };
}
