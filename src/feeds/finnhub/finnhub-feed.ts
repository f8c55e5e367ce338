/**
 * `finnhub`: trades from Finnhub's WebSocket (`wss://ws.finnhub.io?token=KEY`, key from FINNHUB_API_KEY).
 * A provider of the shared live-trade base (`LiveTradeFeed`): one `subscribe` message per symbol, re-sent on
 * every open. A `trade` frame carries an array of `{s, p, t (ms), v, c}`; each becomes one raw tick (symbol
 * `s` upper-cased, no trade id or side: Finnhub sends neither, so there is no position to resume from and no
 * REST gap fill). `ping` frames only feed the watchdog; Finnhub sends them every 1–2 min when idle, so the
 * stale limit is longer than that. An `error` frame about the key or access is fatal; others (too many
 * symbols) show as `providerError` in the status.
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
} from '../connection/feed-config.ts';
import {
  decodeJsonObject,
  type LiveProvider,
  LiveTradeFeed,
  type MessageSink,
} from '../connection/live-trade-feed.ts';
import type { WsConnectionOptions } from '../connection/ws-connection.ts';

export const finnhubFeedSchema = z.strictObject({
  type: z.literal('finnhub'),
  name: feedNameField('finnhub'),
  symbols: feedSymbolsField(
    'Finnhub symbols: AAPL, BINANCE:BTCUSDT, OANDA:EUR_USD (default: top-level `symbols`).',
  ),
  url: z.url().default('wss://ws.finnhub.io').describe('Streaming URL; the token is added as `?token=`.'),
  staleAfter: durationMs
    .default(180_000)
    .describe('Nothing (not even a ping) for this long: reconnect. Finnhub pings every 1–2 min when idle.'),
  ...backoffFields({ initialBackoff: 500, maxBackoff: 30_000 }),
});
export type FinnhubFeedConfig = z.infer<typeof finnhubFeedSchema>;

const SOURCE = 'finnhub';

/** Error messages that mean the key is wrong or lacks access: reconnecting would only repeat them. */
const FATAL_MESSAGE = /api key|token|unauthori[sz]ed|forbidden|access denied|not allowed/i;

/** Builds the provider half of a Finnhub feed; `token` is the API key. */
export function finnhubProvider(
  config: FinnhubFeedConfig,
  token: string,
  environment: LiveFeedEnvironment = {},
): LiveProvider {
  const url = new URL(config.url);
  url.searchParams.set('token', token);
  return {
    source: SOURCE,
    connection: () => ({
      name: config.name ?? 'finnhub',
      url: () => url.toString(),
      ...connectionTiming(config, environment),
    }),
    subscribeMessages: (symbols) => symbols.map((symbol) => ({ type: 'subscribe', symbol })),
    subscriptionChange: (action, symbol) => [
      { type: action === 'add' ? 'subscribe' : 'unsubscribe', symbol },
    ],
    decode: decodeFinnhubMessage,
    storedSymbol: (symbol) => symbol.toUpperCase(),
    providerSymbol: (symbol) => symbol.toUpperCase(),
  };
}

/** Maps one Finnhub frame onto the sink. */
export function decodeFinnhubMessage(text: string, sink: MessageSink): void {
  const frame = decodeJsonObject(text, sink);
  if (frame === undefined) return;
  if (frame.type === 'trade') {
    if (!Array.isArray(frame.data)) {
      sink.malformed(`trade frame without a data array: ${text}`);
      return;
    }
    for (const item of frame.data as unknown[]) {
      const trade = item as { s?: unknown; p?: unknown; t?: unknown; v?: unknown } | null;
      if (
        typeof trade !== 'object' ||
        trade === null ||
        typeof trade.s !== 'string' ||
        typeof trade.p !== 'number' ||
        typeof trade.t !== 'number' ||
        typeof trade.v !== 'number'
      ) {
        sink.malformed(`trade without the expected fields: ${JSON.stringify(item)}`);
        continue;
      }
      sink.trade({
        source: SOURCE,
        symbol: trade.s.toUpperCase(),
        ts: trade.t,
        price: trade.p,
        size: trade.v,
      });
    }
  } else if (frame.type === 'error') {
    const message = String(frame.msg ?? 'unknown error');
    if (FATAL_MESSAGE.test(message)) sink.fatal(`Finnhub error: ${message}`);
    else sink.providerError(message);
  }
  // `ping` and unknown types only count as activity, which the connection manager already noted.
}

/** A live Finnhub feed; the key comes from FINNHUB_API_KEY. */
export function createFinnhubFeed(
  config: FinnhubFeedConfig,
  defaultSymbols: readonly string[],
  environment: LiveFeedEnvironment = {},
  tuning?: Partial<WsConnectionOptions>,
): LiveTradeFeed {
  const symbols = configuredSymbols('finnhub', config.symbols, defaultSymbols);
  const token = (environment.env ?? process.env).FINNHUB_API_KEY;
  if (!token)
    throw new Error('finnhub feed: set the environment variable FINNHUB_API_KEY (a free key works)');
  return new LiveTradeFeed({
    name: config.name ?? 'finnhub',
    type: 'finnhub',
    symbols,
    provider: finnhubProvider(config, token, environment),
    tuning,
    log: environment.log,
  });
}
