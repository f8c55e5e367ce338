/**
 * The GraphQL schema (SDL). Field names are the JSON names of the REST API (docs/design.md, Records and Interfaces).
 * Times are ms since the epoch and counters grow past 2^31, beyond GraphQL's 32-bit Int, so both
 * are Float (always whole numbers).
 */
import { ALERT_KINDS, INTERVALS } from '../../core/records.ts';
import type { LimitOptions } from '../params.ts';

/** Builds the SDL; `limit`'s default and bounds come from the server's limits. */
export function buildSchemaText(limits: LimitOptions): string {
  const intervals = INTERVALS.join(', ');
  const kinds = ALERT_KINDS.join(', ');
  const time = 'ms since the epoch (UTC), a whole number: Float because it exceeds 32 bits';
  const range = `
    "Inclusive lower bound, ${time}. With from, the first limit records from it."
    from: Float
    "Inclusive upper bound, ${time}. Without from, the last limit records up to it."
    to: Float
    "1 to ${limits.maxLimit}."
    limit: Int = ${limits.defaultLimit}`;
  const interval = `"One of ${intervals}; anything else is invalid_interval." interval: String = "1m"`;
  const symbol = `"Trimmed and upper-cased; must then match ^[A-Z0-9][A-Z0-9._:/-]{0,31}$ (else invalid_symbol)." symbol: String!`;

  return `
"""
Streamlines market data: the reads of the REST API under /api/v1 with the same names and the same
rules, plus live subscriptions (graphql-ws protocol "graphql-transport-ws" on this same path).
Errors carry extensions.code, the REST error code (invalid_parameter, invalid_range,
invalid_interval, invalid_kind, invalid_symbol, unknown_symbol, unauthorized, bad_request, internal).
Lists are ascending by ts.
"""
type Query {
  "Every symbol the store has seen, ascending by name (GET /api/v1/symbols)."
  symbols: [SymbolSummary!]
  "The last tick of the symbol in log order (GET /api/v1/latest/:symbol). unknown_symbol if never seen."
  latest(${symbol}): LatestTick
  "Accepted ticks with their moving averages (GET /api/v1/ticks/:symbol). unknown_symbol if never seen."
  ticks(${symbol}, ${range}): [Tick!]
  "Final candles, then the forming ones (final: false), merged by ts; limit applies to the merged list (GET /api/v1/candles/:symbol)."
  candles(${symbol}, ${interval}, ${range}): [Candle!]
  "One point per final candle (GET /api/v1/indicators/:symbol)."
  indicators(${symbol}, ${interval}, ${range}): [IndicatorPoint!]
  "Fired alerts, optionally of one symbol and kind (GET /api/v1/alerts). An unseen symbol gives an empty list."
  alerts(
    "Optional; normalised like every symbol." symbol: String,
    "Optional; one of ${kinds} (else invalid_kind)." kind: String,
    ${range}
  ): [Alert!]
  "Pipeline counters (GET /api/v1/stats)."
  stats: Stats
}

"""
Live messages, sent after the pipeline committed them to the store. A subscriber that reads too
slowly loses messages (counted on the server) rather than slowing the pipeline.
"""
type Subscription {
  "Every processed tick of the symbol. The symbol need not have traded yet."
  ticks(${symbol}): Tick!
  "Updates of the forming candle (final: false) and each candle as it becomes final."
  candles(${symbol}, ${interval}): Candle!
  "Every alert as it fires, optionally of one symbol and kind."
  alerts(
    "Optional; normalised like every symbol." symbol: String,
    "Optional; one of ${kinds} (else invalid_kind)." kind: String
  ): Alert!
}

type SymbolSummary {
  symbol: String!
  lastPrice: Float!
  "${time}."
  lastTs: Float!
}

type LatestTick {
  symbol: String!
  "Event time, ${time}."
  ts: Float!
  price: Float!
  size: Float!
  "Mean of the last 5 prices; null until 5 were seen."
  maShort: Float
  "Mean of the last 20 prices; null until 20 were seen."
  maLong: Float
  source: String!
}

type Tick {
  "Event time, ${time}."
  ts: Float!
  price: Float!
  size: Float!
  "The provider's trade id; null when it gave none."
  id: String
  "Mean of the last 5 prices; null until 5 were seen."
  maShort: Float
  "Mean of the last 20 prices; null until 20 were seen."
  maLong: Float
  "True when the tick's 1m bucket had already closed when it arrived: it entered no candle."
  late: Boolean!
}

type Candle {
  symbol: String!
  "One of ${intervals}."
  interval: String!
  "Bucket start, ${time}."
  ts: Float!
  open: Float!
  high: Float!
  low: Float!
  close: Float!
  volume: Float!
  trades: Int!
  "sum(price*size)/volume; null when volume is 0."
  vwap: Float
  "False while the window is still open."
  final: Boolean!
}

type IndicatorPoint {
  "Start of the final candle, ${time}."
  ts: Float!
  sma20: Float
  ema20: Float
  rsi14: Float
  bbUpper: Float
  bbMiddle: Float
  bbLower: Float
}

type Alert {
  "${time}."
  ts: Float!
  symbol: String!
  "One of ${kinds}."
  kind: String!
  price: Float!
  "The rule's threshold, for price_above and price_below."
  threshold: Float
  message: String!
}

"Counters are Float: they pass 2^31 in a long run."
type Stats {
  received: Float!
  accepted: Float!
  rejected: Float!
  "Rejected records per reason (invalid_json, invalid_symbol, ...)."
  rejectedByReason: [ReasonCount!]!
  duplicates: Float!
  late: Float!
  candlesClosed: Float!
  alertsFired: Float!
  "True once every bounded feed has ended and everything it produced is in the store."
  drained: Boolean!
  "Entries in the log (all partitions)."
  logEndOffset: Float!
  "Entries the processor has committed to the store."
  processedOffset: Float!
  feeds: [FeedStatus!]!
}

type ReasonCount {
  reason: String!
  count: Float!
}

type FeedStatus {
  name: String!
  type: String!
  "starting, running, ended, stopped or failed; a live feed while it runs: connecting, connected, reconnecting, failing or fatal."
  state: String!
  "Records read from the feed in this process."
  messages: Float!
  "${time}; null before the first record."
  lastMessageAt: Float
  error: String
  "Live feeds: whether the provider connection is open now."
  connected: Boolean
  "Live feeds: opens that followed a dropped connection."
  reconnects: Float
  "Live feeds: connection attempts that failed since the feed was last connected."
  failedAttempts: Float
  "Live feeds: why the feed is not connected (DNS failure, refused, TLS, HTTP status...); null while connected."
  cause: String
  "Live feeds: the kind of cause: dns, refused, tls, http, timeout, network, closed, stale or provider."
  causeKind: String
  "Live feeds: when it last connected, ${time}; null when it never has in this run."
  lastConnectedAt: Float
}
`;
}
