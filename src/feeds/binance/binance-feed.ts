/**
 * `binance`: Binance spot aggregate trades (`<symbol>@aggTrade`), no key needed. Aggregate trades rather
 * than raw trades because their ids are what the REST history (`GET /api/v3/aggTrades`) pages by, so a gap
 * after a drop is filled with the very same ids and ingest's dedup drops the overlap. `m` true means the buyer
 * was the maker, so the taker sold. Prices and sizes arrive as decimal strings and are stored as JS floats,
 * which is what the tick schema holds.
 */
import { z } from 'zod';
import { feedNameField, feedSymbolsField } from '../connection/feed-config.ts';
import {
  decodeJson,
  type HistoryRequest,
  type LiveProvider,
  LiveTradeFeed,
  type MessageSink,
  type ProviderConnectionOptions,
  type RawTrade,
  type TradePages,
} from '../connection/live-trade-feed.ts';
import { RestClient } from '../connection/rest.ts';
import { defaultUpgradeClassifier, type WsConnectionOptions } from '../connection/ws-connection.ts';

export const binanceFeedSchema = z.strictObject({
  type: z.literal('binance'),
  name: feedNameField('binance'),
  symbols: feedSymbolsField('Symbols as Binance writes them, e.g. btcusdt (default: top-level `symbols`).'),
  url: z
    .string()
    .url()
    .default('wss://stream.binance.com:9443')
    .describe(
      'Streaming base URL; `/ws` is appended (market-data-only host: wss://data-stream.binance.vision).',
    ),
  restUrl: z
    .string()
    .url()
    .default('https://data-api.binance.vision')
    .describe('REST base URL for gap fills and backfill (or https://api.binance.com).'),
});
export type BinanceFeedConfig = z.infer<typeof binanceFeedSchema>;

const SOURCE = 'binance';
/** Binance closes connections at 24 h; rotate an hour early. */
const MAX_LIFETIME_MS = 23 * 3_600_000;
/** Binance counts pongs and control messages against 5 msgs/s; leave room for the pongs. */
const MAX_OUTGOING_PER_SECOND = 4;
const STREAMS_PER_MESSAGE = 200;
const PAGE_LIMIT = 1000;
/** Binance's IP budget is 6000 weight/min; slow down well before it. */
const WEIGHT_SOFT_LIMIT = 4_800;
/** `startTime`/`endTime` may span less than one hour. */
const MAX_WINDOW_MS = 3_599_999;

/** Builds the provider half of a Binance feed: stream protocol and REST history. */
export function binanceProvider(config: Pick<BinanceFeedConfig, 'url' | 'restUrl'>): LiveProvider {
  let requestId = 0;
  let usedWeight = 0;
  let weightMinute = 0;
  const rest = new RestClient({
    minIntervalMs: 50,
    onHeaders: (headers) => {
      const used = Number(headers.get('x-mbx-used-weight-1m'));
      if (Number.isFinite(used)) {
        usedWeight = used;
        weightMinute = Math.floor(Date.now() / 60_000);
      }
    },
    // Over the soft limit: wait for the next minute, when Binance resets the counter.
    throttleMs: () =>
      usedWeight >= WEIGHT_SOFT_LIMIT && Math.floor(Date.now() / 60_000) === weightMinute
        ? 60_000 - (Date.now() % 60_000) + 100
        : 0,
  });
  const streamMessages = (method: 'SUBSCRIBE' | 'UNSUBSCRIBE', symbols: readonly string[]) => {
    const messages: unknown[] = [];
    for (let i = 0; i < symbols.length; i += STREAMS_PER_MESSAGE) {
      requestId += 1;
      const params = symbols.slice(i, i + STREAMS_PER_MESSAGE).map((symbol) => `${symbol}@aggTrade`);
      messages.push({ method, params, id: requestId });
    }
    return messages;
  };
  return {
    source: SOURCE,
    connection: (): ProviderConnectionOptions => ({
      name: 'binance',
      url: () => `${config.url.replace(/\/+$/, '')}/ws`,
      // Server pings every 20 s count as activity; three missed ones mean the link is dead.
      staleAfterMs: 65_000,
      maxLifetimeMs: MAX_LIFETIME_MS,
      maxOutgoingPerSecond: MAX_OUTGOING_PER_SECOND,
      classifyUpgradeStatus: defaultUpgradeClassifier,
    }),
    subscribeMessages: (symbols) => streamMessages('SUBSCRIBE', symbols),
    subscriptionChange: (action, symbol) =>
      streamMessages(action === 'add' ? 'SUBSCRIBE' : 'UNSUBSCRIBE', [symbol]),
    decode: decodeBinanceMessage,
    storedSymbol: (symbol) => symbol.toUpperCase(),
    providerSymbol: (symbol) => symbol.toLowerCase(),
    history: (request) => binanceHistory(config.restUrl, rest, request),
  };
}

/** Maps one stream message (raw or combined envelope) onto the sink. */
export function decodeBinanceMessage(text: string, sink: MessageSink): void {
  const message = decodeJson(text, sink);
  if (message === undefined) return;
  if (typeof message !== 'object' || message === null) {
    sink.malformed(`not an object: ${text}`);
    return;
  }
  let payload = message as Record<string, unknown>;
  if (typeof payload.stream === 'string' && typeof payload.data === 'object' && payload.data !== null) {
    payload = payload.data as Record<string, unknown>;
  }
  switch (payload.e) {
    case 'aggTrade': {
      const trade = aggTradeToRaw(payload, payload.s);
      if (trade) sink.trade(trade);
      else sink.malformed(`aggTrade without the expected fields: ${text}`);
      return;
    }
    case 'serverShutdown':
      sink.rotate('Binance serverShutdown notice');
      return;
    case undefined:
      break;
    default:
      return; // Other event types (tickers, klines) are not subscribed to; ignore them.
  }
  if ('result' in payload && 'id' in payload) return; // subscription ack
  if (typeof payload.code === 'number' && typeof payload.msg === 'string') {
    // Binance answers a request it cannot parse this way; resending it after a reconnect cannot help.
    sink.fatal(`Binance rejected a request: code ${payload.code}: ${payload.msg}`);
    return;
  }
  sink.malformed(`unknown message: ${text}`);
}

/** An aggTrade, from the stream (`s` present) or REST (symbol given), as a raw tick; undefined when malformed. */
function aggTradeToRaw(payload: Record<string, unknown>, symbol: unknown): RawTrade | undefined {
  const { a: id, p: price, q: size, T: ts, m: buyerIsMaker } = payload;
  if (
    typeof symbol !== 'string' ||
    typeof id !== 'number' ||
    typeof price !== 'string' ||
    typeof size !== 'string' ||
    typeof ts !== 'number' ||
    typeof buyerIsMaker !== 'boolean'
  ) {
    return undefined;
  }
  return {
    source: SOURCE,
    symbol: symbol.toUpperCase(),
    ts,
    price: Number(price),
    size: Number(size),
    id: String(id),
    side: buyerIsMaker ? 'sell' : 'buy',
  };
}

/**
 * Pages `GET /api/v3/aggTrades` (weight 4, at most 1000 per page): by `fromId` after a known trade, else by
 * one-hour time windows from `fromMs` until the first trade, then by id. Stops past `toMs` or at a short page.
 */
export async function* binanceHistory(
  restUrl: string,
  rest: RestClient,
  request: HistoryRequest,
): TradePages {
  const symbol = request.symbol.toUpperCase();
  const base = `${restUrl.replace(/\/+$/, '')}/api/v3/aggTrades?symbol=${encodeURIComponent(symbol)}&limit=${PAGE_LIMIT}`;
  let nextId = request.afterId === undefined ? undefined : BigInt(request.afterId) + 1n;
  let windowStart = request.fromMs;
  while (!request.signal.aborted) {
    let url: string;
    if (nextId !== undefined) url = `${base}&fromId=${nextId}`;
    else {
      if (windowStart > request.toMs) return;
      const windowEnd = Math.min(windowStart + MAX_WINDOW_MS, request.toMs);
      url = `${base}&startTime=${windowStart}&endTime=${windowEnd}`;
      windowStart = windowEnd + 1;
    }
    const { body } = await rest.getJson(url, request.signal);
    if (!Array.isArray(body))
      throw new Error(`aggTrades answered a non-array: ${JSON.stringify(body).slice(0, 200)}`);
    const page: RawTrade[] = [];
    let reachedEnd = false;
    for (const item of body) {
      const trade = aggTradeToRaw(item as Record<string, unknown>, symbol);
      if (!trade) continue;
      if (trade.ts > request.toMs) {
        reachedEnd = true;
        break;
      }
      if (trade.ts < request.fromMs) continue;
      page.push(trade);
    }
    if (page.length > 0) yield page;
    if (reachedEnd) return;
    const last = body[body.length - 1] as { a?: unknown } | undefined;
    if (nextId !== undefined) {
      // A short page by id means we caught up with the present.
      if (body.length < PAGE_LIMIT || typeof last?.a !== 'number') return;
      nextId = BigInt(last.a) + 1n;
    } else if (typeof last?.a === 'number') {
      // Found the first trade of the range: ids page faster than time windows from here on.
      nextId = BigInt(last.a) + 1n;
    }
  }
}

/** A live Binance feed. */
export function createBinanceFeed(
  config: BinanceFeedConfig,
  defaultSymbols: readonly string[],
  tuning?: Partial<WsConnectionOptions>,
): LiveTradeFeed {
  const symbols = (config.symbols ?? defaultSymbols).map((symbol) => symbol.trim().toLowerCase());
  return new LiveTradeFeed({
    name: config.name ?? 'binance',
    type: 'binance',
    symbols,
    provider: binanceProvider(config),
    tuning,
  });
}
