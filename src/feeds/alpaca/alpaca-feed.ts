/**
 * `alpaca`: trades from Alpaca's market-data WebSocket, stocks (`v2/{iex|sip|delayed_sip|test}`) or crypto
 * (`v1beta3/crypto/{us|us-1|eu-1}`). On every open the shared connection manager sends the `auth` message
 * (APCA_API_KEY_ID / APCA_API_SECRET_KEY); only after `authenticated` does the adapter subscribe to trades.
 * A trade `{T:"t", S, i, p, s, t}` becomes one raw tick: symbol `S` upper-cased (AAPL, BTC/USD), ts from the
 * RFC 3339 ns time cut to ms, id `i`, and for crypto the taker side from `tks`. Auth failure (402), symbol
 * or connection limits (405, 406), feed not enabled (408) and insufficient subscription (409) are fatal.
 *
 * A provider of the shared live-trade base (`LiveTradeFeed`); the authenticated flag is per connection.
 * Alpaca has no app-level heartbeat, so the adapter re-sends its (additive, idempotent) subscribe message
 * periodically; the `subscription` echo proves the socket alive to the watchdog even when no trade flows.
 */
import { z } from 'zod';
import {
  backoffFields,
  configuredSymbols,
  connectionTiming,
  durationMs,
  feedNameField,
  feedSymbolsField,
  type LiveFeedEnvironment,
  STALE_AFTER_DESCRIPTION,
} from '../connection/feed-config.ts';
import {
  decodeJson,
  type LiveProvider,
  LiveTradeFeed,
  type MessageSink,
  type RawTrade,
} from '../connection/live-trade-feed.ts';
import type { WsConnectionOptions } from '../connection/ws-connection.ts';

const STREAM_HOST = 'wss://stream.data.alpaca.markets';

export const alpacaFeedSchema = z.strictObject({
  type: z.literal('alpaca'),
  name: feedNameField('alpaca'),
  symbols: feedSymbolsField('Symbols: AAPL for stocks, BTC/USD for crypto (default: top-level `symbols`).'),
  market: z.enum(['stocks', 'crypto']).default('stocks').describe('Which Alpaca stream.'),
  feed: z
    .string()
    .min(1)
    .default('iex')
    .describe('Stocks feed: iex (free plan), sip, delayed_sip, or test (symbol FAKEPACA).'),
  location: z.string().min(1).default('us').describe('Crypto location: us, us-1 or eu-1.'),
  url: z.url().optional().describe('Full streaming URL, overriding market/feed/location.'),
  staleAfter: durationMs.default(60_000).describe(STALE_AFTER_DESCRIPTION),
  ...backoffFields({ initialBackoff: 1_000, maxBackoff: 60_000 }),
});
export type AlpacaFeedConfig = z.infer<typeof alpacaFeedSchema>;

const SOURCE = 'alpaca';

/** 402 auth failed, 405 symbol limit, 406 connection limit, 408 feed not enabled, 409 insufficient subscription. */
const FATAL_CODES = new Set([402, 405, 406, 408, 409]);
const AUTH_TIMEOUT = 404;

/** The streaming URL a config names. */
export function alpacaUrl(config: AlpacaFeedConfig): string {
  if (config.url) return config.url;
  return config.market === 'crypto'
    ? `${STREAM_HOST}/v1beta3/crypto/${config.location}`
    : `${STREAM_HOST}/v2/${config.feed}`;
}

/** Builds the provider half of an Alpaca feed with its key and secret. */
export function alpacaProvider(
  config: AlpacaFeedConfig,
  credentials: { key: string; secret: string },
  environment: LiveFeedEnvironment = {},
): LiveProvider {
  // Per connection: subscriptions go out only once Alpaca says `authenticated`.
  let authenticated = false;
  const subscribe = (symbols: readonly string[]) => ({ action: 'subscribe', trades: [...symbols] });
  const decode = (text: string, sink: MessageSink): void => {
    const frame = decodeJson(text, sink);
    if (frame === undefined) return;
    if (!Array.isArray(frame)) {
      sink.malformed(`not an array: ${text}`);
      return;
    }
    for (const item of frame as Record<string, unknown>[]) {
      if (typeof item !== 'object' || item === null || typeof item.T !== 'string') {
        sink.malformed(`item without a type: ${JSON.stringify(item)}`);
        continue;
      }
      if (item.T === 't') {
        const trade = alpacaTradeToRaw(item);
        if (trade) sink.trade(trade);
        else sink.malformed(`trade without the expected fields: ${JSON.stringify(item)}`);
      } else if (item.T === 'success' && item.msg === 'authenticated') {
        authenticated = true;
        sink.send(subscribe(sink.symbols()));
      } else if (item.T === 'error') {
        const code = Number(item.code);
        const message = `Alpaca error ${code}: ${String(item.msg ?? '')}`;
        if (FATAL_CODES.has(code)) sink.fatal(message);
        else if (code === AUTH_TIMEOUT) sink.reconnect(message);
        else sink.providerError(message);
      }
      // success/connected, subscription echoes, quotes and bars carry no trade.
    }
  };
  return {
    source: SOURCE,
    connection: (symbols) => ({
      name: config.name ?? 'alpaca',
      url: () => alpacaUrl(config),
      // The (additive, idempotent) subscribe message re-sent as a heartbeat: its echo proves the socket alive.
      heartbeat: {
        intervalMs: Math.max(10, config.staleAfter / 3),
        message: () => subscribe(symbols()),
      },
      ...connectionTiming(config, environment),
    }),
    connectionChanged: () => {
      authenticated = false;
    },
    // Only the auth goes out on open; the subscription follows `authenticated`.
    subscribeMessages: () => [{ action: 'auth', key: credentials.key, secret: credentials.secret }],
    subscriptionChange: (action, symbol) =>
      authenticated ? [{ action: action === 'add' ? 'subscribe' : 'unsubscribe', trades: [symbol] }] : [],
    decode,
    storedSymbol: (symbol) => symbol.toUpperCase(),
    providerSymbol: (symbol) => symbol.toUpperCase(),
  };
}

/** A trade `{T:"t", S, i, p, s, t, tks?}` as a raw tick; undefined when a field is missing. */
function alpacaTradeToRaw(trade: Record<string, unknown>): RawTrade | undefined {
  const { S: symbol, i: id, p: price, s: size, t: time } = trade;
  // Date.parse keeps whole ms of an RFC 3339 ns time (…01.233112Z → …01.233).
  const ts = typeof time === 'string' ? Date.parse(time) : Number.NaN;
  if (
    typeof symbol !== 'string' ||
    (typeof id !== 'number' && typeof id !== 'string') ||
    typeof price !== 'number' ||
    typeof size !== 'number' ||
    !Number.isFinite(ts)
  ) {
    return undefined;
  }
  const raw: RawTrade = { source: SOURCE, symbol: symbol.toUpperCase(), ts, price, size, id: String(id) };
  // Crypto trades name the taker side; stock trades do not.
  if (trade.tks === 'B') raw.side = 'buy';
  else if (trade.tks === 'S') raw.side = 'sell';
  return raw;
}

/** A live Alpaca feed; key and secret come from APCA_API_KEY_ID and APCA_API_SECRET_KEY. */
export function createAlpacaFeed(
  config: AlpacaFeedConfig,
  defaultSymbols: readonly string[],
  environment: LiveFeedEnvironment = {},
  tuning?: Partial<WsConnectionOptions>,
): LiveTradeFeed {
  const symbols = configuredSymbols('alpaca', config.symbols, defaultSymbols);
  const env = environment.env ?? process.env;
  const missing = ['APCA_API_KEY_ID', 'APCA_API_SECRET_KEY'].filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new Error(
      `alpaca feed: set the environment variable${missing.length > 1 ? 's' : ''} ${missing.join(' and ')}`,
    );
  }
  const credentials = { key: env.APCA_API_KEY_ID!, secret: env.APCA_API_SECRET_KEY! };
  return new LiveTradeFeed({
    name: config.name ?? 'alpaca',
    type: 'alpaca',
    symbols,
    provider: alpacaProvider(config, credentials, environment),
    tuning,
    log: environment.log,
  });
}
