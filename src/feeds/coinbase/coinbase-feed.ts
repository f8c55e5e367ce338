/**
 * `coinbase`: the public Coinbase Exchange feed (`matches` + `heartbeat` channels), no key needed. A match's
 * `side` is the MAKER's side, so the taker side stored is the opposite. The heartbeat's `last_trade_id` running
 * ahead of the last match seen means matches were lost on a live socket: the gap is filled over REST
 * (`GET /products/<id>/trades`, whose `side` is also the maker's). Prices and sizes arrive as decimal strings and
 * are stored as JS floats, which is what the tick schema holds; times are ISO with µs, truncated to ms.
 */
import { z } from 'zod';
import { feedNameField } from '../connection/feed-config.ts';
import {
  decodeJsonObject,
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

export const coinbaseFeedSchema = z.strictObject({
  type: z.literal('coinbase'),
  name: feedNameField('coinbase'),
  symbols: z.array(z.string().min(1)).min(1).describe('Product ids as Coinbase writes them, e.g. BTC-USD.'),
  url: z
    .string()
    .url()
    .default('wss://ws-feed.exchange.coinbase.com')
    .describe('Streaming URL (sandbox: wss://ws-feed-public.sandbox.exchange.coinbase.com).'),
  restUrl: z
    .string()
    .url()
    .default('https://api.exchange.coinbase.com')
    .describe('REST base URL for gap fills and backfill.'),
});
export type CoinbaseFeedConfig = z.infer<typeof coinbaseFeedSchema>;

const SOURCE = 'coinbase';
const CHANNELS = ['matches', 'heartbeat'];
const PAGE_LIMIT = 1000;

/** Builds the provider half of a Coinbase Exchange feed. */
export function coinbaseProvider(config: Pick<CoinbaseFeedConfig, 'url' | 'restUrl'>): LiveProvider {
  // Public REST: 10 requests/s per IP; stay under it.
  const rest = new RestClient({ minIntervalMs: 150 });
  return {
    source: SOURCE,
    connection: (): ProviderConnectionOptions => ({
      name: 'coinbase',
      url: () => config.url,
      // Heartbeats arrive every second per product.
      staleAfterMs: 10_000,
      maxOutgoingPerSecond: 10,
      classifyUpgradeStatus: defaultUpgradeClassifier,
    }),
    subscribeMessages: (symbols) => [{ type: 'subscribe', product_ids: [...symbols], channels: CHANNELS }],
    subscriptionChange: (action, symbol) => [
      { type: action === 'add' ? 'subscribe' : 'unsubscribe', product_ids: [symbol], channels: CHANNELS },
    ],
    decode: decodeCoinbaseMessage,
    storedSymbol: (symbol) => symbol.toUpperCase(),
    providerSymbol: (symbol) => symbol.toUpperCase(),
    history: (request) => coinbaseHistory(config.restUrl, rest, request),
  };
}

/** Maps one feed message onto the sink. */
export function decodeCoinbaseMessage(text: string, sink: MessageSink): void {
  const message = decodeJsonObject(text, sink);
  if (message === undefined) return;
  switch (message.type) {
    case 'match':
    case 'last_match': {
      const trade = toRawTrade(message, message.product_id);
      if (trade) sink.trade(trade);
      else sink.malformed(`match without the expected fields: ${text}`);
      return;
    }
    case 'heartbeat': {
      const product = message.product_id;
      const lastTradeId = message.last_trade_id;
      if (typeof product !== 'string' || typeof lastTradeId !== 'number') return;
      const seen = sink.lastId(product.toUpperCase());
      if (seen !== undefined && lastTradeId > Number(seen)) {
        sink.gap(`${product} heartbeat last_trade_id ${lastTradeId} ahead of ${seen}`);
      }
      return;
    }
    case 'error': {
      const reason = `${String(message.message ?? 'error')}: ${String(message.reason ?? '')}`;
      // A refused subscription (unknown product, auth) fails the same way after every reconnect.
      if (/failed to subscribe|not a valid product|auth|permission|unauthori/i.test(reason)) {
        sink.fatal(`Coinbase refused: ${reason}`);
      } else sink.reconnect(`Coinbase error: ${reason}`);
      return;
    }
    case undefined:
      sink.malformed(`message without a type: ${text}`);
      return;
    default:
      return; // subscriptions, ticker and any future type
  }
}

/** A match (stream) or a REST trade as a raw tick; `side` in both is the maker's. */
function toRawTrade(item: Record<string, unknown>, product: unknown): RawTrade | undefined {
  const { trade_id: id, price, size, time, side } = item;
  const ts = typeof time === 'string' ? Date.parse(time) : Number.NaN;
  if (
    typeof product !== 'string' ||
    typeof id !== 'number' ||
    typeof price !== 'string' ||
    typeof size !== 'string' ||
    !Number.isFinite(ts) ||
    (side !== 'buy' && side !== 'sell')
  ) {
    return undefined;
  }
  return {
    source: SOURCE,
    symbol: product.toUpperCase(),
    ts,
    price: Number(price),
    size: Number(size),
    id: String(id),
    side: side === 'buy' ? 'sell' : 'buy',
  };
}

/**
 * Pages `GET /products/<id>/trades`. Its `after` cursor returns trades with ids below it, newest first; asking
 * for `after = start + limit + 1` therefore returns the `limit` trades after `start`, which pages forwards.
 * Without a known id, a binary search over ids finds the first trade at `fromMs`.
 */
export async function* coinbaseHistory(
  restUrl: string,
  rest: RestClient,
  request: HistoryRequest,
): TradePages {
  const product = request.symbol.toUpperCase();
  const base = `${restUrl.replace(/\/+$/, '')}/products/${encodeURIComponent(product)}/trades`;
  const fetchPage = async (cursor: number | undefined, limit: number): Promise<RawTrade[]> => {
    const url = `${base}?limit=${limit}${cursor === undefined ? '' : `&after=${cursor}`}`;
    const { body } = await rest.getJson(url, request.signal);
    if (!Array.isArray(body))
      throw new Error(`trades answered a non-array: ${JSON.stringify(body).slice(0, 200)}`);
    const trades: RawTrade[] = [];
    for (const item of body) {
      const trade = toRawTrade(item as Record<string, unknown>, product);
      if (trade) trades.push(trade);
    }
    return trades.sort((a, b) => Number(a.id) - Number(b.id));
  };
  let lastId = request.afterId === undefined ? undefined : Number(request.afterId);
  if (lastId === undefined) {
    const newest = await fetchPage(undefined, 1);
    const top = newest[newest.length - 1];
    if (!top) return;
    // Smallest id whose trade is at or after fromMs; trade ids grow with time.
    let low = 1;
    let high = Number(top.id);
    if (top.ts < request.fromMs) return;
    while (low < high && !request.signal.aborted) {
      const middle = Math.floor((low + high) / 2);
      const [probe] = await fetchPage(middle + 1, 1);
      if (probe === undefined || probe.ts < request.fromMs) low = middle + 1;
      else high = middle;
    }
    lastId = low - 1;
  }
  while (!request.signal.aborted) {
    const page = await fetchPage(lastId + PAGE_LIMIT + 1, PAGE_LIMIT);
    const wanted = page.filter(
      (trade) =>
        Number(trade.id) > (lastId as number) && trade.ts >= request.fromMs && trade.ts <= request.toMs,
    );
    if (wanted.length > 0) yield wanted;
    const top = page[page.length - 1];
    if (!top || top.ts > request.toMs || page.length < PAGE_LIMIT) return;
    lastId = Number(top.id);
  }
}

/** A live Coinbase Exchange feed. */
export function createCoinbaseFeed(
  config: CoinbaseFeedConfig,
  tuning?: Partial<WsConnectionOptions>,
): LiveTradeFeed {
  return new LiveTradeFeed({
    name: config.name ?? 'coinbase',
    type: 'coinbase',
    symbols: config.symbols.map((symbol) => symbol.trim().toUpperCase()),
    provider: coinbaseProvider(config),
    tuning,
  });
}
