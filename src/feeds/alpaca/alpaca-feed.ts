/**
 * `alpaca`: trades from Alpaca's market-data WebSocket, stocks (`v2/{iex|sip|delayed_sip|test}`) or crypto
 * (`v1beta3/crypto/{us|us-1|eu-1}`). On every open the shared connection manager sends the `auth` message
 * (APCA_API_KEY_ID / APCA_API_SECRET_KEY); only after `authenticated` does the adapter subscribe to trades.
 * A trade `{T:"t", S, i, p, s, t}` becomes one raw tick: symbol `S` upper-cased (AAPL, BTC/USD), ts from the
 * RFC 3339 ns time cut to ms, id `i`, and for crypto the taker side from `tks`. Auth failure (402), symbol
 * or connection limits (405, 406), feed not enabled (408) and insufficient subscription (409) are fatal.
 *
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
  idleConnectionStatus,
  type LiveFeedEnvironment,
  STALE_AFTER_DESCRIPTION,
} from '../connection/feed-config.ts';
import { drainWhileConnected, TickQueue } from '../connection/tick-queue.ts';
import { type ConnectionStatus, WsConnection } from '../connection/ws-connection.ts';
import type { Feed, FeedBatch } from '../feed.ts';

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

export interface AlpacaStatus extends ConnectionStatus {
  authenticated: boolean;
  /** Frames that were not JSON arrays of tagged objects. */
  malformed: number;
  /** The last `{T:"error"}` message. */
  providerError?: string;
}

export type AlpacaEnvironment = LiveFeedEnvironment;

/** Thrown (ends `run`) when retrying cannot help. */
export class AlpacaFatalError extends Error {
  override name = 'AlpacaFatalError';
}

/** 402 auth failed, 405 symbol limit, 406 connection limit, 408 feed not enabled, 409 insufficient subscription. */
const FATAL_CODES = new Set([402, 405, 406, 408, 409]);
const AUTH_TIMEOUT = 404;

export class AlpacaFeed implements Feed {
  readonly name: string;
  readonly type = 'alpaca';
  readonly bounded = false;
  readonly defaultSource = 'alpaca';
  readonly #config: AlpacaFeedConfig;
  readonly #key: string;
  readonly #secret: string;
  readonly #environment: AlpacaEnvironment;
  #symbols: string[];
  #connection: WsConnection | undefined;
  #queue: TickQueue | undefined;
  #authenticated = false;
  #malformed = 0;
  #providerError: string | undefined;

  constructor(
    config: AlpacaFeedConfig,
    defaultSymbols: readonly string[],
    environment: AlpacaEnvironment = {},
  ) {
    this.#config = config;
    this.name = config.name ?? 'alpaca';
    this.#symbols = configuredSymbols('alpaca', config.symbols, defaultSymbols);
    const env = environment.env ?? process.env;
    const missing = ['APCA_API_KEY_ID', 'APCA_API_SECRET_KEY'].filter((name) => !env[name]);
    if (missing.length > 0) {
      throw new Error(
        `alpaca feed: set the environment variable${missing.length > 1 ? 's' : ''} ${missing.join(' and ')}`,
      );
    }
    this.#key = env.APCA_API_KEY_ID!;
    this.#secret = env.APCA_API_SECRET_KEY!;
    this.#environment = environment;
  }

  /** The streaming URL this config names. */
  url(): string {
    if (this.#config.url) return this.#config.url;
    return this.#config.market === 'crypto'
      ? `${STREAM_HOST}/v1beta3/crypto/${this.#config.location}`
      : `${STREAM_HOST}/v2/${this.#config.feed}`;
  }

  symbols(): string[] {
    return [...this.#symbols];
  }

  addSymbol(symbol: string): void {
    if (this.#symbols.includes(symbol)) return;
    this.#symbols = [...this.#symbols, symbol];
    if (this.#authenticated) this.#connection?.send({ action: 'subscribe', trades: [symbol] });
  }

  removeSymbol(symbol: string): void {
    if (!this.#symbols.includes(symbol)) return;
    this.#symbols = this.#symbols.filter((existing) => existing !== symbol);
    if (this.#authenticated) this.#connection?.send({ action: 'unsubscribe', trades: [symbol] });
  }

  status(): AlpacaStatus {
    const base = this.#connection?.status() ?? idleConnectionStatus();
    const status: AlpacaStatus = { ...base, authenticated: this.#authenticated, malformed: this.#malformed };
    if (this.#providerError !== undefined) status.providerError = this.#providerError;
    return status;
  }

  async *run(_position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const queue = new TickQueue();
    this.#queue = queue;
    this.#malformed = 0;
    this.#providerError = undefined;
    this.#authenticated = false;
    const connection = new WsConnection({
      name: this.name,
      url: () => this.url(),
      // Only the auth goes out on open; the subscription follows `authenticated`.
      subscribeMessages: () => [{ action: 'auth', key: this.#key, secret: this.#secret }],
      onOpen: () => {
        this.#authenticated = false;
      },
      onDrop: () => {
        this.#authenticated = false;
      },
      onMessage: (text) => this.#onMessage(text),
      onFatal: (reason) => queue.fail(new AlpacaFatalError(`alpaca feed: ${reason} (not retrying)`)),
      heartbeat: {
        intervalMs: Math.max(10, this.#config.staleAfter / 3),
        message: () => this.#subscribeMessage(),
      },
      ...connectionTiming(this.#config, this.#environment),
    });
    this.#connection = connection;
    yield* drainWhileConnected(connection, queue, signal);
  }

  #subscribeMessage(): object {
    return { action: 'subscribe', trades: [...this.#symbols] };
  }

  #onMessage(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      this.#malformed += 1;
      return;
    }
    if (!Array.isArray(frame)) {
      this.#malformed += 1;
      return;
    }
    for (const item of frame as Record<string, unknown>[]) {
      if (typeof item !== 'object' || item === null || typeof item.T !== 'string') {
        this.#malformed += 1;
        continue;
      }
      if (item.T === 't') this.#onTrade(item);
      else if (item.T === 'success' && item.msg === 'authenticated') {
        this.#authenticated = true;
        this.#connection?.send(this.#subscribeMessage());
      } else if (item.T === 'error') this.#onError(Number(item.code), String(item.msg ?? ''));
      // success/connected, subscription echoes, quotes and bars carry no trade.
    }
  }

  #onTrade(trade: Record<string, unknown>): void {
    const symbol = typeof trade.S === 'string' ? trade.S.toUpperCase() : trade.S;
    // Date.parse keeps whole ms of an RFC 3339 ns time (…01.233112Z → …01.233).
    const ts = typeof trade.t === 'string' ? Date.parse(trade.t) : trade.t;
    const record: Record<string, unknown> = {
      source: this.defaultSource,
      symbol,
      ts,
      price: trade.p,
      size: trade.s,
      id: trade.i,
    };
    // Crypto trades name the taker side; stock trades do not.
    if (trade.tks === 'B') record.side = 'buy';
    else if (trade.tks === 'S') record.side = 'sell';
    this.#queue?.push(record);
  }

  #onError(code: number, message: string): void {
    this.#providerError = `${code} ${message}`;
    if (FATAL_CODES.has(code)) this.#connection?.fail(`Alpaca error ${code}: ${message}`);
    else if (code === AUTH_TIMEOUT) this.#connection?.reconnect(`Alpaca error ${code}: ${message}`);
  }
}
