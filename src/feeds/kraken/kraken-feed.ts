/**
 * `kraken`: Kraken WebSocket v2 public `trade` channel, no key needed. `side` is the taker's; prices and
 * quantities are JSON numbers (floats, which is what the tick schema holds). The status message's
 * `connection_id` exceeds 2^53 and is ignored. A heartbeat arrives every second once subscribed, so silence
 * means a dead link. Gaps are filled from REST `GET /0/public/Trades` (same `trade_id`s), which names pairs
 * the old way (`XBTUSD` for `BTC/USD`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
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
import { RestClient, RestFatalError } from '../connection/rest.ts';
import { defaultUpgradeClassifier, type WsConnectionOptions } from '../connection/ws-connection.ts';

export const krakenFeedSchema = z.strictObject({
  type: z.literal('kraken'),
  name: feedNameField('kraken'),
  symbols: z.array(z.string().min(1)).min(1).describe('Pairs as Kraken v2 writes them, e.g. BTC/USD.'),
  url: z.string().url().default('wss://ws.kraken.com/v2').describe('Streaming URL.'),
  restUrl: z
    .string()
    .url()
    .default('https://api.kraken.com')
    .describe('REST base URL for gap fills and backfill.'),
});
export type KrakenFeedConfig = z.infer<typeof krakenFeedSchema>;

const SOURCE = 'kraken';
const PAGE_LIMIT = 1000;
/** Kraken REST still uses its legacy asset codes in pair names. */
const LEGACY_ASSETS: Record<string, string> = { BTC: 'XBT', DOGE: 'XDG' };

/** REST pair name of a v2 symbol: `BTC/USD` → `XBTUSD`. */
export function krakenRestPair(symbol: string): string {
  return symbol
    .toUpperCase()
    .split('/')
    .map((asset) => LEGACY_ASSETS[asset] ?? asset)
    .join('');
}

/** Builds the provider half of a Kraken v2 feed. */
export function krakenProvider(config: Pick<KrakenFeedConfig, 'url' | 'restUrl'>): LiveProvider {
  let requestId = 0;
  // Public REST calls cost about one per second of Kraken's decaying counter.
  const rest = new RestClient({ minIntervalMs: 1_000 });
  const message = (method: 'subscribe' | 'unsubscribe', symbols: readonly string[]) => {
    requestId += 1;
    return { method, params: { channel: 'trade', symbol: [...symbols], snapshot: false }, req_id: requestId };
  };
  return {
    source: SOURCE,
    connection: (): ProviderConnectionOptions => ({
      name: 'kraken',
      url: () => config.url,
      staleAfterMs: 10_000,
      maxOutgoingPerSecond: 5,
      heartbeat: {
        intervalMs: 30_000,
        message: () => {
          requestId += 1;
          return { method: 'ping', req_id: requestId };
        },
      },
      classifyUpgradeStatus: defaultUpgradeClassifier,
    }),
    subscribeMessages: (symbols) => [message('subscribe', symbols)],
    subscriptionChange: (action, symbol) => [
      message(action === 'add' ? 'subscribe' : 'unsubscribe', [symbol]),
    ],
    decode: decodeKrakenMessage,
    storedSymbol: (symbol) => symbol.toUpperCase(),
    providerSymbol: (symbol) => symbol.toUpperCase(),
    history: (request) => krakenHistory(config.restUrl, rest, request),
  };
}

/** Maps one v2 message onto the sink. */
export function decodeKrakenMessage(text: string, sink: MessageSink): void {
  const message = decodeJsonObject(text, sink);
  if (message === undefined) return;
  if (message.channel === 'trade') {
    if (!Array.isArray(message.data)) {
      sink.malformed(`trade without data: ${text}`);
      return;
    }
    for (const item of message.data) {
      const trade = streamTrade(item as Record<string, unknown>);
      if (trade) sink.trade(trade);
      else sink.malformed(`trade entry without the expected fields: ${JSON.stringify(item)}`);
    }
    return;
  }
  if (typeof message.channel === 'string') return; // status, heartbeat, other channels
  if (message.success === false) {
    const error = String(message.error ?? 'unknown error');
    // Rate limits heal with time; an unsupported pair or bad request fails the same way every time.
    if (/rate|exceeded|unavailable|timeout/i.test(error)) sink.reconnect(`Kraken: ${error}`);
    else sink.fatal(`Kraken refused ${String(message.method)}: ${error}`);
    return;
  }
  if (typeof message.method === 'string') return; // subscribe acks, pong
  sink.malformed(`unknown message: ${text}`);
}

function streamTrade(item: Record<string, unknown>): RawTrade | undefined {
  const { symbol, side, price, qty, trade_id: id, timestamp } = item;
  const ts = typeof timestamp === 'string' ? Date.parse(timestamp) : Number.NaN;
  if (
    typeof symbol !== 'string' ||
    typeof price !== 'number' ||
    typeof qty !== 'number' ||
    typeof id !== 'number' ||
    !Number.isFinite(ts) ||
    (side !== 'buy' && side !== 'sell')
  ) {
    return undefined;
  }
  return { source: SOURCE, symbol: symbol.toUpperCase(), ts, price, size: qty, id: String(id), side };
}

/**
 * Pages `GET /0/public/Trades?pair&since&count`: rows `[price, volume, time (s), "b"|"s", type, misc, trade_id]`,
 * `last` = the next `since` cursor (ns). Starts at the second of the last known trade (ids already seen are
 * harmless duplicates) or at `fromMs`.
 */
export async function* krakenHistory(restUrl: string, rest: RestClient, request: HistoryRequest): TradePages {
  const symbol = request.symbol.toUpperCase();
  const base = `${restUrl.replace(/\/+$/, '')}/0/public/Trades?pair=${krakenRestPair(symbol)}&count=${PAGE_LIMIT}`;
  let since = String(Math.floor(request.fromMs / 1000));
  const afterId = request.afterId === undefined ? undefined : Number(request.afterId);
  for (let busy = 0; !request.signal.aborted; ) {
    const { body } = await rest.getJson(`${base}&since=${since}`, request.signal);
    const answer = body as { error?: unknown; result?: Record<string, unknown> };
    const errors = Array.isArray(answer?.error) ? answer.error.map(String) : [];
    if (errors.length > 0) {
      if (errors.some((error) => /too many requests|rate limit/i.test(error)) && busy < 5) {
        busy += 1;
        await sleep(2_000 * busy, undefined, { signal: request.signal });
        continue;
      }
      throw new RestFatalError(200, `Kraken Trades ${symbol}: ${errors.join('; ')}`);
    }
    busy = 0;
    const result = answer?.result ?? {};
    const rows = Object.entries(result).find(([key]) => key !== 'last')?.[1];
    if (!Array.isArray(rows)) return;
    const page: RawTrade[] = [];
    let pastEnd = false;
    for (const row of rows) {
      const trade = restTrade(symbol, row);
      if (!trade) continue;
      if (trade.ts > request.toMs) {
        pastEnd = true;
        break;
      }
      if (afterId !== undefined ? Number(trade.id) <= afterId : trade.ts < request.fromMs) continue;
      page.push(trade);
    }
    if (page.length > 0) yield page;
    const next =
      typeof result.last === 'string' || typeof result.last === 'number' ? String(result.last) : undefined;
    if (pastEnd || rows.length < PAGE_LIMIT || next === undefined || next === since) return;
    since = next;
  }
}

function restTrade(symbol: string, row: unknown): RawTrade | undefined {
  if (!Array.isArray(row)) return undefined;
  const [price, volume, time, side, , , id] = row as unknown[];
  if (typeof time !== 'number' || typeof id !== 'number' || (side !== 'b' && side !== 's')) return undefined;
  // Seconds with µs in a float: round to µs first so 0.118204 s never floors to 117 ms.
  const ts = Math.floor(Math.round(time * 1e6) / 1000);
  return {
    source: SOURCE,
    symbol,
    ts,
    price: Number(price),
    size: Number(volume),
    id: String(id),
    side: side === 'b' ? 'buy' : 'sell',
  };
}

/** A live Kraken v2 feed. */
export function createKrakenFeed(
  config: KrakenFeedConfig,
  tuning?: Partial<WsConnectionOptions>,
): LiveTradeFeed {
  return new LiveTradeFeed({
    name: config.name ?? 'kraken',
    type: 'kraken',
    symbols: config.symbols.map((symbol) => symbol.trim().toUpperCase()),
    provider: krakenProvider(config),
    tuning,
  });
}
