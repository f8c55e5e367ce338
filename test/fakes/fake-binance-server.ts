/**
 * A fake Binance spot endpoint for tests, built from the shapes in FEEDS.md §1 and its samples: `/ws` raw
 * streams with SUBSCRIBE/UNSUBSCRIBE (acks `{"result":null,"id"}`), `@aggTrade` payloads, `serverShutdown`,
 * request errors `{"code","msg"}`, and `GET /api/v3/aggTrades` (fromId | startTime+endTime, limit) with the
 * `X-MBX-USED-WEIGHT-1M` header. Every trade published is kept on a tape the REST history serves.
 */
import type { ServerResponse } from 'node:http';
import { type FakeClient, FakeStreamingExchange, sendJson } from './fake-exchange.ts';

export interface AggTrade {
  e: 'aggTrade';
  E: number;
  s: string;
  a: number;
  p: string;
  q: string;
  f: number;
  l: number;
  T: number;
  m: boolean;
  M: boolean;
}

/** An aggTrade in the stream's shape (REST drops `e`, `E`, `s`). */
export function aggTrade(
  symbol: string,
  id: number,
  ts: number,
  price: string,
  qty: string,
  buyerIsMaker: boolean,
): AggTrade {
  return {
    e: 'aggTrade',
    E: ts + 1,
    s: symbol,
    a: id,
    p: price,
    q: qty,
    f: id * 2,
    l: id * 2,
    T: ts,
    m: buyerIsMaker,
    M: true,
  };
}

export class FakeBinance extends FakeStreamingExchange<AggTrade> {
  /** When set, every SUBSCRIBE is answered with this error instead of an ack. */
  subscribeError: { code: number; msg: string } | undefined;
  /** Answers the next N REST calls with 429 and `Retry-After: 1`. */
  rateLimitNext = 0;
  usedWeight = 0;

  static start(): Promise<FakeBinance> {
    return FakeStreamingExchange.startFake((exchange) => new FakeBinance(exchange));
  }

  /** Records a trade and streams it to subscribers of `<symbol>@aggTrade`. */
  publish(trade: AggTrade): void {
    this.publishTo(trade, `${trade.s.toLowerCase()}@aggTrade`, JSON.stringify(trade));
  }

  onMessage(client: FakeClient, message: unknown): void {
    const request = message as { method?: string; params?: string[]; id?: unknown };
    if (request.method !== 'SUBSCRIBE' && request.method !== 'UNSUBSCRIBE') {
      client.ws.send(JSON.stringify({ code: 3, msg: 'Invalid JSON' }));
      return;
    }
    if (this.subscribeError) {
      client.ws.send(JSON.stringify(this.subscribeError));
      return;
    }
    const streams = this.subscriptionsOf(client);
    for (const stream of request.params ?? []) {
      if (request.method === 'SUBSCRIBE') streams.add(stream);
      else streams.delete(stream);
    }
    client.ws.send(JSON.stringify({ result: null, id: request.id ?? null }));
  }

  onHttp(response: ServerResponse, url: URL): boolean {
    if (url.pathname !== '/api/v3/aggTrades') return false;
    if (this.rateLimitNext > 0) {
      this.rateLimitNext -= 1;
      return sendJson(response, 429, { code: -1003, msg: 'Too many requests' }, { 'retry-after': '1' });
    }
    this.usedWeight += 4;
    const headers = { 'x-mbx-used-weight-1m': String(this.usedWeight) };
    const symbol = url.searchParams.get('symbol') ?? '';
    if (!this.tape.some((trade) => trade.s === symbol)) {
      return sendJson(response, 400, { code: -1121, msg: 'Invalid symbol.' }, headers);
    }
    const limit = Math.min(1000, Number(url.searchParams.get('limit') ?? 500));
    const fromId = url.searchParams.get('fromId');
    const startTime = url.searchParams.get('startTime');
    const endTime = url.searchParams.get('endTime');
    let trades = this.tape.filter((trade) => trade.s === symbol).sort((x, y) => x.a - y.a);
    if (fromId !== null) trades = trades.filter((trade) => trade.a >= Number(fromId));
    else if (startTime !== null && endTime !== null) {
      if (Number(endTime) - Number(startTime) >= 3_600_000) {
        return sendJson(
          response,
          400,
          { code: -1127, msg: 'More than 1 hours between startTime and endTime.' },
          headers,
        );
      }
      trades = trades.filter((trade) => trade.T >= Number(startTime) && trade.T <= Number(endTime));
    } else trades = trades.slice(-limit);
    const body = trades.slice(0, limit).map(({ a, p, q, f, l, T, m, M }) => ({ a, p, q, f, l, T, m, M }));
    return sendJson(response, 200, body, headers);
  }
}
