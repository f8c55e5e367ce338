/**
 * A scriptable stand-in for CoinGecko's REST API on 127.0.0.1, for tests: each request to
 * `/api/v3/simple/price` takes the next scripted reply (the last one repeats).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One scripted answer: a status and body, a socket dropped mid-reply, or no answer at all. */
export type FakeReply =
  | { status?: number; body: unknown; headers?: Record<string, string> }
  | { drop: true }
  | { stall: true };

export interface RecordedRequest {
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  at: number;
}

export class FakeCoingeckoServer {
  readonly requests: RecordedRequest[] = [];
  #replies: FakeReply[];
  readonly #server: Server;
  readonly #stalled: ServerResponse[] = [];

  constructor(replies: FakeReply[]) {
    this.#replies = [...replies];
    this.#server = createServer((request, response) => this.#handle(request, response));
  }

  /** Replaces the script: the next requests take these replies (the last one repeats). */
  script(replies: FakeReply[]): void {
    this.#replies = [...replies];
  }

  /** Starts listening; resolves to the base URL to put in the feed's `url`. */
  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/api/v3`;
  }

  async close(): Promise<void> {
    for (const response of this.#stalled) response.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    this.requests.push({
      path: url.pathname,
      query: url.searchParams,
      headers: request.headers,
      at: Date.now(),
    });
    if (url.pathname !== '/api/v3/simple/price') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not Found"}');
      return;
    }
    const reply = this.#replies.length > 1 ? this.#replies.shift()! : this.#replies[0];
    if (reply === undefined || 'stall' in reply) {
      this.#stalled.push(response);
      return;
    }
    if ('drop' in reply) {
      // Headers and half a body, then the socket goes away.
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      response.write('{"bitcoin":{"usd":9');
      setTimeout(() => response.socket?.destroy(), 5);
      return;
    }
    const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
    response
      .writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers })
      .end(text);
  }
}
