/**
 * A self-healing WebSocket client for live market-data feeds, shared by every streaming adapter.
 *
 * What it does for an adapter:
 * - connects with `ws` and, on EVERY open, sends the adapter's current subscribe messages
 *   (`subscribeMessages()` is re-evaluated each time, so it always reflects the desired symbols);
 * - reconnects after any drop with capped exponential backoff and full jitter
 *   (delay = random() * min(maxBackoffMs, initialBackoffMs * 2^attempt)); the attempt counter resets once a
 *   connection has stayed up for `stableAfterMs`;
 * - a staleness watchdog: no message and no server ping for `staleAfterMs` ⇒ drop and reconnect;
 * - answers WebSocket pings (`ws` does it) and can send an app-level heartbeat (`heartbeat`) for providers
 *   that want one (Kraken `ping`);
 * - rotates proactively before a provider's connection lifetime ends (`maxLifetimeMs`, Binance 24 h) or when the
 *   adapter calls `rotate()` (Binance `serverShutdown`): a second socket opens and subscribes, and the old one
 *   closes once the new one delivers its first message (or after `rotationOverlapMs`), so no gap opens;
 * - fatal errors stop it for good: the adapter calls `fail(reason)` when a message says the problem cannot heal
 *   (bad key, no entitlement, unknown product), and an HTTP upgrade refusal is classified by
 *   `classifyUpgradeStatus` (default: 401, 403, 451 are fatal). `status().fatal` then says why;
 * - outgoing messages go through a queue limited to `maxOutgoingPerSecond` (Binance disconnects above 5/s);
 * - counts connects, reconnects, rotations, failed attempts and messages, and exposes its state through
 *   `status()`: `connecting` (first attempt under way), `connected`, `reconnecting` (a connection that was up
 *   dropped), `failing` (attempts keep failing; `failedAttempts` counts them) or `fatal`, with the `cause` of
 *   anything but `connected` classified (`causeKind`: DNS failure, refused, TLS, HTTP status, timeout...), so
 *   status and log lines say what really happened: an attempt that never opened is a failed attempt, never
 *   a "lost connection";
 * - takes its time from an injected `Clock` (timers and now), so tests drive backoff and watchdogs directly.
 *
 * Gap handling is the adapter's job: `onOpen` tells it whether this open follows a drop (`afterDrop`), so it
 * can fetch what it missed over REST. Messages are handed over as text, unparsed, from whichever socket is
 * live; during a rotation overlap both sockets deliver, so the adapter sees some messages twice (ingest's dedup
 * by trade id makes that harmless).
 */
import type { LookupFunction } from 'node:net';
import { WebSocket } from 'ws';
import type { FeedCauseKind } from '../../core/pipeline-view.ts';
import { type Clock, scheduleEvery, systemClock, type Timer } from './clock.ts';

/**
 * `idle` before `start()`; `connecting` while the first attempt is under way; `connected` while a socket is
 * open; `reconnecting` after an open connection dropped, until the next attempt opens or fails; `failing`
 * while attempts fail (none opened since the last failure); `fatal` when retrying cannot help; `stopped`.
 */
export type ConnectionState =
  | 'idle'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'failing'
  | 'fatal'
  | 'stopped';

/** What kind of problem a `cause` is; the vocabulary FeedStatus shows (see `FeedCauseKind`). */
export type CauseKind = FeedCauseKind;

export interface ConnectionStatus {
  state: ConnectionState;
  connected: boolean;
  /** Opens after the first one that followed a drop (rotations are not counted here). */
  reconnects: number;
  rotations: number;
  /** Connection attempts that failed before opening, since the connection was last open (0 while open). */
  failedAttempts: number;
  /** Why the connection is not `connected` (the last failure or drop, or the fatal reason); unset while connected. */
  cause?: string;
  causeKind?: CauseKind;
  /** When a socket last opened (ms); null until one has. */
  lastConnectedAt: number | null;
  /** Text messages received over all sockets. */
  messages: number;
  lastMessageAt: number | null;
  /** Why the connection stopped for good; set only in state `fatal`. */
  fatal?: string;
  /** The last non-fatal problem (drop, stall, refused upgrade), for diagnostics; kept after reconnecting. */
  lastError?: string;
}

/** A problem, classified. */
export interface ConnectionCause {
  kind: CauseKind;
  message: string;
}

/** Names the error of a connection attempt the way a user can act on it (see `CauseKind`). */
export function classifyConnectError(error: Error | undefined, url: string): ConnectionCause {
  const where = hostOf(url);
  if (error === undefined)
    return { kind: 'network', message: `connection to ${where} closed before it opened` };
  const code = errorCode(error);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL' || code === 'EAI_NONAME') {
    const hint = code === 'EAI_AGAIN' ? 'temporary DNS failure' : 'the host does not resolve';
    return { kind: 'dns', message: `DNS lookup failed for ${hostnameOf(url)} (${code}: ${hint})` };
  }
  if (code === 'ECONNREFUSED')
    return { kind: 'refused', message: `connection refused by ${where} (nothing listens there)` };
  if (
    (code !== undefined &&
      /CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|EPROTO/.test(code)) ||
    /SSL routines|TLS/.test(error.message)
  ) {
    return { kind: 'tls', message: `TLS handshake with ${where} failed (${code}: ${error.message})` };
  }
  if (code === 'ETIMEDOUT' || /timed out/i.test(error.message)) {
    return { kind: 'timeout', message: `no answer from ${where} in time (${code ?? error.message})` };
  }
  return { kind: 'network', message: `${where}: ${code ? `${code}: ` : ''}${error.message}` };
}

/** `scheme://host:port/path` of a URL, without its query (which may hold a token). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function hostOf(url: string): string {
  try {
    const parsed = new URL(url);
    const port = parsed.port || (parsed.protocol === 'wss:' || parsed.protocol === 'https:' ? '443' : '80');
    return `${parsed.hostname}:${port}`;
  } catch {
    return url;
  }
}

function hostnameOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

/** The system error code of an error, looking inside an AggregateError (one per address tried). */
function errorCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const inner = (error as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner[0] instanceof Error) return errorCode(inner[0]);
  // Libraries that rewrap socket errors (the IB client) keep the code only in the message.
  return /\b(E[A-Z]{4,}|EAI_[A-Z]+)\b/.exec(error.message)?.[1];
}

export interface OpenInfo {
  /** True when the previous socket dropped (not on the first open and not on a rotation): a gap may exist. */
  afterDrop: boolean;
  /** True when this socket replaces a live one proactively (no gap: the old one still delivers). */
  rotation: boolean;
}

export interface WsConnectionOptions {
  /** Names the connection in log lines. */
  name: string;
  /** The URL to connect to, evaluated on every attempt. */
  url: () => string;
  /** Sent, in order and rate-limited, after every open. */
  subscribeMessages: () => unknown[];
  /** Every text message from the provider, unparsed. */
  onMessage: (text: string) => void;
  onOpen?: (info: OpenInfo) => void;
  /** Called when the live socket is lost (before the reconnect is scheduled). */
  onDrop?: (reason: string) => void;
  /** Called once when the connection stops for good. */
  onFatal?: (reason: string) => void;
  /** Returns a reason when an HTTP status refusing the upgrade means retrying cannot help. */
  classifyUpgradeStatus?: (status: number, body: string) => string | undefined;
  headers?: Record<string, string>;
  staleAfterMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A connection up this long resets the backoff. */
  stableAfterMs?: number;
  /** Rotate before this age (undefined: never). */
  maxLifetimeMs?: number;
  /** Longest time the old socket stays open during a rotation. */
  rotationOverlapMs?: number;
  maxOutgoingPerSecond?: number;
  /** App-level keep-alive: `message()` is sent every `intervalMs` while open. */
  heartbeat?: { intervalMs: number; message: () => unknown };
  handshakeTimeoutMs?: number;
  /** Injected in tests; defaults to Math.random. */
  random?: () => number;
  /** Time and timers; injected in tests (default: the system clock). */
  clock?: Clock;
  /** Host name resolution (default: the system's); injected in tests that must not query a DNS server. */
  lookup?: LookupFunction;
  /** Where log lines go (default: stderr). */
  log?: (line: string) => void;
}

const DEFAULTS = {
  staleAfterMs: 30_000,
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
  stableAfterMs: 10_000,
  rotationOverlapMs: 10_000,
  maxOutgoingPerSecond: 5,
  handshakeTimeoutMs: 10_000,
};

/** Default upgrade classification: auth failures and geo-blocks do not heal by retrying. */
export function defaultUpgradeClassifier(status: number, body: string): string | undefined {
  if (status === 401) return `HTTP 401 unauthorised (check the API key): ${body}`.trim();
  if (status === 403) return `HTTP 403 forbidden (key, entitlement or WAF block): ${body}`.trim();
  if (status === 451) return `HTTP 451 unavailable from this location: ${body}`.trim();
  return undefined;
}

/** One socket and what belongs to it: its outgoing queue and its timers. */
interface Socket {
  ws: WebSocket;
  /** When it opened; 0 while it has not. */
  openedAt: number;
  lastActivityAt: number;
  queue: string[];
  sendTimer: Timer | undefined;
  lastSendAt: number;
  heartbeatTimer: Timer | undefined;
  gotMessage: boolean;
  /** The last 'error' event, read when 'close' follows it. */
  error: Error | undefined;
  /** Set once we decided to drop it ourselves, so its close event is not treated as a new drop. */
  retired: boolean;
}

/** A reconnecting, resubscribing, watchdog-guarded WebSocket connection (see the file comment). */
export class WsConnection {
  readonly #options: WsConnectionOptions;
  readonly #staleAfterMs: number;
  readonly #initialBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #stableAfterMs: number;
  readonly #rotationOverlapMs: number;
  readonly #sendIntervalMs: number;
  readonly #random: () => number;
  readonly #clock: Clock;
  #current: Socket | undefined;
  #standby: Socket | undefined;
  #attempt = 0;
  #everOpened = false;
  #dropped = false;
  #retryAfterMs = 0;
  #reconnectTimer: Timer | undefined;
  #watchdog: Timer | undefined;
  #lifetimeTimer: Timer | undefined;
  #overlapTimer: Timer | undefined;
  #status: ConnectionStatus = {
    state: 'idle',
    connected: false,
    reconnects: 0,
    rotations: 0,
    failedAttempts: 0,
    lastConnectedAt: null,
    messages: 0,
    lastMessageAt: null,
  };

  constructor(options: WsConnectionOptions) {
    this.#options = options;
    this.#staleAfterMs = options.staleAfterMs ?? DEFAULTS.staleAfterMs;
    this.#initialBackoffMs = options.initialBackoffMs ?? DEFAULTS.initialBackoffMs;
    this.#maxBackoffMs = options.maxBackoffMs ?? DEFAULTS.maxBackoffMs;
    this.#stableAfterMs = options.stableAfterMs ?? DEFAULTS.stableAfterMs;
    this.#rotationOverlapMs = options.rotationOverlapMs ?? DEFAULTS.rotationOverlapMs;
    this.#sendIntervalMs = 1000 / (options.maxOutgoingPerSecond ?? DEFAULTS.maxOutgoingPerSecond);
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? systemClock;
  }

  /** Opens the first socket; later ones open by themselves until `stop()` or a fatal error. */
  start(): void {
    if (this.#status.state !== 'idle') return;
    this.#setState('connecting');
    this.#watchdog = scheduleEvery(this.#clock, Math.max(10, Math.min(1_000, this.#staleAfterMs / 4)), () =>
      this.#checkStale(),
    );
    this.#connect(false);
  }

  /** Closes everything; no reconnect follows. */
  stop(): void {
    if (this.#status.state === 'stopped') return;
    const wasFatal = this.#status.state === 'fatal';
    this.#clearTimers();
    this.#retire(this.#current, 1000, 'client stopping');
    this.#retire(this.#standby, 1000, 'client stopping');
    this.#current = undefined;
    this.#standby = undefined;
    this.#status.connected = false;
    if (!wasFatal) this.#setState('stopped');
  }

  /** Stops for good because of an error that retrying cannot fix; `status().fatal` keeps the reason. */
  fail(reason: string, kind: CauseKind = 'provider'): void {
    const state = this.#status.state;
    if (state === 'fatal' || state === 'stopped') return;
    this.#log(`fatal, not retrying: ${reason}`);
    this.#status.fatal = reason;
    this.#setCause({ kind, message: reason });
    this.#setState('fatal');
    this.stop();
    this.#options.onFatal?.(reason);
  }

  /** Drops the live socket and reconnects (the adapter saw something wrong, e.g. a sequence gap). */
  reconnect(reason: string): void {
    const socket = this.#current;
    const state = this.#status.state;
    if (!socket || state === 'fatal' || state === 'stopped') return;
    this.#lost(socket, { kind: 'provider', message: reason });
  }

  /** Replaces the live socket with a fresh one without a gap (lifetime cap, server shutdown notice). */
  rotate(reason: string): void {
    if (this.#status.state !== 'connected' || this.#standby || !this.#current) return;
    this.#log(`rotating: ${reason}`);
    this.#connect(true);
  }

  /** Queues a message for the live socket (rate-limited); dropped when none is open, as the next open resubscribes. */
  send(message: unknown): boolean {
    const socket = this.#current;
    if (!socket || socket.ws.readyState !== WebSocket.OPEN) return false;
    this.#enqueue(socket, message);
    return true;
  }

  status(): ConnectionStatus {
    return { ...this.#status };
  }

  #connect(rotation: boolean): void {
    const url = this.#options.url();
    const ws = new WebSocket(url, {
      handshakeTimeout: this.#options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
      headers: this.#options.headers,
      perMessageDeflate: false,
      ...(this.#options.lookup ? { lookup: this.#options.lookup } : {}),
    });
    const socket: Socket = {
      ws,
      openedAt: 0,
      lastActivityAt: this.#clock.now(),
      queue: [],
      sendTimer: undefined,
      lastSendAt: 0,
      heartbeatTimer: undefined,
      gotMessage: false,
      error: undefined,
      retired: false,
    };
    if (rotation) this.#standby = socket;
    else this.#current = socket;

    ws.on('unexpected-response', (request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < 500) body += chunk;
      });
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        const retryAfter = Number(response.headers['retry-after']);
        if (Number.isFinite(retryAfter) && retryAfter > 0) this.#retryAfterMs = retryAfter * 1000;
        const classify = this.#options.classifyUpgradeStatus ?? defaultUpgradeClassifier;
        const fatal = classify(status, body.slice(0, 500));
        request.destroy();
        if (socket.retired) return;
        if (fatal !== undefined) this.fail(fatal, 'http');
        else {
          const message = `upgrade refused by ${hostOf(url)}: HTTP ${status} ${body.slice(0, 200)}`.trim();
          this.#lost(socket, { kind: 'http', message });
        }
      });
    });
    ws.on('open', () => this.#opened(socket, rotation));
    ws.on('message', (data, isBinary) => {
      if (socket.retired && socket !== this.#current) return;
      socket.lastActivityAt = this.#clock.now();
      this.#status.messages += 1;
      this.#status.lastMessageAt = socket.lastActivityAt;
      if (!socket.gotMessage) {
        socket.gotMessage = true;
        if (socket === this.#standby) this.#promoteStandby();
      }
      const text = isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString();
      this.#options.onMessage(text);
    });
    ws.on('ping', () => {
      socket.lastActivityAt = this.#clock.now();
    });
    ws.on('error', (error) => {
      socket.error = error;
    });
    ws.on('close', (code, reason) => {
      this.#clearSocketTimers(socket);
      if (socket.retired) return;
      if (socket.openedAt === 0) {
        this.#lost(socket, classifyConnectError(socket.error, url));
        return;
      }
      const text = reason.toString();
      const message = socket.error
        ? classifyConnectError(socket.error, url).message
        : `closed by the server (code ${code}${text ? `: ${text}` : ''})`;
      this.#lost(socket, { kind: socket.error ? 'network' : 'closed', message });
    });
  }

  #opened(socket: Socket, rotation: boolean): void {
    if (socket.retired) return;
    const now = this.#clock.now();
    socket.openedAt = now;
    socket.lastActivityAt = now;
    this.#status.lastConnectedAt = now;
    const afterDrop = !rotation && this.#dropped;
    if (afterDrop) this.#status.reconnects += 1;
    if (rotation) this.#status.rotations += 1;
    if (!rotation) {
      const failed = this.#status.failedAttempts;
      const first = !this.#everOpened;
      const target = redactUrl(this.#options.url());
      if (first || afterDrop || failed > 0) {
        const after = failed > 0 ? ` after ${failed} failed attempt${failed === 1 ? '' : 's'}` : '';
        this.#log(`${first ? 'connected' : 'reconnected'} to ${target}${after}`);
      }
      this.#status.failedAttempts = 0;
      this.#status.connected = true;
      this.#clearCause();
      this.#setState('connected');
      this.#scheduleLifetime();
    } else {
      this.#overlapTimer = this.#clock.schedule(this.#rotationOverlapMs, () => this.#promoteStandby());
    }
    this.#dropped = false;
    this.#everOpened = true;
    for (const message of this.#options.subscribeMessages()) this.#enqueue(socket, message);
    const heartbeat = this.#options.heartbeat;
    if (heartbeat) {
      socket.heartbeatTimer = scheduleEvery(this.#clock, heartbeat.intervalMs, () =>
        this.#enqueue(socket, heartbeat.message()),
      );
    }
    this.#options.onOpen?.({ afterDrop, rotation });
  }

  /** The standby has proved itself (or the overlap ran out): it becomes the live socket. */
  #promoteStandby(): void {
    const standby = this.#standby;
    if (!standby) return;
    this.#overlapTimer?.cancel();
    this.#overlapTimer = undefined;
    const old = this.#current;
    this.#standby = undefined;
    this.#current = standby;
    this.#retire(old, 1000, 'rotated');
    this.#status.connected = standby.ws.readyState === WebSocket.OPEN;
    this.#clearCause();
    this.#setState('connected');
    this.#scheduleLifetime();
  }

  /**
   * A socket failed. A standby is simply discarded. The live one either never opened (a failed attempt:
   * `failing`) or dropped after opening (`reconnecting`); both schedule the next attempt.
   */
  #lost(socket: Socket, cause: ConnectionCause): void {
    const state = this.#status.state;
    if (socket.retired || state === 'fatal' || state === 'stopped') return;
    this.#status.lastError = cause.message;
    if (socket === this.#standby) {
      this.#log(`rotation failed: ${cause.message}`);
      this.#retire(socket, 1000, 'rotation failed');
      this.#standby = undefined;
      this.#overlapTimer?.cancel();
      this.#overlapTimer = undefined;
      return;
    }
    const opened = socket.openedAt > 0;
    const upFor = opened ? this.#clock.now() - socket.openedAt : 0;
    this.#retire(socket, 4000, cause.message);
    this.#current = undefined;
    this.#status.connected = false;
    this.#setCause(cause);
    if (opened) {
      this.#dropped = true;
      this.#options.onDrop?.(cause.message);
      if (this.#standby?.ws.readyState === WebSocket.OPEN) {
        this.#promoteStandby();
        return;
      }
      if (upFor >= this.#stableAfterMs) this.#attempt = 0;
      const delay = this.#scheduleReconnect();
      this.#setState('reconnecting');
      this.#log(
        `connection lost after ${formatDuration(upFor)} (${cause.message}); reconnecting in ${formatDuration(delay)}`,
      );
      return;
    }
    this.#status.failedAttempts += 1;
    const attempts = this.#status.failedAttempts;
    const delay = this.#scheduleReconnect();
    this.#setState('failing');
    this.#log(
      `cannot connect to ${redactUrl(this.#options.url())}: ${cause.message}; ` +
        `${attempts} failed attempt${attempts === 1 ? '' : 's'}, retrying in ${formatDuration(delay)}`,
    );
  }

  /** Schedules the next attempt (full jitter, capped exponential backoff); returns its delay in ms. */
  #scheduleReconnect(): number {
    const cap = Math.min(this.#maxBackoffMs, this.#initialBackoffMs * 2 ** this.#attempt);
    const delay = Math.max(this.#retryAfterMs, this.#random() * cap);
    this.#retryAfterMs = 0;
    this.#attempt += 1;
    this.#reconnectTimer?.cancel();
    this.#reconnectTimer = this.#clock.schedule(delay, () => {
      this.#reconnectTimer = undefined;
      const state = this.#status.state;
      if (state !== 'reconnecting' && state !== 'failing') return;
      // A standby still connecting would become live after it opened; rotation is moot now.
      if (this.#standby) {
        this.#retire(this.#standby, 1000, 'superseded');
        this.#standby = undefined;
      }
      this.#connect(false);
    });
    return delay;
  }

  #scheduleLifetime(): void {
    this.#lifetimeTimer?.cancel();
    this.#lifetimeTimer = undefined;
    const lifetime = this.#options.maxLifetimeMs;
    if (lifetime === undefined) return;
    this.#lifetimeTimer = this.#clock.schedule(lifetime, () => this.rotate('connection lifetime cap'));
  }

  #checkStale(): void {
    const socket = this.#current;
    if (!socket || this.#status.state !== 'connected') return;
    if (this.#clock.now() - socket.lastActivityAt > this.#staleAfterMs) {
      this.#lost(socket, { kind: 'stale', message: `stale: nothing received for ${this.#staleAfterMs} ms` });
    }
  }

  #enqueue(socket: Socket, message: unknown): void {
    socket.queue.push(typeof message === 'string' ? message : JSON.stringify(message));
    this.#drain(socket);
  }

  /** Sends queued messages no faster than the provider's limit. */
  #drain(socket: Socket): void {
    if (socket.sendTimer || socket.retired) return;
    while (socket.queue.length > 0) {
      const wait = socket.lastSendAt + this.#sendIntervalMs - this.#clock.now();
      if (wait > 0) {
        socket.sendTimer = this.#clock.schedule(wait, () => {
          socket.sendTimer = undefined;
          this.#drain(socket);
        });
        return;
      }
      if (socket.ws.readyState !== WebSocket.OPEN) {
        socket.queue.length = 0;
        return;
      }
      socket.lastSendAt = this.#clock.now();
      socket.ws.send(socket.queue.shift()!);
    }
  }

  #retire(socket: Socket | undefined, code: number, reason: string): void {
    if (!socket || socket.retired) return;
    socket.retired = true;
    this.#clearSocketTimers(socket);
    socket.queue.length = 0;
    const { ws } = socket;
    ws.removeAllListeners('message');
    ws.on('error', () => undefined);
    if (ws.readyState === WebSocket.OPEN) ws.close(code, reason.slice(0, 120));
    else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    // A peer that never completes the close handshake must not keep the process alive (a real timer:
    // it guards the process, not the protocol).
    setTimeout(() => ws.terminate(), 2_000).unref();
  }

  #clearSocketTimers(socket: Socket): void {
    socket.sendTimer?.cancel();
    socket.heartbeatTimer?.cancel();
    socket.sendTimer = undefined;
    socket.heartbeatTimer = undefined;
  }

  #clearTimers(): void {
    this.#reconnectTimer?.cancel();
    this.#watchdog?.cancel();
    this.#lifetimeTimer?.cancel();
    this.#overlapTimer?.cancel();
    this.#reconnectTimer = undefined;
    this.#watchdog = undefined;
    this.#lifetimeTimer = undefined;
    this.#overlapTimer = undefined;
  }

  #setState(state: ConnectionState): void {
    this.#status.state = state;
  }

  #setCause(cause: ConnectionCause): void {
    this.#status.cause = cause.message;
    this.#status.causeKind = cause.kind;
  }

  #clearCause(): void {
    delete this.#status.cause;
    delete this.#status.causeKind;
  }

  #log(line: string): void {
    (this.#options.log ?? ((text: string) => process.stderr.write(`${text}\n`)))(
      `[${this.#options.name}] ${line}`,
    );
  }
}

/** `1.2 s`, `340 ms`: a duration for a log line. */
export function formatDuration(ms: number): string {
  return ms < 1_000 ? `${Math.round(ms)} ms` : `${(ms / 1_000).toFixed(1)} s`;
}
