/**
 * A fake Kraken v2 endpoint for tests, from FEEDS.md §3 and its samples: a `status` message on connect (with
 * the >2^53 `connection_id` written as raw digits), `subscribe` acks per symbol or `success:false` for
 * unknown pairs, `trade` updates, `heartbeat`, `ping`→`pong`, and `GET /0/public/Trades?pair&since&count`
 * (rows `[price, volume, time_s, "b"|"s", type, misc, trade_id]`, `last` cursor in ns).
 */
import type { ServerResponse } from 'node:http';
import { type FakeClient, FakeStreamingExchange, sendJson } from './fake-exchange.ts';

export interface KrakenTrade {
  symbol: string;
  side: 'buy' | 'sell';
  price: number;
  qty: number;
  ord_type: 'limit' | 'market';
  trade_id: number;
  timestamp: string;
}

export function krakenTrade(
  symbol: string,
  id: number,
  ts: number,
  price: number,
  qty: number,
  side: 'buy' | 'sell',
): KrakenTrade {
  return {
    symbol,
    side,
    price,
    qty,
    ord_type: 'limit',
    trade_id: id,
    timestamp: `${new Date(ts).toISOString().slice(0, -1)}204Z`,
  };
}

const REST_PAIRS: Record<string, string> = { XBTUSD: 'BTC/USD', ETHUSD: 'ETH/USD' };

export class FakeKraken extends FakeStreamingExchange<KrakenTrade> {
  static start(): Promise<FakeKraken> {
    return FakeStreamingExchange.startFake(
      (exchange) => new FakeKraken(exchange),
      (client) =>
        client.ws.send(
          '{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"online","api_version":"v2","connection_id":12393906104898154338}]}',
        ),
    );
  }

  publish(trade: KrakenTrade): void {
    this.publishTo(trade, trade.symbol, JSON.stringify({ channel: 'trade', type: 'update', data: [trade] }));
  }

  onMessage(client: FakeClient, message: unknown): void {
    const request = message as {
      method?: string;
      params?: { channel?: string; symbol?: string[] };
      req_id?: number;
    };
    const now = new Date().toISOString();
    if (request.method === 'ping') {
      client.ws.send(JSON.stringify({ method: 'pong', req_id: request.req_id, time_in: now, time_out: now }));
      return;
    }
    const symbols = this.subscriptionsOf(client);
    for (const symbol of request.params?.symbol ?? []) {
      if (!Object.values(REST_PAIRS).includes(symbol)) {
        client.ws.send(
          JSON.stringify({
            error: `Currency pair not supported ${symbol}`,
            method: request.method,
            success: false,
            symbol,
            time_in: now,
            time_out: now,
            req_id: request.req_id,
          }),
        );
        continue;
      }
      if (request.method === 'subscribe') symbols.add(symbol);
      else symbols.delete(symbol);
      client.ws.send(
        JSON.stringify({
          method: request.method,
          result: { channel: 'trade', symbol, snapshot: false },
          success: true,
          time_in: now,
          time_out: now,
          req_id: request.req_id,
        }),
      );
    }
  }

  onHttp(response: ServerResponse, url: URL): boolean {
    if (url.pathname !== '/0/public/Trades') return false;
    const pair = url.searchParams.get('pair') ?? '';
    const symbol = REST_PAIRS[pair];
    if (!symbol) return sendJson(response, 200, { error: ['EQuery:Unknown asset pair'] });
    const sinceText = url.searchParams.get('since') ?? '0';
    // Kraken reads a small `since` as seconds and a large one as nanoseconds.
    const sinceNs = sinceText.length > 12 ? BigInt(sinceText) : BigInt(sinceText) * 1_000_000_000n;
    const count = Math.min(1000, Number(url.searchParams.get('count') ?? 1000));
    const nanos = (trade: KrakenTrade) => BigInt(Date.parse(trade.timestamp)) * 1_000_000n + 204_000n;
    const rows = this.tape
      .filter((trade) => trade.symbol === symbol && nanos(trade) > sinceNs)
      .sort((a, b) => a.trade_id - b.trade_id)
      .slice(0, count);
    const last = rows.length > 0 ? String(nanos(rows[rows.length - 1]!)) : String(sinceNs);
    const body = {
      error: [],
      result: {
        [`X${pair.slice(0, 3)}Z${pair.slice(3)}`]: rows.map((trade) => [
          trade.price.toFixed(5),
          trade.qty.toFixed(8),
          Number(nanos(trade)) / 1e9,
          trade.side === 'buy' ? 'b' : 's',
          trade.ord_type === 'limit' ? 'l' : 'm',
          '',
          trade.trade_id,
        ]),
        last,
      },
    };
    return sendJson(response, 200, body);
  }
}
