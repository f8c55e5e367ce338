/**
 * The common body of a live trade feed: a `WsConnection`, a queue of decoded trades handed to ingest in
 * batches, the last trade per symbol as the feed position, and gap filling over REST after a drop or a restart.
 * A provider supplies a `LiveProvider` (URL, subscribe messages, message decoding, REST history); everything
 * else (reconnects, resubscribes, watchdog, status, backfill bookkeeping) lives here once.
 */
import type { Feed, FeedBatch, FeedHealth } from '../feed.ts';
import { RestFatalError } from './rest.ts';
import {
  type ConnectionState,
  type ConnectionStatus,
  WsConnection,
  type WsConnectionOptions,
} from './ws-connection.ts';

/** A raw tick as adapters emit it; ingest validates it (docs/design.md, Rules). Prices are JS floats, as the tick schema holds. */
export interface RawTrade {
  source: string;
  symbol: string;
  ts: number;
  price: number;
  size: number;
  /** The provider's trade id; absent when the provider sends none (Finnhub). */
  id?: string;
  side?: 'buy' | 'sell';
}

/** Where a live feed stands: the last trade seen per stored symbol. */
export interface LivePosition {
  last: Record<string, { id: string; ts: number }>;
}

/** What a message decoder can ask of the feed. */
export interface MessageSink {
  trade(trade: RawTrade): void;
  /** A message the decoder could not use (bad JSON, missing fields): counted, never thrown. */
  malformed(detail: string): void;
  /** An error that retrying cannot fix: stops the feed and shows the reason in its status. */
  fatal(reason: string): void;
  /** Something says the stream is broken (e.g. a heartbeat shows missed trades): reconnect and backfill. */
  reconnect(reason: string): void;
  /** Trades were missed on a connection that is still fine (e.g. a heartbeat's last trade id is ahead): fill over REST. */
  gap(reason: string): void;
  /** Replace the connection without a gap (e.g. Binance `serverShutdown`). */
  rotate(reason: string): void;
  /** The last trade id seen for a stored symbol. */
  lastId(symbol: string): string | undefined;
  /** A provider error message that does not stop the feed (e.g. too many symbols): shown in its status. */
  providerError(detail: string): void;
  /** Sends a message on the open connection (e.g. a subscription once authenticated); false when none is open. */
  send(message: unknown): boolean;
  /** The feed's symbols now, as the provider spells them. */
  symbols(): readonly string[];
}

/** Pages of history, oldest first, each page ascending. */
export type TradePages = AsyncIterable<RawTrade[]>;

export interface HistoryRequest {
  /** Provider spelling of the symbol (as configured). */
  symbol: string;
  /** Start strictly after this trade id when known (gap fill), else at `fromMs`. */
  afterId?: string;
  fromMs: number;
  /** Stop once trades reach this time (inclusive). */
  toMs: number;
  signal: AbortSignal;
}

/** Connection settings a provider chooses; `LiveTradeFeed` wires the callbacks itself. */
export type ProviderConnectionOptions = Omit<
  WsConnectionOptions,
  'onMessage' | 'onOpen' | 'onDrop' | 'onFatal' | 'subscribeMessages'
>;

/** Parses a text message; reports it to `sink` as malformed and gives `undefined` when it is not JSON. */
export function decodeJson(text: string, sink: MessageSink): unknown {
  try {
    return JSON.parse(text);
  } catch {
    sink.malformed(`not JSON: ${text}`);
    return undefined;
  }
}

/** Parses a text message that must be one JSON object; reports it to `sink` as malformed otherwise. */
export function decodeJsonObject(text: string, sink: MessageSink): Record<string, unknown> | undefined {
  const message = decodeJson(text, sink);
  if (message === undefined) return undefined;
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    sink.malformed(`not an object: ${text}`);
    return undefined;
  }
  return message as Record<string, unknown>;
}

export interface LiveProvider {
  /** `source` of the ticks: the provider's name. */
  readonly source: string;
  /** Connection settings beyond the callbacks this class wires itself; `symbols` gives the current ones. */
  connection(symbols: () => readonly string[]): ProviderConnectionOptions;
  /** Called when a socket opens and when the live one drops, for providers with per-connection state (auth). */
  connectionChanged?(event: 'open' | 'drop'): void;
  /** Messages that subscribe the given provider symbols; sent on every open. */
  subscribeMessages(symbols: readonly string[]): unknown[];
  /** Messages to change the subscription while connected (undefined: reconnect instead). */
  subscriptionChange?(action: 'add' | 'remove', symbol: string): unknown[];
  /** Decodes one text message. */
  decode(text: string, sink: MessageSink): void;
  /** Stored symbol (upper-cased, as the provider's messages carry it) of a configured provider symbol. */
  storedSymbol(symbol: string): string;
  /** Provider spelling of a symbol given by a user at run time (already upper-cased). */
  providerSymbol(symbol: string): string;
  /** REST trade history, when the provider has one. */
  history?(request: HistoryRequest): TradePages;
}

/** Connection state and gap-fill counters, merged into the feed's status by ingest (see `FeedHealth`). */
export interface LiveFeedStatus extends FeedHealth {
  state: ConnectionState;
  connected: boolean;
  reconnects: number;
  failedAttempts: number;
  lastConnectedAt: number | null;
  backfilled: number;
  malformed: number;
  fatal?: string;
  /** The provider's last non-fatal error message. */
  providerError?: string;
}

export interface LiveFeedOptions {
  name: string;
  type: string;
  symbols: readonly string[];
  provider: LiveProvider;
  /** Gap fills never reach back further than this (a long outage is better served by `streamlines backfill`). */
  maxBackfillMs?: number;
  /** Overrides of the connection's timing, for tests. */
  tuning?: Partial<WsConnectionOptions>;
  log?: (line: string) => void;
}

const DEFAULT_MAX_BACKFILL_MS = 3_600_000;
const GAP_FILL_MARGIN_MS = 10_000;

/** A live feed over one WebSocket connection, with REST gap filling. */
export class LiveTradeFeed implements Feed {
  readonly name: string;
  readonly type: string;
  readonly bounded = false;
  readonly defaultSource: string;
  readonly #options: LiveFeedOptions;
  readonly #provider: LiveProvider;
  /** Provider spellings, in configured order. */
  #symbols: string[];
  #pending: RawTrade[] = [];
  #wake: (() => void) | undefined;
  #position: LivePosition = { last: {} };
  #connection: WsConnection | undefined;
  #backfills = new Map<string, AbortController>();
  #backfilled = 0;
  #malformed = 0;
  #providerError: string | undefined;
  #fatal: string | undefined;
  #runSignal: AbortSignal | undefined;

  constructor(options: LiveFeedOptions) {
    this.#options = options;
    this.#provider = options.provider;
    this.name = options.name;
    this.type = options.type;
    this.defaultSource = options.provider.source;
    this.#symbols = [...options.symbols];
    if (this.#symbols.length === 0) throw new Error(`${options.type} feed: no symbols configured`);
  }

  symbols(): string[] {
    return this.#symbols.map((symbol) => this.#provider.storedSymbol(symbol));
  }

  addSymbol(symbol: string): void {
    const spelled = this.#provider.providerSymbol(symbol);
    if (this.#symbols.includes(spelled)) return;
    this.#symbols = [...this.#symbols, spelled];
    this.#changeSubscription('add', spelled);
  }

  removeSymbol(symbol: string): void {
    const spelled = this.#symbols.find((candidate) => this.#provider.storedSymbol(candidate) === symbol);
    if (spelled === undefined) return;
    this.#symbols = this.#symbols.filter((candidate) => candidate !== spelled);
    this.#changeSubscription('remove', spelled);
  }

  status(): LiveFeedStatus {
    const connection: ConnectionStatus | undefined = this.#connection?.status();
    const status: LiveFeedStatus = {
      state: connection?.state ?? 'idle',
      connected: connection?.connected ?? false,
      reconnects: connection?.reconnects ?? 0,
      failedAttempts: connection?.failedAttempts ?? 0,
      lastConnectedAt: connection?.lastConnectedAt ?? null,
      backfilled: this.#backfilled,
      malformed: this.#malformed,
    };
    if (connection?.cause !== undefined) status.cause = connection.cause;
    if (connection?.causeKind !== undefined) status.causeKind = connection.causeKind;
    if (this.#fatal !== undefined) status.fatal = this.#fatal;
    if (this.#providerError !== undefined) status.providerError = this.#providerError;
    return status;
  }

  /** The connection's own counters (messages, rotations, state), for diagnostics and tests. */
  connectionStatus(): ConnectionStatus | undefined {
    return this.#connection?.status();
  }

  async *run(position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    this.#position = restorePosition(position);
    this.#runSignal = signal;
    this.#fatal = undefined;
    this.#providerError = undefined;
    this.#malformed = 0;
    const connection = new WsConnection({
      ...this.#provider.connection(() => this.#symbols),
      ...this.#options.tuning,
      // Log lines name the feed as configured, so two feeds of one provider are told apart.
      name: this.name,
      log: this.#options.log ?? this.#options.tuning?.log,
      subscribeMessages: () => this.#provider.subscribeMessages(this.#symbols),
      onMessage: (text) => this.#provider.decode(text, this.#sink),
      onOpen: (info) => {
        this.#provider.connectionChanged?.('open');
        // The first open of a restarted feed and every open after a drop may follow a gap.
        if (!info.rotation) this.#fillGaps();
      },
      onDrop: () => this.#provider.connectionChanged?.('drop'),
      onFatal: (reason) => {
        this.#fatal = reason;
        this.#wakeUp();
      },
    });
    this.#connection = connection;
    const onAbort = () => this.#wakeUp();
    signal.addEventListener('abort', onAbort, { once: true });
    connection.start();
    try {
      while (!signal.aborted) {
        if (this.#pending.length === 0 && this.#fatal === undefined) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          this.#wake = undefined;
        }
        if (this.#pending.length > 0) {
          const values = this.#pending;
          this.#pending = [];
          yield { values, position: this.#snapshot() };
          continue;
        }
        if (this.#fatal !== undefined) throw new Error(`${this.name}: ${this.#fatal}`);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      connection.stop();
      for (const controller of this.#backfills.values()) controller.abort();
      this.#backfills.clear();
    }
  }

  readonly #sink: MessageSink = {
    trade: (trade) => this.#push(trade, false),
    malformed: (detail) => {
      this.#malformed += 1;
      if (this.#malformed <= 5 || this.#malformed % 1000 === 0) {
        this.#log(`malformed message #${this.#malformed}: ${detail.slice(0, 200)}`);
      }
    },
    fatal: (reason) => this.#connection?.fail(reason),
    reconnect: (reason) => this.#connection?.reconnect(reason),
    rotate: (reason) => this.#connection?.rotate(reason),
    gap: (reason) => {
      if (this.#backfills.size > 0) return; // a fill is already under way and reaches past now
      this.#log(`gap detected (${reason}); filling it over REST`);
      this.#fillGaps();
    },
    lastId: (symbol) => this.#position.last[symbol]?.id,
    providerError: (detail) => {
      this.#providerError = detail;
      this.#log(`provider error: ${detail.slice(0, 200)}`);
    },
    send: (message) => this.#connection?.send(message) ?? false,
    symbols: () => this.#symbols,
  };

  #push(trade: RawTrade, backfill: boolean): void {
    this.#pending.push(trade);
    if (backfill) this.#backfilled += 1;
    if (trade.id === undefined) {
      this.#wakeUp();
      return;
    }
    const last = this.#position.last[trade.symbol];
    if (last === undefined || compareIds(trade.id, last.id) > 0) {
      this.#position.last[trade.symbol] = { id: trade.id, ts: trade.ts };
    }
    this.#wakeUp();
  }

  #wakeUp(): void {
    this.#wake?.();
  }

  #snapshot(): LivePosition {
    const last: LivePosition['last'] = {};
    for (const [symbol, trade] of Object.entries(this.#position.last)) last[symbol] = { ...trade };
    return { last };
  }

  #changeSubscription(action: 'add' | 'remove', symbol: string): void {
    const connection = this.#connection;
    if (!connection) return;
    const messages = this.#provider.subscriptionChange?.(action, symbol);
    if (messages === undefined) {
      connection.reconnect(`symbols changed (${action} ${symbol})`);
      return;
    }
    for (const message of messages) connection.send(message);
  }

  /** Starts one REST gap fill per symbol whose last trade is known, from it up to now. */
  #fillGaps(): void {
    const history = this.#provider.history?.bind(this.#provider);
    if (!history) return;
    const now = Date.now();
    const maxBackfillMs = this.#options.maxBackfillMs ?? DEFAULT_MAX_BACKFILL_MS;
    for (const symbol of this.#symbols) {
      const stored = this.#provider.storedSymbol(symbol);
      const last = this.#position.last[stored];
      if (last === undefined) continue;
      this.#backfills.get(stored)?.abort();
      const controller = new AbortController();
      this.#backfills.set(stored, controller);
      const tooOld = now - last.ts > maxBackfillMs;
      const request: HistoryRequest = {
        symbol,
        afterId: tooOld ? undefined : last.id,
        fromMs: tooOld ? now - maxBackfillMs : last.ts,
        // A little past now: trades between the open and the subscription taking effect are covered too.
        toMs: now + GAP_FILL_MARGIN_MS,
        signal: controller.signal,
      };
      this.#runBackfill(stored, request, history, controller).catch(() => undefined);
    }
  }

  async #runBackfill(
    stored: string,
    request: HistoryRequest,
    history: (request: HistoryRequest) => TradePages,
    controller: AbortController,
  ): Promise<void> {
    let count = 0;
    try {
      for await (const page of history(request)) {
        if (controller.signal.aborted || this.#runSignal?.aborted) return;
        for (const trade of page) this.#push(trade, true);
        count += page.length;
      }
      if (count > 0) this.#log(`backfilled ${count} trades of ${stored}`);
    } catch (error) {
      if (controller.signal.aborted) return;
      const message = error instanceof Error ? error.message : String(error);
      // A failed gap fill leaves a hole but must not stop the live stream.
      this.#log(
        `backfill of ${stored} failed${error instanceof RestFatalError ? ' (not retried)' : ''}: ${message}`,
      );
    } finally {
      if (this.#backfills.get(stored) === controller) this.#backfills.delete(stored);
    }
  }

  #log(line: string): void {
    const log = this.#options.log ?? this.#options.tuning?.log;
    (log ?? ((text: string) => process.stderr.write(`${text}\n`)))(`[${this.name}] ${line}`);
  }
}

/** Orders numeric trade ids without losing precision past 2^53; non-numeric ids compare as text. */
export function compareIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    if (a.length !== b.length) return a.length - b.length;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function restorePosition(position: unknown): LivePosition {
  const saved = position as Partial<LivePosition> | undefined;
  const last: LivePosition['last'] = {};
  if (saved && typeof saved.last === 'object' && saved.last !== null) {
    for (const [symbol, trade] of Object.entries(saved.last)) {
      if (trade && typeof trade.id === 'string' && typeof trade.ts === 'number') last[symbol] = { ...trade };
    }
  }
  return { last };
}
