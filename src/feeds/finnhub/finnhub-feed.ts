/**
 * `finnhub`: trades from Finnhub's WebSocket (`wss://ws.finnhub.io?token=KEY`, key from FINNHUB_API_KEY).
 * One `subscribe` message per symbol, re-sent on every open by the shared connection manager. A `trade`
 * frame carries an array of `{s, p, t (ms), v, c}`; each becomes one raw tick (symbol `s` upper-cased, no
 * trade id or side: Finnhub sends neither). `ping` frames only feed the watchdog; Finnhub sends them every
 * 1–2 min when idle, so the stale limit is longer than that.
 */
import { z } from 'zod';
import {
  backoffFields,
  configuredSymbols,
  connectionTiming,
  durationMs,
  feedNameField,
  feedSymbolsField,
  idleConnectionStatus,
  type LiveFeedEnvironment,
} from '../connection/feed-config.ts';
import { drainWhileConnected, TickQueue } from '../connection/tick-queue.ts';
import { type ConnectionStatus, WsConnection } from '../connection/ws-connection.ts';
import type { Feed, FeedBatch } from '../feed.ts';

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

export interface FinnhubStatus extends ConnectionStatus {
  /** Frames that were not JSON or not the documented shape. */
  malformed: number;
  /** The last `{"type":"error"}` message, e.g. too many symbols. */
  providerError?: string;
}

export type { LiveFeedEnvironment };

/** Thrown (ends `run`) when retrying cannot help: bad key or a refusal that will repeat. */
export class FinnhubFatalError extends Error {
  override name = 'FinnhubFatalError';
}

/** Error messages that mean the key is wrong or lacks access: reconnecting would only repeat them. */
const FATAL_MESSAGE = /api key|token|unauthori[sz]ed|forbidden|access denied|not allowed/i;

export class FinnhubFeed implements Feed {
  readonly name: string;
  readonly type = 'finnhub';
  readonly bounded = false;
  readonly defaultSource = 'finnhub';
  readonly #config: FinnhubFeedConfig;
  readonly #token: string;
  readonly #environment: LiveFeedEnvironment;
  #symbols: string[];
  #connection: WsConnection | undefined;
  #queue: TickQueue | undefined;
  #malformed = 0;
  #providerError: string | undefined;

  constructor(
    config: FinnhubFeedConfig,
    defaultSymbols: readonly string[],
    environment: LiveFeedEnvironment = {},
  ) {
    this.#config = config;
    this.name = config.name ?? 'finnhub';
    this.#symbols = configuredSymbols('finnhub', config.symbols, defaultSymbols);
    const token = (environment.env ?? process.env).FINNHUB_API_KEY;
    if (!token)
      throw new Error('finnhub feed: set the environment variable FINNHUB_API_KEY (a free key works)');
    this.#token = token;
    this.#environment = environment;
  }

  symbols(): string[] {
    return [...this.#symbols];
  }

  addSymbol(symbol: string): void {
    if (this.#symbols.includes(symbol)) return;
    this.#symbols = [...this.#symbols, symbol];
    this.#connection?.send({ type: 'subscribe', symbol });
  }

  removeSymbol(symbol: string): void {
    if (!this.#symbols.includes(symbol)) return;
    this.#symbols = this.#symbols.filter((existing) => existing !== symbol);
    this.#connection?.send({ type: 'unsubscribe', symbol });
  }

  status(): FinnhubStatus {
    const base = this.#connection?.status() ?? idleConnectionStatus();
    const status: FinnhubStatus = { ...base, malformed: this.#malformed };
    if (this.#providerError !== undefined) status.providerError = this.#providerError;
    return status;
  }

  async *run(_position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const queue = new TickQueue();
    this.#queue = queue;
    this.#malformed = 0;
    this.#providerError = undefined;
    const url = new URL(this.#config.url);
    url.searchParams.set('token', this.#token);
    const connection = new WsConnection({
      name: this.name,
      url: () => url.toString(),
      subscribeMessages: () => this.#symbols.map((symbol) => ({ type: 'subscribe', symbol })),
      onMessage: (text) => this.#onMessage(text),
      onFatal: (reason) => queue.fail(new FinnhubFatalError(`finnhub feed: ${reason} (not retrying)`)),
      ...connectionTiming(this.#config, this.#environment),
    });
    this.#connection = connection;
    yield* drainWhileConnected(connection, queue, signal);
  }

  #onMessage(text: string): void {
    let frame: { type?: unknown; data?: unknown; msg?: unknown };
    try {
      frame = JSON.parse(text);
    } catch {
      this.#malformed += 1;
      return;
    }
    if (typeof frame !== 'object' || frame === null) {
      this.#malformed += 1;
      return;
    }
    if (frame.type === 'trade') {
      if (!Array.isArray(frame.data)) {
        this.#malformed += 1;
        return;
      }
      for (const trade of frame.data as { s?: unknown; p?: unknown; t?: unknown; v?: unknown }[]) {
        if (typeof trade !== 'object' || trade === null) {
          this.#malformed += 1;
          continue;
        }
        const symbol = typeof trade.s === 'string' ? trade.s.toUpperCase() : trade.s;
        this.#queue?.push({ source: this.defaultSource, symbol, ts: trade.t, price: trade.p, size: trade.v });
      }
    } else if (frame.type === 'error') {
      const message = String(frame.msg ?? 'unknown error');
      this.#providerError = message;
      if (FATAL_MESSAGE.test(message)) this.#connection?.fail(`Finnhub error: ${message}`);
    }
    // `ping` and unknown types only count as activity, which the connection manager already noted.
  }
}
