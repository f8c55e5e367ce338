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

/**
 * What the fakes of the streaming exchanges (Binance, Coinbase, Kraken) share: a FakeExchange wired to
 * their `onMessage` and `onHttp`, a tape of every trade published (their REST history serves it), the
 * `silent` switch, and what each client subscribed to (streams, products or symbols).
 */
export abstract class FakeStreamingExchange<Trade> {
  readonly exchange: FakeExchange;
  readonly tape: Trade[] = [];
  /** While true, published trades reach the tape but no socket (a stall or an outage). */
  silent = false;
  readonly #subscriptions = new Map<FakeClient, Set<string>>();

  protected constructor(exchange: FakeExchange) {
    this.exchange = exchange;
  }

  /** Starts a FakeExchange and the fake `make` builds on it; `onConnection` greets each client. */
  protected static async startFake<F extends FakeStreamingExchange<unknown>>(
    make: (exchange: FakeExchange) => F,
    onConnection?: (client: FakeClient) => void,
  ): Promise<F> {
    let fake: F | undefined;
    const exchange = await FakeExchange.start({
      onConnection,
      onMessage: (client, message) => fake?.onMessage(client, message),
      onHttp: (_request, response, url) => fake?.onHttp(response, url),
    });
    fake = make(exchange);
    return fake;
  }

  get url(): string {
    return this.exchange.wsUrl;
  }

  get restUrl(): string {
    return this.exchange.httpUrl;
  }

  /** Its stream and REST URLs, as a feed config takes them. */
  get endpoints(): { url: string; restUrl: string } {
    return { url: this.url, restUrl: this.restUrl };
  }

  /** Clients subscribed to `key` right now. */
  subscribers(key: string): FakeClient[] {
    return this.exchange.openClients().filter((client) => this.#subscriptions.get(client)?.has(key));
  }

  /** Sends raw text to every open client (malformed frames, shutdown notices). */
  sendRaw(text: string): void {
    for (const client of this.exchange.openClients()) client.ws.send(text);
  }

  async close(): Promise<void> {
    await this.exchange.close();
  }

  abstract onMessage(client: FakeClient, message: unknown): void;

  abstract onHttp(response: ServerResponse, url: URL): boolean;

  /** Records `trade` on the tape and, unless silent, sends `text` to the subscribers of `key`. */
  protected publishTo(trade: Trade, key: string, text: string): void {
    this.tape.push(trade);
    if (this.silent) return;
    for (const client of this.subscribers(key)) client.ws.send(text);
  }

  /** What `client` is subscribed to (a set the fake adds to and deletes from). */
  protected subscriptionsOf(client: FakeClient): Set<string> {
    let keys = this.#subscriptions.get(client);
    if (keys === undefined) {
      keys = new Set<string>();
      this.#subscriptions.set(client, keys);
    }
    return keys;
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
