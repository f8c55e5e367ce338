/**
 * A fake Coinbase Exchange endpoint for tests, from FEEDS.md §2a and its samples: `subscribe` answered by
 * `subscriptions` and then a `last_match` per product, `match` and `heartbeat` messages, `error` for unknown
 * products, and `GET /products/<id>/trades?limit&after` (newest first, `after` = ids below the cursor, maker
 * side). Trades published while `silent` reach only the tape the REST history serves.
 */
import type { ServerResponse } from 'node:http';
import { type FakeClient, FakeStreamingExchange, sendJson } from './fake-exchange.ts';

export interface Match {
  type: 'match';
  trade_id: number;
  maker_order_id: string;
  taker_order_id: string;
  side: 'buy' | 'sell';
  size: string;
  price: string;
  product_id: string;
  sequence: number;
  time: string;
}

/** A match in the feed's shape; `makerSide` is what Coinbase puts in `side`. */
export function match(
  product: string,
  id: number,
  ts: number,
  price: string,
  size: string,
  makerSide: 'buy' | 'sell',
): Match {
  const time = `${new Date(ts).toISOString().slice(0, -1)}123Z`; // µs precision, as on the wire
  return {
    type: 'match',
    trade_id: id,
    maker_order_id: `maker-${id}`,
    taker_order_id: `taker-${id}`,
    side: makerSide,
    size,
    price,
    product_id: product,
    sequence: 123894075000 + id,
    time,
  };
}

export class FakeCoinbase extends FakeStreamingExchange<Match> {
  readonly products = new Set(['BTC-USD', 'ETH-USD']);

  static start(): Promise<FakeCoinbase> {
    return FakeStreamingExchange.startFake((exchange) => new FakeCoinbase(exchange));
  }

  publish(trade: Match): void {
    this.publishTo(trade, trade.product_id, JSON.stringify(trade));
  }

  /** Sends a heartbeat carrying the tape's last trade id for `product`. */
  heartbeat(product: string): void {
    const last = this.tape.filter((trade) => trade.product_id === product).at(-1);
    const message = {
      type: 'heartbeat',
      sequence: 123894075390,
      last_trade_id: last?.trade_id ?? 0,
      product_id: product,
      time: new Date().toISOString(),
    };
    for (const client of this.subscribers(product)) client.ws.send(JSON.stringify(message));
  }

  onMessage(client: FakeClient, message: unknown): void {
    const request = message as { type?: string; product_ids?: string[]; channels?: string[] };
    if (request.type !== 'subscribe' && request.type !== 'unsubscribe') {
      client.ws.send(JSON.stringify({ type: 'error', message: 'Failed to parse', reason: 'unknown type' }));
      return;
    }
    const unknown = (request.product_ids ?? []).find((product) => !this.products.has(product));
    if (unknown !== undefined) {
      client.ws.send(
        JSON.stringify({
          type: 'error',
          message: 'Failed to subscribe',
          reason: `${unknown} is not a valid product`,
        }),
      );
      return;
    }
    const products = this.subscriptionsOf(client);
    for (const product of request.product_ids ?? []) {
      if (request.type === 'subscribe') products.add(product);
      else products.delete(product);
    }
    const channels = (request.channels ?? []).map((name) => ({ name, product_ids: [...products] }));
    client.ws.send(JSON.stringify({ type: 'subscriptions', channels }));
    if (request.type !== 'subscribe') return;
    for (const product of request.product_ids ?? []) {
      const last = this.tape.filter((trade) => trade.product_id === product).at(-1);
      if (last) client.ws.send(JSON.stringify({ ...last, type: 'last_match' }));
    }
  }

  onHttp(response: ServerResponse, url: URL): boolean {
    const found = /^\/products\/([^/]+)\/trades$/.exec(url.pathname);
    if (!found) return false;
    const product = decodeURIComponent(found[1]!);
    if (!this.products.has(product)) return sendJson(response, 404, { message: 'NotFound' });
    const limit = Math.min(1000, Number(url.searchParams.get('limit') ?? 100));
    const after = url.searchParams.get('after');
    const trades = this.tape
      .filter((trade) => trade.product_id === product && (after === null || trade.trade_id < Number(after)))
      .sort((a, b) => b.trade_id - a.trade_id)
      .slice(0, limit);
    const body = trades.map(({ time, trade_id, price, size, side }) => ({
      time,
      trade_id,
      price,
      size,
      side,
    }));
    const headers: Record<string, string> = {};
    if (trades.length > 0) {
      headers['cb-before'] = String(trades[0]!.trade_id);
      headers['cb-after'] = String(trades[trades.length - 1]!.trade_id);
    }
    return sendJson(response, 200, body, headers);
  }
}
