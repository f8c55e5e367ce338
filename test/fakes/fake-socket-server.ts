/**
 * A bare WebSocket server on 127.0.0.1 that keeps its open sockets: what the Alpaca and Finnhub fakes
 * share (their protocols differ; connecting, pushing frames and dropping connections do not).
 */
import type { AddressInfo } from 'node:net';
import { type ServerOptions, type WebSocket, WebSocketServer } from 'ws';

export class FakeSocketServer {
  /** Connections accepted so far; a connection's index is its order (0-based). */
  connections = 0;
  readonly #server: WebSocketServer;
  readonly #sockets: WebSocket[] = [];
  readonly #path: string;

  /** `accept` runs for each connection with its index; `path` is appended to the URL `start` gives. */
  constructor(accept: (socket: WebSocket, index: number) => void, path = '', options: ServerOptions = {}) {
    this.#path = path;
    this.#server = new WebSocketServer({ ...options, host: '127.0.0.1', port: 0 });
    this.#server.on('connection', (socket) => {
      const index = this.connections++;
      this.#sockets.push(socket);
      socket.on('close', () => this.#sockets.splice(this.#sockets.indexOf(socket), 1));
      accept(socket, index);
    });
  }

  /** Resolves with the server's ws:// URL once it listens. */
  async start(): Promise<string> {
    if (this.#server.address() === null) {
      await new Promise<void>((resolve) => this.#server.once('listening', () => resolve()));
    }
    return `ws://127.0.0.1:${(this.#server.address() as AddressInfo).port}${this.#path}`;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Sends a frame (arrays and objects JSON-encoded) on the newest connection. */
  send(frame: unknown): void {
    this.#sockets[this.#sockets.length - 1]?.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Cuts every connection without a close frame, as a network drop would. */
  dropAll(): void {
    for (const socket of this.#sockets) socket.terminate();
  }
}
