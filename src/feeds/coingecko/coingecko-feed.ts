/**
 * `coingecko`: prices from CoinGecko's `/simple/price`, polled. CoinGecko publishes prices, not trades,
 * so each coin becomes one tick per new `last_updated_at`: price = the quote in `vsCurrency`, size 0
 * (the 24 h rolling volume is not a traded quantity), ts = `last_updated_at` in ms, id =
 * `<coin id>:<last_updated_at>` so a repeated answer deduplicates in ingest. Symbol = the coin id
 * upper-cased (BITCOIN). A 429 backs off (honouring Retry-After); auth/plan errors are fatal.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { durationMs, feedNameField, feedSymbolsField, SymbolListFeed } from '../connection/feed-config.ts';
import {
  type CauseKind,
  type ConnectionState,
  classifyConnectError,
  formatDuration,
  redactUrl,
} from '../connection/ws-connection.ts';
import type { Feed, FeedBatch } from '../feed.ts';

const DEFAULT_URL = 'https://api.coingecko.com/api/v3';
const PRO_URL = 'https://pro-api.coingecko.com/api/v3';
/** 30 calls/min is the lowest free-tier limit FEEDS.md quotes; polling faster than that needs `url`. */
const MIN_REAL_POLL_MS = 2_000;

export const coingeckoFeedSchema = z.strictObject({
  type: z.literal('coingecko'),
  name: feedNameField('coingecko'),
  symbols: feedSymbolsField(
    'CoinGecko coin ids, e.g. bitcoin (default: top-level `symbols`). Stored upper-cased: BITCOIN.',
  ),
  vsCurrency: z.string().min(1).default('usd').describe('Quote currency of the prices.'),
  plan: z
    .enum(['demo', 'pro'])
    .default('demo')
    .describe('Which key COINGECKO_API_KEY holds: demo (api.coingecko.com) or pro (pro-api.coingecko.com).'),
  pollInterval: durationMs
    .default(60_000)
    .describe('Time between polls (ms or "60s"). CoinGecko refreshes every 60 s on Demo, 30 s on Pro.'),
  requestTimeout: durationMs.default(15_000).describe('A request unanswered for this long is retried.'),
  maxBackoff: durationMs.default(600_000).describe('Cap of the retry backoff after errors.'),
  url: z.url().optional().describe('REST base URL (default by plan), e.g. a test server.'),
  restUrl: z.url().optional().describe('Same as `url` (the REST base); `url` wins.'),
});
export type CoingeckoFeedConfig = z.infer<typeof coingeckoFeedSchema>;

/** What the feed is doing now, for the status API (the live feeds' vocabulary: a poll is an attempt). */
export interface CoingeckoStatus {
  /** `connecting` until the first poll answers, `connected` after a good poll, `failing` after a failed one. */
  state: ConnectionState;
  connected: boolean;
  /** Failed polls retried since start. */
  reconnects: number;
  /** Polls that failed since the last good one. */
  failedAttempts: number;
  /** Why the last poll failed (unset after a good one). */
  cause?: string;
  causeKind?: CauseKind;
  /** When a poll last succeeded (ms); null until one has. */
  lastConnectedAt: number | null;
  /** Answers or entries that could not be mapped (not JSON, wrong shape). */
  malformed: number;
  /** Set when the feed stopped for good (bad key, plan restriction, bad request). */
  fatal: string | null;
  lastMessageAt: number | null;
}

/** The last `last_updated_at` (s) seen per coin id: the next poll emits only newer ones. */
export interface CoingeckoPosition {
  lastUpdatedAt: Record<string, number>;
}

export interface FeedEnvironment {
  env?: Record<string, string | undefined>;
  /** Seeds the jitter; tests pass a constant. */
  random?: () => number;
  /** Where log lines go (default: stderr). */
  log?: (line: string) => void;
}

/** Thrown (ends `run`) on errors that retrying cannot fix. */
export class CoingeckoFatalError extends Error {
  override name = 'CoingeckoFatalError';
}

/** A poll that failed but may succeed later; `retryAfterMs` comes from the server when it said. */
class RetryableError extends Error {
  readonly retryAfterMs: number | undefined;
  readonly kind: CauseKind;
  constructor(message: string, kind: CauseKind, retryAfterMs?: number) {
    super(message);
    this.kind = kind;
    this.retryAfterMs = retryAfterMs;
  }
}

export class CoingeckoFeed extends SymbolListFeed implements Feed {
  readonly name: string;
  readonly type = 'coingecko';
  readonly bounded = false;
  readonly defaultSource = 'coingecko';
  readonly #config: CoingeckoFeedConfig;
  readonly #baseUrl: string;
  readonly #headers: Record<string, string> = { accept: 'application/json' };
  readonly #random: () => number;
  readonly #log: (line: string) => void;
  readonly #status: CoingeckoStatus = {
    state: 'idle',
    connected: false,
    reconnects: 0,
    failedAttempts: 0,
    lastConnectedAt: null,
    malformed: 0,
    fatal: null,
    lastMessageAt: null,
  };

  constructor(
    config: CoingeckoFeedConfig,
    defaultSymbols: readonly string[],
    environment: FeedEnvironment = {},
  ) {
    super('coingecko', config.symbols, defaultSymbols);
    this.#config = config;
    this.name = config.name ?? 'coingecko';
    const override = config.url ?? config.restUrl;
    this.#baseUrl = (override ?? (config.plan === 'pro' ? PRO_URL : DEFAULT_URL)).replace(/\/+$/, '');
    if (override === undefined && config.pollInterval < MIN_REAL_POLL_MS) {
      throw new Error(
        `coingecko feed: pollInterval ${config.pollInterval} ms is faster than the free-tier rate limit allows (>= ${MIN_REAL_POLL_MS} ms)`,
      );
    }
    const env = environment.env ?? process.env;
    const key = env.COINGECKO_API_KEY;
    if (key) this.#headers[config.plan === 'pro' ? 'x-cg-pro-api-key' : 'x-cg-demo-api-key'] = key;
    else if (config.plan === 'pro') {
      throw new Error('coingecko feed: plan "pro" needs the environment variable COINGECKO_API_KEY');
    }
    this.#random = environment.random ?? Math.random;
    this.#log = environment.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  status(): CoingeckoStatus {
    return { ...this.#status };
  }

  async *run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const saved = (position as Partial<CoingeckoPosition> | undefined)?.lastUpdatedAt;
    const lastUpdatedAt: Record<string, number> = { ...(saved ?? {}) };
    let failures = 0;
    this.#status.state = 'connecting';
    while (!signal.aborted) {
      let waitMs = this.#config.pollInterval;
      try {
        const values = await this.#poll(lastUpdatedAt, signal);
        Object.assign(this.#status, {
          state: 'connected',
          connected: true,
          failedAttempts: 0,
          lastConnectedAt: Date.now(),
        });
        delete this.#status.cause;
        delete this.#status.causeKind;
        failures = 0;
        if (values.length > 0) yield { values, position: { lastUpdatedAt: { ...lastUpdatedAt } } };
      } catch (error) {
        if (signal.aborted) return;
        const message = error instanceof Error ? error.message : String(error);
        this.#status.connected = false;
        if (error instanceof CoingeckoFatalError) {
          Object.assign(this.#status, { state: 'fatal', fatal: message, cause: message, causeKind: 'http' });
          this.#log(`[${this.name}] fatal, not retrying: ${message}`);
          throw error;
        }
        Object.assign(this.#status, {
          state: 'failing',
          failedAttempts: this.#status.failedAttempts + 1,
          cause: message,
          causeKind: error instanceof RetryableError ? error.kind : 'network',
        });
        this.#status.reconnects += 1;
        failures += 1;
        const backoff = Math.min(this.#config.maxBackoff, this.#config.pollInterval * 2 ** (failures - 1));
        // Full jitter on the backoff, but never sooner than the server asked for.
        const jittered = backoff / 2 + (backoff / 2) * this.#random();
        const retryAfterMs = error instanceof RetryableError ? error.retryAfterMs : undefined;
        waitMs = Math.max(jittered, retryAfterMs ?? 0);
        const attempts = this.#status.failedAttempts;
        this.#log(
          `[${this.name}] poll of ${redactUrl(this.#baseUrl)} failed: ${message}; ` +
            `${attempts} failed attempt${attempts === 1 ? '' : 's'}, retrying in ${formatDuration(waitMs)}`,
        );
      }
      await sleep(waitMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** One request; maps coins whose `last_updated_at` moved and records the new value in `lastUpdatedAt`. */
  async #poll(lastUpdatedAt: Record<string, number>, signal: AbortSignal): Promise<unknown[]> {
    const ids = this.symbolList.map((symbol) => symbol.toLowerCase());
    if (ids.length === 0) return [];
    const vs = this.#config.vsCurrency.toLowerCase();
    const url = `${this.#baseUrl}/simple/price?ids=${encodeURIComponent(ids.join(','))}&vs_currencies=${encodeURIComponent(vs)}&include_last_updated_at=true`;
    let response: Response;
    let text: string;
    try {
      const timeout = AbortSignal.timeout(this.#config.requestTimeout);
      response = await fetch(url, { headers: this.#headers, signal: AbortSignal.any([signal, timeout]) });
      text = await response.text();
    } catch (error) {
      if (error instanceof Error && error.name === 'TimeoutError') {
        throw new RetryableError(
          `no answer from ${redactUrl(url)} within ${this.#config.requestTimeout} ms`,
          'timeout',
        );
      }
      // fetch fails with "fetch failed"; what went wrong (DNS, refused, TLS) is its `cause`.
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : (error as Error);
      const classified = classifyConnectError(cause, url);
      throw new RetryableError(classified.message, classified.kind);
    }
    if (!response.ok) throw classifyHttpError(response, text);
    this.#status.lastMessageAt = Date.now();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      this.#status.malformed += 1;
      return [];
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.#status.malformed += 1;
      return [];
    }
    const values: unknown[] = [];
    for (const [coin, entry] of Object.entries(body as Record<string, unknown>)) {
      const quote = entry as Record<string, unknown> | null;
      const updatedAt = typeof quote === 'object' && quote !== null ? quote.last_updated_at : undefined;
      if (typeof updatedAt !== 'number') {
        this.#status.malformed += 1;
        continue;
      }
      if (updatedAt === lastUpdatedAt[coin]) continue;
      lastUpdatedAt[coin] = updatedAt;
      // The price is passed on as sent: ingest rejects a missing or non-numeric one with its reason.
      values.push({
        source: this.defaultSource,
        symbol: coin.toUpperCase(),
        ts: updatedAt * 1000,
        price: quote?.[vs],
        size: 0,
        id: `${coin}:${updatedAt}`,
      });
    }
    return values;
  }
}

/** 429, 408 and 5xx are worth retrying; a bad key, plan restriction or bad request is not. */
function classifyHttpError(response: Response, text: string): Error {
  const detail = `HTTP ${response.status}: ${text.slice(0, 200)}`;
  if (response.status === 429 || response.status === 408 || response.status >= 500) {
    return new RetryableError(detail, 'http', parseRetryAfterMs(response.headers.get('retry-after')));
  }
  return new CoingeckoFatalError(
    `coingecko: ${detail} (check COINGECKO_API_KEY, the plan and the coin ids; not retrying)`,
  );
}

/** Retry-After is either seconds or an HTTP date. */
export function parseRetryAfterMs(header: string | null, nowMs = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
