/**
 * A stand-in for Alpaca's market-data WebSocket on 127.0.0.1, for tests. It follows the documented flow:
 * `[{"T":"success","msg":"connected"}]` on open, then `auth` → `authenticated` (or error 402 and a close),
 * then `subscribe` → a `subscription` echo (error 401 if not authenticated yet). A test can refuse the
 * connection with an error code (406 connection limit), push frames, drop connections or stay silent.
 */
import type { WebSocket } from 'ws';
import { FakeSocketServer } from './fake-socket-server.ts';

export interface FakeAlpacaOptions {
  key: string;
  secret: string;
  /** Sent right after `connected` (then the socket closes), e.g. `{code: 406, msg: 'connection limit exceeded'}`. */
  refuseWith?: { code: number; msg: string };
}

export class FakeAlpacaServer extends FakeSocketServer {
  /** Client messages, parsed, with their connection index (0-based). */
  readonly received: { connection: number; message: Record<string, unknown> }[] = [];
  /** When true the server reads but never answers (a stalled stream). */
  muted = false;
  readonly #options: FakeAlpacaOptions;

  constructor(options: FakeAlpacaOptions) {
    super((socket, index) => this.#accept(socket, index), '/v2/iex');
    this.#options = options;
  }

  /** The `subscribe` messages a connection sent. */
  subscribes(connection: number): Record<string, unknown>[] {
    return this.received
      .filter((entry) => entry.connection === connection && entry.message.action === 'subscribe')
      .map((entry) => entry.message);
  }

  #accept(socket: WebSocket, index: number): void {
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
