/**
 * `ib`: Interactive Brokers through the TWS API socket (`@stoqey/ib`) of a running, logged-in TWS or IB
 * Gateway (which holds the login, so no secret here). Each symbol is a contract (`STK`/`SMART`/`USD` by
 * default) streamed with `reqTickByTickData(..., 'AllLast')` — one tick per trade, ts in whole seconds, no
 * trade id or side on the wire — or, in `marketData` mode, `reqMktData`, where a LAST price followed by its
 * LAST_SIZE becomes one tick stamped with the receive time.
 *
 * The library does not reconnect, so this adapter does, like the shared WebSocket manager: capped
 * exponential backoff with full jitter, resubscription after every `nextValidId` (the API's "ready"), and a
 * watchdog fed by any inbound message plus a `reqCurrentTime` heartbeat, so a silent socket is replaced.
 *
 * `@stoqey/ib` (with rxjs, and dotenv, which its client uses to read `./.env` into the environment) is
 * imported only when a run starts, so a config without an IB feed never loads it (src/feeds/registry.test.ts).
 */
import type { IBApi, SecType, TickByTickDataType } from '@stoqey/ib';
import { z } from 'zod';
import {
  backoffFields,
  configuredSymbols,
  durationMs,
  feedNameField,
  feedSymbolsField,
  STALE_AFTER_DESCRIPTION,
} from '../connection/feed-config.ts';
import { TickQueue } from '../connection/tick-queue.ts';
import {
  type CauseKind,
  type ConnectionState,
  classifyConnectError,
  formatDuration,
} from '../connection/ws-connection.ts';
import type { Feed, FeedBatch } from '../feed.ts';

export const ibFeedSchema = z.strictObject({
  type: z.literal('ib'),
  name: feedNameField('ib'),
  symbols: feedSymbolsField('Contract symbols, e.g. AAPL (default: top-level `symbols`).'),
  url: z
    .string()
    .regex(/^tcp:\/\/[^:/]+:\d+\/?$/, 'expected tcp://host:port')
    .default('tcp://127.0.0.1:4002')
    .describe('TWS/IB Gateway API socket: 7496/7497 TWS live/paper, 4001/4002 Gateway live/paper.'),
  clientId: z.number().int().min(0).default(0).describe('API client id, unique per TWS/Gateway.'),
  secType: z.string().min(1).default('STK').describe('Contract security type.'),
  exchange: z.string().min(1).default('SMART').describe('Contract exchange.'),
  currency: z.string().min(1).default('USD').describe('Contract currency.'),
  mode: z
    .enum(['tickByTick', 'marketData'])
    .default('tickByTick')
    .describe(
      'tickByTick: every trade (reqTickByTickData AllLast); marketData: sampled LAST ticks (reqMktData).',
    ),
  marketDataType: z
    .union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)])
    .default(1)
    .describe('1 live, 2 frozen, 3 delayed, 4 delayed-frozen (marketData mode).'),
  heartbeatInterval: durationMs.default(10_000).describe('How often reqCurrentTime probes a quiet socket.'),
  staleAfter: durationMs.default(30_000).describe(STALE_AFTER_DESCRIPTION),
  ...backoffFields({ initialBackoff: 500, maxBackoff: 30_000 }),
  stableAfter: durationMs.default(10_000).describe('A session up this long resets the backoff.'),
});
export type IbFeedConfig = z.infer<typeof ibFeedSchema>;

/** What the feed is doing now, for the status API (same fields as the WebSocket feeds' status). */
export interface IbStatus {
  state: ConnectionState;
  connected: boolean;
  reconnects: number;
  /** Sessions that failed before the API said ready, since the feed was last ready. */
  failedAttempts: number;
  /** Why the feed is not connected; unset while connected. */
  cause?: string;
  causeKind?: CauseKind;
  /** When a session last became ready (ms); null until one has. */
  lastConnectedAt: number | null;
  messages: number;
  lastMessageAt: number | null;
  /** Messages the library could not decode. */
  malformed: number;
  fatal?: string;
  lastError?: string;
  /** Symbols IB refused for good (unknown contract, no entitlement): not requested again. */
  symbolErrors: Record<string, string>;
}

/** Thrown (ends `run`) when retrying cannot help. */
export class IbFatalError extends Error {
  override name = 'IbFatalError';
}

/** The slice of `IBApi` the feed uses; tests may inject a stand-in. */
export type IbApiLike = Pick<
  IBApi,
  | 'on'
  | 'removeAllListeners'
  | 'connect'
  | 'disconnect'
  | 'reqTickByTickData'
  | 'cancelTickByTickData'
  | 'reqMktData'
  | 'cancelMktData'
  | 'reqMarketDataType'
  | 'reqCurrentTime'
>;

/** The parts of `@stoqey/ib` the feed needs at run time. */
export type IbLibrary = Pick<typeof import('@stoqey/ib'), 'IBApi' | 'EventName'>;

export interface IbEnvironment {
  createApi?: (options: { host: string; port: number; clientId: number }) => IbApiLike;
  /** Loads `@stoqey/ib` (default: a dynamic import on the first run). */
  loadLibrary?: () => Promise<IbLibrary>;
  /** Where connection log lines go (default: stderr). */
  log?: (line: string) => void;
  random?: () => number;
}

// Tick types of reqMktData (FEEDS.md §7): last price/size and their delayed twins.
const LAST = 4;
const LAST_SIZE = 5;
const DELAYED_LAST = 68;
const DELAYED_LAST_SIZE = 71;

/** Errors that no retry fixes: client id in use, API version mismatch. */
const FATAL_CODES = new Set([326, 503, 506]);
/** Per-request refusals: unknown contract, no market-data subscription, delayed data not enabled. */
const SYMBOL_FATAL_CODES = new Set([200, 354, 10089, 10090, 10091, 10168]);
/** The library's own "could not decode this message". */
const DECODE_ERROR = 505;
/** TWS ↔ IB connectivity restored but subscriptions were lost. */
const RESTORED_DATA_LOST = 1101;

export class IbFeed implements Feed {
  readonly name: string;
  readonly type = 'ib';
  readonly bounded = false;
  readonly defaultSource = 'ib';
  readonly #config: IbFeedConfig;
  readonly #host: string;
  readonly #port: number;
  readonly #createApi: IbEnvironment['createApi'];
  readonly #loadLibrary: () => Promise<IbLibrary>;
  #library: IbLibrary | undefined;
  readonly #random: () => number;
  readonly #log: (line: string) => void;
  #symbols: string[];
  #status: IbStatus = IbFeed.#freshStatus();

  // Per-run state.
  #api: IbApiLike | undefined;
  #queue: TickQueue | undefined;
  #ready = false;
  #readyAt = 0;
  #everReady = false;
  #attempt = 0;
  #lastActivityAt = 0;
  #nextReqId = 1;
  #reqSymbols = new Map<number, string>();
  #symbolReqs = new Map<string, number>();
  #lastPrice = new Map<number, number>();
  /** The last connection-level error of the current session, read when it ends before becoming ready. */
  #sessionError: Error | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(config: IbFeedConfig, defaultSymbols: readonly string[], environment: IbEnvironment = {}) {
    this.#config = config;
    this.name = config.name ?? 'ib';
    this.#symbols = configuredSymbols('ib', config.symbols, defaultSymbols);
    const url = new URL(config.url);
    this.#host = url.hostname;
    this.#port = Number(url.port);
    this.#createApi = environment.createApi;
    this.#loadLibrary = environment.loadLibrary ?? (() => import('@stoqey/ib'));
    this.#random = environment.random ?? Math.random;
    this.#log = environment.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  symbols(): string[] {
    return [...this.#symbols];
  }

  addSymbol(symbol: string): void {
    if (this.#symbols.includes(symbol)) return;
    this.#symbols = [...this.#symbols, symbol];
    delete this.#status.symbolErrors[symbol];
    if (this.#ready) this.#subscribe(symbol);
  }

  removeSymbol(symbol: string): void {
    this.#symbols = this.#symbols.filter((existing) => existing !== symbol);
    const reqId = this.#symbolReqs.get(symbol);
    if (reqId === undefined) return;
    this.#symbolReqs.delete(symbol);
    this.#reqSymbols.delete(reqId);
    if (this.#ready && this.#api) {
      if (this.#config.mode === 'tickByTick') this.#api.cancelTickByTickData(reqId);
      else this.#api.cancelMktData(reqId);
    }
  }

  status(): IbStatus {
    return { ...this.#status, symbolErrors: { ...this.#status.symbolErrors } };
  }

  async *run(_position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    const queue = new TickQueue();
    this.#queue = queue;
    this.#status = IbFeed.#freshStatus();
    this.#attempt = 0;
    this.#everReady = false;
    this.#library ??= await this.#loadLibrary();
    this.#watchdog = setInterval(
      () => this.#checkStale(),
      Math.max(10, Math.min(1_000, this.#config.staleAfter / 4)),
    );
    this.#connect();
    try {
      yield* queue.batches(signal);
    } finally {
      this.#stop(this.#status.state === 'fatal' ? 'fatal' : 'stopped');
    }
  }

  static #freshStatus(): IbStatus {
    return {
      state: 'idle',
      connected: false,
      reconnects: 0,
      failedAttempts: 0,
      lastConnectedAt: null,
      messages: 0,
      lastMessageAt: null,
      malformed: 0,
      symbolErrors: {},
    };
  }

  #connect(): void {
    if (this.#status.state === 'idle') this.#status.state = 'connecting';
    this.#ready = false;
    this.#sessionError = undefined;
    this.#lastActivityAt = Date.now();
    this.#reqSymbols.clear();
    this.#symbolReqs.clear();
    this.#lastPrice.clear();
    const { IBApi, EventName } = this.#library!;
    const options = { host: this.#host, port: this.#port, clientId: this.#config.clientId };
    const api = this.#createApi ? this.#createApi(options) : new IBApi(options);
    this.#api = api;
    // Every handler checks it still belongs to the live session: a replaced one may still emit.
    const live = (): boolean => this.#api === api;
    api.on(EventName.received, () => {
      if (!live()) return;
      this.#lastActivityAt = Date.now();
      this.#status.messages += 1;
      this.#status.lastMessageAt = this.#lastActivityAt;
    });
    api.on(EventName.nextValidId, () => {
      if (live() && !this.#ready) this.#onReady();
    });
    api.on(
      EventName.tickByTickAllLast,
      (reqId: number, _tickType: number, time: string, price: number, size) => {
        const symbol = live() ? this.#reqSymbols.get(reqId) : undefined;
        if (symbol === undefined) return;
        // IB stamps tick-by-tick trades in whole seconds; the record keeps what IB sent, as sent.
        this.#queue?.push({ source: this.defaultSource, symbol, ts: Number(time) * 1000, price, size });
      },
    );
    api.on(EventName.tickPrice, (reqId: number, tickType: number, price: number) => {
      if (live() && (tickType === LAST || tickType === DELAYED_LAST)) this.#lastPrice.set(reqId, price);
    });
    api.on(EventName.tickSize, (reqId: number, tickType?: number, size?: number) => {
      if (!live() || (tickType !== LAST_SIZE && tickType !== DELAYED_LAST_SIZE)) return;
      const symbol = this.#reqSymbols.get(reqId);
      const price = this.#lastPrice.get(reqId);
      if (symbol === undefined || price === undefined) return;
      this.#queue?.push({ source: this.defaultSource, symbol, ts: Date.now(), price, size });
    });
    api.on(EventName.error, (error: Error, code: number, reqId: number) => {
      if (!live()) return;
      if (reqId === undefined || reqId < 0) this.#sessionError = error;
      this.#onError(error.message, code, reqId);
    });
    // TWS reports connection-level problems (no request id) as info: 326, 1100, 1101...
    api.on(EventName.info, (message: string, code: number) => {
      if (live()) this.#onError(message, code, -1);
    });
    api.on(EventName.disconnected, () => {
      if (live()) this.#lost('disconnected by TWS/Gateway');
    });
    api.connect(this.#config.clientId);
  }

  #onReady(): void {
    this.#ready = true;
    this.#readyAt = Date.now();
    if (this.#everReady) this.#status.reconnects += 1;
    const failed = this.#status.failedAttempts;
    if (failed > 0 || this.#status.reconnects > 0 || this.#status.lastConnectedAt === null) {
      const after = failed > 0 ? ` after ${failed} failed attempt${failed === 1 ? '' : 's'}` : '';
      this.#log(
        `[${this.name}] ${this.#everReady ? 'reconnected' : 'connected'} to ${this.#address()}${after}`,
      );
    }
    this.#everReady = true;
    this.#status.state = 'connected';
    this.#status.connected = true;
    this.#status.failedAttempts = 0;
    this.#status.lastConnectedAt = this.#readyAt;
    delete this.#status.cause;
    delete this.#status.causeKind;
    if (this.#config.mode === 'marketData') this.#api?.reqMarketDataType(this.#config.marketDataType);
    for (const symbol of this.#symbols) {
      if (this.#status.symbolErrors[symbol] === undefined) this.#subscribe(symbol);
    }
    this.#heartbeat = setInterval(() => {
      if (this.#ready) this.#api?.reqCurrentTime();
    }, this.#config.heartbeatInterval);
  }

  #subscribe(symbol: string): void {
    const api = this.#api;
    if (!api) return;
    const reqId = this.#nextReqId++;
    this.#reqSymbols.set(reqId, symbol);
    this.#symbolReqs.set(symbol, reqId);
    const contract = {
      symbol,
      secType: this.#config.secType as SecType,
      exchange: this.#config.exchange,
      currency: this.#config.currency,
    };
    if (this.#config.mode === 'tickByTick')
      api.reqTickByTickData(reqId, contract, 'AllLast' as TickByTickDataType, 0, false);
    else api.reqMktData(reqId, contract, '', false, false);
  }

  #onError(message: string, code: number, reqId: number): void {
    if (code === DECODE_ERROR) {
      this.#status.malformed += 1;
      return;
    }
    if (FATAL_CODES.has(code)) {
      this.#fail(`IB error ${code}: ${message}`);
      return;
    }
    const symbol = this.#reqSymbols.get(reqId);
    if (symbol !== undefined && SYMBOL_FATAL_CODES.has(code)) {
      this.#status.symbolErrors[symbol] = `IB error ${code}: ${message}`;
      this.#reqSymbols.delete(reqId);
      this.#symbolReqs.delete(symbol);
      if (this.#symbols.every((name) => this.#status.symbolErrors[name] !== undefined)) {
        this.#fail(`no symbol can be streamed: ${JSON.stringify(this.#status.symbolErrors)}`);
      }
      return;
    }
    if (code === RESTORED_DATA_LOST && this.#ready) {
      for (const name of [...this.#symbolReqs.keys()]) this.#subscribe(name);
    }
    this.#status.lastError = `IB ${code}: ${message}`;
  }

  #checkStale(): void {
    if (!this.#api || this.#reconnectTimer) return;
    if (Date.now() - this.#lastActivityAt > this.#config.staleAfter) {
      this.#lost(`stale: nothing received for ${this.#config.staleAfter} ms`, 'stale');
    }
  }

  /** The session ended: a ready one dropped (`reconnecting`) or one never got ready (`failing`). */
  #lost(reason: string, kind?: CauseKind): void {
    const state = this.#status.state;
    if (state === 'fatal' || state === 'stopped' || this.#reconnectTimer) return;
    const wasReady = this.#ready;
    const upFor = wasReady ? Date.now() - this.#readyAt : 0;
    const cause =
      kind !== undefined
        ? { kind, message: reason }
        : wasReady
          ? { kind: 'closed' as const, message: `${reason} after ${Math.round(upFor / 1000)} s` }
          : classifyConnectError(
              this.#sessionError ?? new Error(reason),
              `tcp://${this.#host}:${this.#port}`,
            );
    this.#status.lastError = cause.message;
    this.#status.cause = cause.message;
    this.#status.causeKind = cause.kind;
    this.#dropSession();
    if (upFor >= this.#config.stableAfter) this.#attempt = 0;
    const cap = Math.min(this.#config.maxBackoff, this.#config.initialBackoff * 2 ** this.#attempt);
    this.#attempt += 1;
    const delay = this.#random() * cap;
    if (wasReady) {
      this.#status.state = 'reconnecting';
      this.#log(
        `[${this.name}] connection lost (${cause.message}); reconnecting in ${formatDuration(delay)}`,
      );
    } else {
      this.#status.state = 'failing';
      const attempts = ++this.#status.failedAttempts;
      this.#log(
        `[${this.name}] cannot connect to ${this.#address()}: ${cause.message}; ` +
          `${attempts} failed attempt${attempts === 1 ? '' : 's'}, retrying in ${formatDuration(delay)}`,
      );
    }
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#status.state === 'reconnecting' || this.#status.state === 'failing') this.#connect();
    }, delay);
  }

  #address(): string {
    return `tcp://${this.#host}:${this.#port}`;
  }

  #fail(reason: string): void {
    if (this.#status.state === 'fatal' || this.#status.state === 'stopped') return;
    this.#status.fatal = reason;
    this.#status.cause = reason;
    this.#status.causeKind = 'provider';
    this.#log(`[${this.name}] fatal, not retrying: ${reason}`);
    this.#stop('fatal');
    this.#queue?.fail(new IbFatalError(`ib feed: ${reason} (not retrying)`));
  }

  #dropSession(): void {
    const api = this.#api;
    this.#api = undefined;
    this.#ready = false;
    this.#status.connected = false;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    if (!api) return;
    api.removeAllListeners();
    // A late socket error must not become an unhandled 'error' event.
    if (this.#library) api.on(this.#library.EventName.error, () => undefined);
    api.disconnect();
  }

  #stop(state: 'fatal' | 'stopped'): void {
    this.#status.state = state;
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#reconnectTimer = undefined;
    this.#watchdog = undefined;
    this.#dropSession();
  }
}
