/**
 * The plumbing every fake exchange shares: a WebSocket server and an HTTP server on 127.0.0.1 (one port, as
 * real providers put REST and streams on different hosts but tests do not care), a record of what clients
 * sent, and the knobs tests turn (drop every connection, refuse upgrades, go silent).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export interface FakeClient {
  ws: WebSocket;
  path: string;
  /** Parsed JSON (or raw text) of every message the client sent. */
  received: unknown[];
  pongs: number;
}

export interface FakeExchangeHandlers {
  /** A client connected (after the upgrade). */
  onConnection?(client: FakeClient): void;
  /** A client sent a message. */
  onMessage?(client: FakeClient, message: unknown): void;
  /** A REST request; return false to answer 404. */
  onHttp?(request: IncomingMessage, response: ServerResponse, url: URL): boolean | undefined;
}

export class FakeExchange {
  readonly clients: FakeClient[] = [];
  /** Every HTTP request path with its query, in order. */
  readonly httpRequests: string[] = [];
  /** When set, upgrades are refused with this status and body. */
  refuseUpgrade: { status: number; body: string } | undefined;
  /** Upgrade requests seen, refused ones included. */
  upgradeAttempts = 0;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #handlers: FakeExchangeHandlers;

  private constructor(handlers: FakeExchangeHandlers) {
    this.#handlers = handlers;
    this.#server = createServer((request, response) => this.#http(request, response));
    this.#wss = new WebSocketServer({ noServer: true });
    this.#server.on('upgrade', (request, socket, head) => {
      this.upgradeAttempts += 1;
      const refuse = this.refuseUpgrade;
      if (refuse) {
        socket.end(
          `HTTP/1.1 ${refuse.status} Refused\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(refuse.body)}\r\nconnection: close\r\n\r\n${refuse.body}`,
        );
        return;
      }
      this.#wss.handleUpgrade(request, socket, head, (ws) => this.#connected(ws, request.url ?? '/'));
    });
  }

  static async start(handlers: FakeExchangeHandlers): Promise<FakeExchange> {
    const exchange = new FakeExchange(handlers);
    await new Promise<void>((resolve) => exchange.#server.listen(0, '127.0.0.1', resolve));
    return exchange;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Clients whose socket is open. */
  openClients(): FakeClient[] {
    return this.clients.filter((client) => client.ws.readyState === 1);
  }

  /** Sends text or JSON to every open client. */
  broadcast(message: unknown): void {
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    for (const client of this.openClients()) client.ws.send(text);
  }

  /** Kills every connection without a close handshake, like a network drop. */
  dropAll(): void {
    for (const client of this.openClients()) client.ws.terminate();
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.ws.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #connected(ws: WebSocket, path: string): void {
    const client: FakeClient = { ws, path, received: [], pongs: 0 };
    this.clients.push(client);
    ws.on('pong', () => {
      client.pongs += 1;
    });
    ws.on('message', (data) => {
      const text = data.toString();
      let message: unknown = text;
      try {
        message = JSON.parse(text);
      } catch {
        // Raw text frames stay text.
      }
      client.received.push(message);
      this.#handlers.onMessage?.(client, message);
    });
    this.#handlers.onConnection?.(client);
  }

  #http(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', this.httpUrl);
    this.httpRequests.push(`${url.pathname}${url.search}`);
    const handled = this.#handlers.onHttp?.(request, response, url);
    if (handled === false || handled === undefined) {
      if (!response.headersSent) {
        response.writeHead(404, { 'content-type': 'application/json' });
        response.end('{"error":"not found"}');
      }
    }
  }
}

/** Sends a JSON body. */
export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): true {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
  return true;
}
