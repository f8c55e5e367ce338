/**
 * A stand-in for `wss://ws.finnhub.io` on 127.0.0.1, for tests: checks the `token` query parameter (HTTP 401
 * on the upgrade otherwise, as a bad key would get), records `subscribe`/`unsubscribe` messages per
 * connection, and lets a test push frames, drop connections or go silent.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export class FakeFinnhubServer {
  /** Client messages, parsed, with the connection they came on (0-based). */
  readonly received: { connection: number; message: Record<string, unknown> }[] = [];
  connections = 0;
  /** Upgrades refused for a wrong token. */
  refused = 0;
  readonly #token: string;
  readonly #server: WebSocketServer;
  readonly #sockets: WebSocket[] = [];

  constructor(token: string) {
    this.#token = token;
    this.#server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      verifyClient: (info: { req: IncomingMessage }, callback: (ok: boolean, code?: number) => void) => {
        const url = new URL(info.req.url ?? '/', 'http://localhost');
        const ok = url.searchParams.get('token') === this.#token;
        if (!ok) this.refused += 1;
        callback(ok, 401);
      },
    });
    this.#server.on('connection', (socket) => {
      const index = this.connections++;
      this.#sockets.push(socket);
      socket.on('message', (data) => {
        try {
          this.received.push({ connection: index, message: JSON.parse(data.toString()) });
        } catch {
          this.received.push({ connection: index, message: { unparsable: data.toString() } });
        }
      });
      socket.on('close', () => this.#sockets.splice(this.#sockets.indexOf(socket), 1));
    });
  }

  async start(): Promise<string> {
    if (this.#server.address() === null) {
      await new Promise<void>((resolve) => this.#server.once('listening', () => resolve()));
    }
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.terminate();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Sends a frame (an object is JSON-encoded) on the newest connection. */
  send(frame: unknown): void {
    this.#sockets[this.#sockets.length - 1]?.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Cuts every connection without a close frame, as a network drop would. */
  dropAll(): void {
    for (const socket of this.#sockets) socket.terminate();
  }

  /** Symbols subscribed on a connection, in order. */
  subscriptions(connection: number): string[] {
    return this.received
      .filter((entry) => entry.connection === connection && entry.message.type === 'subscribe')
      .map((entry) => String(entry.message.symbol));
  }
}
