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
 * - counts connects, reconnects, rotations and messages, and exposes its state through `status()`.
 *
 * Gap handling is the adapter's job: `onOpen` tells it whether this open follows a drop (`afterDrop`), so it
 * can fetch what it missed over REST. Messages are handed over as text, unparsed, from whichever socket is
 * live; during a rotation overlap both sockets deliver, so the adapter sees some messages twice (ingest's dedup
 * by trade id makes that harmless).
 */
import { WebSocket } from 'ws';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'backoff' | 'fatal' | 'stopped';

export interface ConnectionStatus {
  state: ConnectionState;
  connected: boolean;
  /** Opens after the first one that followed a drop (rotations are not counted here). */
  reconnects: number;
  rotations: number;
  /** Text messages received over all sockets. */
  messages: number;
  lastMessageAt: number | null;
  /** Why the connection stopped for good; set only in state `fatal`. */
  fatal?: string;
  /** The last non-fatal problem (drop, stall, refused upgrade), for diagnostics. */
  lastError?: string;
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
  openedAt: number;
  lastActivityAt: number;
  queue: string[];
  sendTimer: NodeJS.Timeout | undefined;
  lastSendAt: number;
  heartbeatTimer: NodeJS.Timeout | undefined;
  gotMessage: boolean;
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
  #current: Socket | undefined;
  #standby: Socket | undefined;
  #state: ConnectionState = 'idle';
  #attempt = 0;
  #everOpened = false;
  #dropped = false;
  #retryAfterMs = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #lifetimeTimer: NodeJS.Timeout | undefined;
  #overlapTimer: NodeJS.Timeout | undefined;
  #status: ConnectionStatus = {
    state: 'idle',
    connected: false,
    reconnects: 0,
    rotations: 0,
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
  }

  /** Opens the first socket; later ones open by themselves until `stop()` or a fatal error. */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#setState('connecting');
    this.#watchdog = setInterval(
      () => this.#checkStale(),
      Math.max(10, Math.min(1_000, this.#staleAfterMs / 4)),
    );
    this.#connect(false);
  }

  /** Closes everything; no reconnect follows. */
  stop(): void {
    if (this.#state === 'stopped') return;
    const wasFatal = this.#state === 'fatal';
    this.#clearTimers();
    this.#retire(this.#current, 1000, 'client stopping');
    this.#retire(this.#standby, 1000, 'client stopping');
    this.#current = undefined;
    this.#standby = undefined;
    this.#status.connected = false;
    if (!wasFatal) this.#setState('stopped');
  }

  /** Stops for good because of an error that retrying cannot fix; `status().fatal` keeps the reason. */
  fail(reason: string): void {
    if (this.#state === 'fatal' || this.#state === 'stopped') return;
    this.#log(`fatal, not retrying: ${reason}`);
    this.#status.fatal = reason;
    this.#setState('fatal');
    this.stop();
    this.#options.onFatal?.(reason);
  }

  /** Drops the live socket and reconnects (the adapter saw something wrong, e.g. a sequence gap). */
  reconnect(reason: string): void {
    const socket = this.#current;
    if (!socket || this.#state === 'fatal' || this.#state === 'stopped') return;
    this.#lost(socket, reason);
  }

  /** Replaces the live socket with a fresh one without a gap (lifetime cap, server shutdown notice). */
  rotate(reason: string): void {
    if (this.#state !== 'open' || this.#standby || !this.#current) return;
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
    });
    const socket: Socket = {
      ws,
      openedAt: 0,
      lastActivityAt: Date.now(),
      queue: [],
      sendTimer: undefined,
      lastSendAt: 0,
      heartbeatTimer: undefined,
      gotMessage: false,
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
        if (fatal !== undefined) this.fail(fatal);
        else this.#lost(socket, `upgrade refused: HTTP ${status} ${body.slice(0, 200)}`.trim());
      });
    });
    ws.on('open', () => this.#opened(socket, rotation));
    ws.on('message', (data, isBinary) => {
      if (socket.retired && socket !== this.#current) return;
      socket.lastActivityAt = Date.now();
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
      socket.lastActivityAt = Date.now();
    });
    ws.on('error', (error) => {
      this.#status.lastError = error.message;
    });
    ws.on('close', (code, reason) => {
      this.#clearSocketTimers(socket);
      if (socket.retired) return;
      this.#lost(socket, `closed by server: ${code} ${reason.toString()}`.trim());
    });
  }

  #opened(socket: Socket, rotation: boolean): void {
    if (socket.retired) return;
    socket.openedAt = Date.now();
    socket.lastActivityAt = socket.openedAt;
    const afterDrop = !rotation && this.#dropped;
    if (afterDrop) this.#status.reconnects += 1;
    if (rotation) this.#status.rotations += 1;
    this.#dropped = false;
    this.#everOpened = true;
    if (!rotation) {
      this.#status.connected = true;
      this.#setState('open');
      this.#scheduleLifetime();
    } else {
      this.#overlapTimer = setTimeout(() => this.#promoteStandby(), this.#rotationOverlapMs);
    }
    for (const message of this.#options.subscribeMessages()) this.#enqueue(socket, message);
    const heartbeat = this.#options.heartbeat;
    if (heartbeat) {
      socket.heartbeatTimer = setInterval(
        () => this.#enqueue(socket, heartbeat.message()),
        heartbeat.intervalMs,
      );
    }
    this.#options.onOpen?.({ afterDrop, rotation });
  }

  /** The standby has proved itself (or the overlap ran out): it becomes the live socket. */
  #promoteStandby(): void {
    const standby = this.#standby;
    if (!standby) return;
    if (this.#overlapTimer) clearTimeout(this.#overlapTimer);
    this.#overlapTimer = undefined;
    const old = this.#current;
    this.#standby = undefined;
    this.#current = standby;
    this.#retire(old, 1000, 'rotated');
    this.#status.connected = standby.ws.readyState === WebSocket.OPEN;
    this.#setState('open');
    this.#scheduleLifetime();
  }

  /** A socket failed: a standby is simply discarded; the live one triggers a reconnect (or a promotion). */
  #lost(socket: Socket, reason: string): void {
    if (socket.retired || this.#state === 'fatal' || this.#state === 'stopped') return;
    this.#status.lastError = reason;
    if (socket === this.#standby) {
      this.#log(`rotation failed: ${reason}`);
      this.#retire(socket, 1000, 'rotation failed');
      this.#standby = undefined;
      if (this.#overlapTimer) clearTimeout(this.#overlapTimer);
      this.#overlapTimer = undefined;
      return;
    }
    const upFor = socket.openedAt > 0 ? Date.now() - socket.openedAt : 0;
    this.#retire(socket, 4000, reason);
    this.#current = undefined;
    this.#status.connected = false;
    if (this.#everOpened && socket.openedAt > 0) this.#dropped = true;
    if (socket.openedAt > 0) this.#options.onDrop?.(reason);
    if (this.#standby?.ws.readyState === WebSocket.OPEN) {
      this.#promoteStandby();
      return;
    }
    if (upFor >= this.#stableAfterMs) this.#attempt = 0;
    this.#log(`connection lost (${reason}); reconnecting`);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#reconnectTimer) return;
    const cap = Math.min(this.#maxBackoffMs, this.#initialBackoffMs * 2 ** this.#attempt);
    const delay = Math.max(this.#retryAfterMs, this.#random() * cap);
    this.#retryAfterMs = 0;
    this.#attempt += 1;
    this.#setState('backoff');
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state !== 'backoff') return;
      this.#setState('connecting');
      // A standby still connecting would become live after it opened; rotation is moot now.
      if (this.#standby) {
        this.#retire(this.#standby, 1000, 'superseded');
        this.#standby = undefined;
      }
      this.#connect(false);
    }, delay);
  }

  #scheduleLifetime(): void {
    if (this.#lifetimeTimer) clearTimeout(this.#lifetimeTimer);
    this.#lifetimeTimer = undefined;
    const lifetime = this.#options.maxLifetimeMs;
    if (lifetime === undefined) return;
    this.#lifetimeTimer = setTimeout(() => this.rotate('connection lifetime cap'), lifetime);
    this.#lifetimeTimer.unref?.();
  }

  #checkStale(): void {
    const socket = this.#current;
    if (!socket || this.#state !== 'open') return;
    if (Date.now() - socket.lastActivityAt > this.#staleAfterMs) {
      this.#lost(socket, `stale: nothing received for ${this.#staleAfterMs} ms`);
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
      const wait = socket.lastSendAt + this.#sendIntervalMs - Date.now();
      if (wait > 0) {
        socket.sendTimer = setTimeout(() => {
          socket.sendTimer = undefined;
          this.#drain(socket);
        }, wait);
        return;
      }
      if (socket.ws.readyState !== WebSocket.OPEN) {
        socket.queue.length = 0;
        return;
      }
      socket.lastSendAt = Date.now();
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
    // A peer that never completes the close handshake must not keep the process alive.
    setTimeout(() => ws.terminate(), 2_000).unref();
  }

  #clearSocketTimers(socket: Socket): void {
    if (socket.sendTimer) clearTimeout(socket.sendTimer);
    if (socket.heartbeatTimer) clearInterval(socket.heartbeatTimer);
    socket.sendTimer = undefined;
    socket.heartbeatTimer = undefined;
  }

  #clearTimers(): void {
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    if (this.#watchdog) clearInterval(this.#watchdog);
    if (this.#lifetimeTimer) clearTimeout(this.#lifetimeTimer);
    if (this.#overlapTimer) clearTimeout(this.#overlapTimer);
    this.#reconnectTimer = undefined;
    this.#watchdog = undefined;
    this.#lifetimeTimer = undefined;
    this.#overlapTimer = undefined;
  }

  #setState(state: ConnectionState): void {
    this.#state = state;
    this.#status.state = state;
  }

  #log(line: string): void {
    (this.#options.log ?? ((text: string) => process.stderr.write(`${text}\n`)))(
      `[${this.#options.name}] ${line}`,
    );
  }
}
