/**
 * A stand-in for Alpaca's market-data WebSocket on 127.0.0.1, for tests. It follows the documented flow:
 * `[{"T":"success","msg":"connected"}]` on open, then `auth` → `authenticated` (or error 402 and a close),
 * then `subscribe` → a `subscription` echo (error 401 if not authenticated yet). A test can refuse the
 * connection with an error code (406 connection limit), push frames, drop connections or stay silent.
 */
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export interface FakeAlpacaOptions {
  key: string;
  secret: string;
  /** Sent right after `connected` (then the socket closes), e.g. `{code: 406, msg: 'connection limit exceeded'}`. */
  refuseWith?: { code: number; msg: string };
}

export class FakeAlpacaServer {
  /** Client messages, parsed, with their connection index (0-based). */
  readonly received: { connection: number; message: Record<string, unknown> }[] = [];
  connections = 0;
  /** When true the server reads but never answers (a stalled stream). */
  muted = false;
  readonly #options: FakeAlpacaOptions;
  readonly #server: WebSocketServer;
  readonly #sockets: WebSocket[] = [];

  constructor(options: FakeAlpacaOptions) {
    this.#options = options;
    this.#server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this.#server.on('connection', (socket) => this.#accept(socket));
  }

  async start(): Promise<string> {
    if (this.#server.address() === null) {
      await new Promise<void>((resolve) => this.#server.once('listening', () => resolve()));
    }
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v2/iex`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Sends a frame (arrays/objects JSON-encoded) on the newest connection. */
  send(frame: unknown): void {
    this.#sockets[this.#sockets.length - 1]?.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  dropAll(): void {
    for (const socket of this.#sockets) socket.terminate();
  }

  /** The `subscribe` messages a connection sent. */
  subscribes(connection: number): Record<string, unknown>[] {
    return this.received
      .filter((entry) => entry.connection === connection && entry.message.action === 'subscribe')
      .map((entry) => entry.message);
  }

  #accept(socket: WebSocket): void {
    const index = this.connections++;
    this.#sockets.push(socket);
    socket.on('close', () => this.#sockets.splice(this.#sockets.indexOf(socket), 1));
    if (this.muted) return;
    socket.send(JSON.stringify([{ T: 'success', msg: 'connected' }]));
    const refusal = this.#options.refuseWith;
    if (refusal) {
      socket.send(JSON.stringify([{ T: 'error', ...refusal }]));
      socket.close(1008, refusal.msg);
      return;
    }
    let authenticated = false;
    socket.on('message', (data) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(data.toString());
      } catch {
        socket.send(JSON.stringify([{ T: 'error', code: 400, msg: 'invalid syntax' }]));
        return;
      }
      this.received.push({ connection: index, message });
      if (this.muted) return;
      if (message.action === 'auth') {
        if (message.key === this.#options.key && message.secret === this.#options.secret) {
          authenticated = true;
          socket.send(JSON.stringify([{ T: 'success', msg: 'authenticated' }]));
        } else {
          socket.send(JSON.stringify([{ T: 'error', code: 402, msg: 'auth failed' }]));
          socket.close(1008, 'auth failed');
        }
      } else if (message.action === 'subscribe') {
        if (!authenticated) {
          socket.send(JSON.stringify([{ T: 'error', code: 401, msg: 'not authenticated' }]));
          return;
        }
        socket.send(
          JSON.stringify([{ T: 'subscription', trades: message.trades ?? [], quotes: [], bars: [] }]),
        );
      }
    });
  }
}
