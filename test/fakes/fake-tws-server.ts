/**
 * A stand-in for TWS / IB Gateway on 127.0.0.1 that speaks enough of the TWS API socket protocol (v100+
 * framing, as `@stoqey/ib` 1.6 encodes it in src/core/io/socket.ts) for the real library to connect and
 * stream: the client's `API\0` + length + "v100..193" handshake, our server version and connection time,
 * START_API → NEXT_VALID_ID, REQ_CURRENT_TIME → CURRENT_TIME, and recorded market-data requests that a test
 * answers with TICK_BY_TICK, TICK_PRICE, ERR_MSG or raw messages. Every message after the handshake is a
 * 4-byte big-endian length followed by NUL-terminated text fields.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';

/** 176 lies between the library's minimum for v100 (100) and its maximum (193). */
const SERVER_VERSION = 176;

// Message ids (the library's IN_MSG_ID / OUT_MSG_ID).
const IN_TICK_PRICE = 1;
const IN_ERR_MSG = 4;
const IN_NEXT_VALID_ID = 9;
const IN_CURRENT_TIME = 49;
const IN_TICK_BY_TICK = 99;
const OUT_REQ_MKT_DATA = 1;
const OUT_REQ_CURRENT_TIME = 49;
const OUT_START_API = 71;
const OUT_REQ_TICK_BY_TICK_DATA = 97;

/** A market-data request the client made. */
export interface FakeSubscription {
  connection: number;
  kind: 'tickByTick' | 'marketData';
  reqId: number;
  symbol: string;
  tickType?: string;
}

export interface FakeTwsOptions {
  /** Answer START_API with this error (e.g. 326, client id in use) instead of NEXT_VALID_ID. */
  startError?: { code: number; message: string };
  /** Answer market-data requests for these symbols with this error. */
  symbolErrors?: Record<string, { code: number; message: string }>;
}

interface Client {
  index: number;
  socket: Socket;
  buffer: Buffer;
  handshaken: boolean;
  clientId: number | undefined;
}

export class FakeTwsServer {
  readonly subscriptions: FakeSubscription[] = [];
  /** Every message each connection sent after the handshake, as text fields. */
  readonly received: { connection: number; fields: string[] }[] = [];
  /** Connections accepted so far. */
  connections = 0;
  /** When true the server reads but never answers or sends anything (a stalled gateway). */
  silent = false;
  readonly #options: FakeTwsOptions;
  readonly #server: Server;
  readonly #clients: Client[] = [];

  constructor(options: FakeTwsOptions = {}) {
    this.#options = options;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `tcp://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const client of this.#clients) client.socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Sends a tick-by-tick trade (tickType 1 Last, 2 AllLast) on the newest connection. */
  sendTickByTick(
    reqId: number,
    trade: { tickType?: number; time: number; price: number; size: number },
  ): void {
    // Mask bit 0 past limit, bit 1 unreported; exchange and special conditions follow.
    this.sendFields([
      IN_TICK_BY_TICK,
      reqId,
      trade.tickType ?? 2,
      trade.time,
      trade.price,
      trade.size,
      0,
      'ISLAND',
      '',
    ]);
  }

  /** Sends a TICK_PRICE (version 3: price, size, canAutoExecute), which the library splits into tickPrice + tickSize. */
  sendTickPrice(reqId: number, tickType: number, price: number, size: number): void {
    this.sendFields([IN_TICK_PRICE, 3, reqId, tickType, price, size, 0]);
  }

  sendError(reqId: number, code: number, message: string): void {
    // Version 2: id, code, message, then (server version >= 166) the advanced-order-reject JSON.
    this.sendFields([IN_ERR_MSG, 2, reqId, code, message, '']);
  }

  /** Sends one framed message of raw fields on the newest connection. */
  sendFields(fields: (string | number)[]): void {
    const client = this.#clients[this.#clients.length - 1];
    if (client) this.#send(client, fields);
  }

  /** Sends raw bytes (for broken frames) on the newest connection. */
  sendRaw(bytes: Buffer): void {
    this.#clients[this.#clients.length - 1]?.socket.write(bytes);
  }

  /** Drops every open connection, as a gateway restart would. */
  dropAll(): void {
    for (const client of this.#clients) client.socket.destroy();
  }

  #accept(socket: Socket): void {
    const client: Client = {
      index: this.connections++,
      socket,
      buffer: Buffer.alloc(0),
      handshaken: false,
      clientId: undefined,
    };
    this.#clients.push(client);
    socket.on('data', (data) => this.#onData(client, data as Buffer));
    socket.on('error', () => undefined);
    socket.on('close', () => this.#clients.splice(this.#clients.indexOf(client), 1));
  }

  #onData(client: Client, data: Buffer): void {
    client.buffer = Buffer.concat([client.buffer, data]);
    if (!client.handshaken) {
      // "API\0", then a 4-byte length and the version range text.
      if (client.buffer.length < 8) return;
      if (client.buffer.subarray(0, 4).toString('latin1') !== 'API\0') {
        client.socket.destroy();
        return;
      }
      const length = client.buffer.readInt32BE(4);
      if (client.buffer.length < 8 + length) return;
      client.buffer = client.buffer.subarray(8 + length);
      client.handshaken = true;
      if (!this.silent) this.#send(client, [SERVER_VERSION, '20261120 15:30:00 EST']);
    }
    while (client.buffer.length >= 4) {
      const length = client.buffer.readInt32BE(0);
      if (client.buffer.length < 4 + length) return;
      const text = client.buffer.subarray(4, 4 + length).toString('utf8');
      client.buffer = client.buffer.subarray(4 + length);
      const fields = text.split('\0');
      fields.pop();
      this.received.push({ connection: client.index, fields });
      this.#handle(client, fields);
    }
  }

  #handle(client: Client, fields: string[]): void {
    if (this.silent) return;
    const id = Number(fields[0]);
    if (id === OUT_START_API) {
      client.clientId = Number(fields[2]);
      const startError = this.#options.startError;
      if (startError) this.#send(client, [IN_ERR_MSG, 2, -1, startError.code, startError.message, '']);
      else this.#send(client, [IN_NEXT_VALID_ID, 1, 1]);
    } else if (id === OUT_REQ_CURRENT_TIME) {
      this.#send(client, [IN_CURRENT_TIME, 1, Math.floor(Date.now() / 1000)]);
    } else if (id === OUT_REQ_TICK_BY_TICK_DATA) {
      // reqId, conId, symbol, secType, expiry, strike, right, multiplier, exchange, primaryExch, currency,
      // localSymbol, tradingClass, tickType.
      this.#subscribed(client, 'tickByTick', Number(fields[1]), fields[3] ?? '', fields[14]);
    } else if (id === OUT_REQ_MKT_DATA) {
      // version, reqId, conId, symbol, ...
      this.#subscribed(client, 'marketData', Number(fields[2]), fields[4] ?? '');
    }
  }

  #subscribed(
    client: Client,
    kind: FakeSubscription['kind'],
    reqId: number,
    symbol: string,
    tickType?: string,
  ): void {
    const subscription: FakeSubscription = { connection: client.index, kind, reqId, symbol };
    if (tickType !== undefined) subscription.tickType = tickType;
    this.subscriptions.push(subscription);
    const refusal = this.#options.symbolErrors?.[symbol];
    if (refusal) this.#send(client, [IN_ERR_MSG, 2, reqId, refusal.code, refusal.message, '']);
  }

  #send(client: Client, fields: (string | number)[]): void {
    const payload = Buffer.from(`${fields.join('\0')}\0`, 'utf8');
    const header = Buffer.alloc(4);
    header.writeInt32BE(payload.length);
    client.socket.write(Buffer.concat([header, payload]));
  }
}
