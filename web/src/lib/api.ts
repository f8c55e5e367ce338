/** The REST API as the dashboard reads it: typed fetch helpers over /api/v1 (see README, API). */

// The records are the pipeline's own (type-only for the store shapes, so nothing server-side is bundled).
export {
  ALERT_KINDS,
  type Candle,
  INTERVAL_MS,
  INTERVALS,
  type Interval,
} from '../../../src/core/records.ts';
export type { StoredTick, SymbolSummary } from '../../../src/store/store.ts';

import type { HealthEntry } from '../../../src/core/health.ts';
import type { SinkStatus } from '../../../src/core/pipeline-view.ts';
import type { Candle, Interval } from '../../../src/core/records.ts';
import type { StoredTick, SymbolSummary } from '../../../src/store/store.ts';

/** What the `ticks:SYM` channel carries. */
export interface LiveTick extends StoredTick {
  symbol: string;
}

export interface IndicatorPoint {
  ts: number;
  sma20: number | null;
  ema20: number | null;
  rsi14: number | null;
  bbUpper: number | null;
  bbMiddle: number | null;
  bbLower: number | null;
}

export interface Alert {
  ts: number;
  symbol: string;
  kind: string;
  price: number;
  threshold?: number;
  message: string;
}

/**
 * A feed as /api/v1/stats reports it. `state` and `cause` are shown as the API words them (the set
 * of states grows with the feeds: connecting, connected, reconnecting, failing, fatal...).
 */
export interface FeedStatus {
  name: string;
  type: string;
  state: string;
  messages: number;
  lastMessageAt: number | null;
  reconnects?: number;
  /** Why the feed is not delivering: DNS failure, refused, TLS, an HTTP status... */
  cause?: string;
  failedAttempts?: number;
  error?: string;
  fatal?: string;
  connected?: boolean;
}

export interface FeedInfo extends FeedStatus {
  symbols: string[];
}

export interface Stats {
  received: number;
  accepted: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  duplicates: number;
  late: number;
  candlesClosed: number;
  alertsFired: number;
  drained: boolean;
  logEndOffset: number;
  processedOffset: number;
  feeds: FeedStatus[];
  /** Configured sinks (InfluxDB, Cassandra, webhooks); absent when there are none. */
  sinks?: SinkStatus[];
  /** Every dependency that reported its health; a degraded one is also a failed check of `/ready`. */
  health?: HealthEntry[];
}

export interface DeadLetter {
  seq: number;
  source: string;
  reason: string;
  detail: string;
  raw: string;
  receivedAt: number;
}

/** An `{error: {code, message}}` answer. */
export class ApiFailure extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(path, init);
  const body = (await response.json().catch(() => null)) as
    | (T & { error?: { code: string; message: string } })
    | null;
  if (!response.ok) {
    throw new ApiFailure(
      response.status,
      body?.error?.code ?? 'http_error',
      body?.error?.message ?? `${response.status} ${response.statusText}`,
    );
  }
  return body as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const api = {
  symbols: () => request<{ symbols: SymbolSummary[] }>('/api/v1/symbols').then((r) => r.symbols),
  candles: (symbol: string, interval: Interval, range: { from?: number; to?: number; limit?: number } = {}) =>
    request<{ candles: Candle[] }>(
      `/api/v1/candles/${encodeURIComponent(symbol)}${query({ interval, ...range })}`,
    ).then((r) => r.candles),
  ticks: (symbol: string, range: { from?: number; to?: number; limit?: number } = {}) =>
    request<{ ticks: StoredTick[] }>(`/api/v1/ticks/${encodeURIComponent(symbol)}${query(range)}`).then(
      (r) => r.ticks,
    ),
  indicators: (symbol: string, interval: Interval, limit: number) =>
    request<{ points: IndicatorPoint[] }>(
      `/api/v1/indicators/${encodeURIComponent(symbol)}${query({ interval, limit })}`,
    ).then((r) => r.points),
  alerts: (filter: { symbol?: string; kind?: string; from?: number; to?: number; limit?: number }) =>
    request<{ alerts: Alert[] }>(`/api/v1/alerts${query(filter)}`).then((r) => r.alerts),
  stats: () => request<Stats>('/api/v1/stats'),
  deadLetters: (limit: number) =>
    request<{ deadLetters: DeadLetter[] }>(`/api/v1/dead-letters${query({ limit })}`).then(
      (r) => r.deadLetters,
    ),
  feeds: () => request<{ feeds: FeedInfo[] }>('/api/v1/feeds').then((r) => r.feeds),
  /** A control action; needs the admin key. */
  control: (method: 'POST' | 'DELETE', path: string, key: string, body?: unknown) =>
    request<{ ok: true }>(path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
};

/** The CSV export URL of a symbol's ticks or candles over a range. */
export function exportUrl(
  kind: 'ticks' | 'candles',
  symbol: string,
  range: { from?: number; to?: number; interval?: Interval },
): string {
  const params = kind === 'candles' ? range : { from: range.from, to: range.to };
  return `/api/v1/export/${kind}/${encodeURIComponent(symbol)}${query(params)}`;
}
