/**
 * The sink stage's one interface: a destination outside Streamlines (InfluxDB, Cassandra, a webhook)
 * that receives what the processor committed. Implementations: `influxdb`, `cassandra`, `webhook`;
 * every one passes `conformance.ts`. The stage (`sink-stage.ts`) feeds each sink in commit order,
 * keeps its checkpoint and retries; a sink only has to write a batch idempotently.
 */
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../core/records.ts';

/** What a sink can be given, one per record type of docs/design.md, Records (the names are the config's `records`). */
export const SINK_RECORD_KINDS = ['ticks', 'candles', 'indicators', 'alerts'] as const;
export type SinkRecordKind = (typeof SINK_RECORD_KINDS)[number];

/** Records of one or more committed processor batches, in commit order (each list ascending by seq/ts). */
export interface SinkBatch {
  ticks: readonly ProcessedTick[];
  /** Final candles only, as the store holds them. */
  candles: readonly Candle[];
  indicators: readonly IndicatorPoint[];
  alerts: readonly Alert[];
}

export interface Sink {
  /** The config's `type`. */
  readonly type: string;
  /** The record kinds this sink takes; the stage passes empty lists for the others. */
  readonly records: readonly SinkRecordKind[];
  /** Connects and creates what is missing on the target (database, keyspace, tables). */
  open(): Promise<void>;
  /**
   * Writes a batch. Must be idempotent: writing the same records again (a retry, or a re-delivery
   * after a crash) leaves the target as after one write, because every row has a deterministic key.
   * Rejects when the target did not take all of it; the stage retries the whole batch.
   */
  write(batch: SinkBatch): Promise<void>;
  close(): Promise<void>;
}

/** A failed write, with a stable code for logs, metrics and `lastError`. */
export class SinkError extends Error {
  override readonly name = 'SinkError';
  /** `unreachable` (network, timeout), `rejected` (the target refused: 4xx), `server` (5xx, 429). */
  readonly code: 'unreachable' | 'rejected' | 'server';
  /** How long the target asked to be left alone (HTTP Retry-After), ms. */
  readonly retryAfterMs: number | undefined;

  constructor(
    code: SinkError['code'],
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options);
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** An empty batch. */
export function emptySinkBatch(): SinkBatch {
  return { ticks: [], candles: [], indicators: [], alerts: [] };
}

/** The rows of a batch, over every kind. */
export function batchRows(batch: SinkBatch): number {
  return batch.ticks.length + batch.candles.length + batch.indicators.length + batch.alerts.length;
}

/** The batch with only the kinds a sink takes (the others empty). */
export function selectRecords(batch: SinkBatch, kinds: readonly SinkRecordKind[]): SinkBatch {
  return {
    ticks: kinds.includes('ticks') ? batch.ticks : [],
    candles: kinds.includes('candles') ? batch.candles : [],
    indicators: kinds.includes('indicators') ? batch.indicators : [],
    alerts: kinds.includes('alerts') ? batch.alerts : [],
  };
}

/** UTC day (YYYY-MM-DD) of an epoch ms: the partition of a row in day-partitioned targets. */
export function utcDay(tsMs: number): string {
  return new Date(tsMs - (tsMs % 86_400_000)).toISOString().slice(0, 10);
}
