import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dedup } from '../../ingest/dedup.ts';
import { validateRecord } from '../../ingest/validate.ts';
import type { FeedBatch } from '../feed.ts';
import { batchIntervalMs, SyntheticFeed, syntheticFeedSchema } from './synthetic-feed.ts';

async function take(feed: SyntheticFeed, count: number, position?: unknown): Promise<FeedBatch[]> {
  const controller = new AbortController();
  const batches: FeedBatch[] = [];
  let seen = 0;
  for await (const batch of feed.run(position, controller.signal)) {
    batches.push(batch);
    seen += batch.values?.length ?? 0;
    if (seen >= count) controller.abort();
  }
  return batches;
}

describe('SyntheticFeed', () => {
  const config = syntheticFeedSchema.parse({
    type: 'synthetic',
    ticksPerSecond: 2_000,
    symbols: ['btcusdt', 'AAPL'],
  });

  it('produces valid trades on the configured symbols, each symbol numbering its own 1, 2, 3...', async () => {
    const batches = await take(new SyntheticFeed(config, []), 50);
    const values = batches.flatMap((batch) => batch.values ?? []);
    assert.ok(values.length >= 50);
    const ids = new Map<string, number[]>();
    const dedup = new Dedup(Number.POSITIVE_INFINITY);
    for (const value of values) {
      const result = validateRecord(value, 'synthetic', 0);
      assert.ok(result.ok, JSON.stringify(value));
      const { symbol, id, ts } = result.tick;
      assert.ok(['BTCUSDT', 'AAPL'].includes(symbol));
      assert.ok(result.tick.side === 'buy' || result.tick.side === 'sell');
      ids.set(symbol, [...(ids.get(symbol) ?? []), Number(id)]);
      assert.equal(dedup.check('synthetic', symbol, ts, id), 'accept');
    }
    assert.deepEqual([...ids.keys()].sort(), ['AAPL', 'BTCUSDT']);
    for (const [symbol, list] of ids) {
      assert.deepEqual(
        list,
        list.map((_, i) => i + 1),
        symbol,
      );
    }
    // What ingest remembers of them is one id range per symbol, however many trades there are.
    assert.equal(dedup.sizes().ranges, 2);
  });

  it('continues the same market from a saved position', async () => {
    const first = await take(new SyntheticFeed(config, []), 10);
    const position = first[first.length - 1]!.position as {
      prices: Record<string, number>;
      lastIds: Record<string, number>;
    };
    const next = await take(new SyntheticFeed(config, []), 1, position);
    const trade = next[0]!.values![0] as { id: string; symbol: string; price: number };
    assert.equal(trade.id, String(position.lastIds[trade.symbol]! + 1));
    // One step of a 0.04% random walk stays close to where the symbol's price was left.
    const before = position.prices[trade.symbol]!;
    assert.ok(Math.abs(trade.price / before - 1) < 0.01, `${trade.price} vs ${before}`);
  });

  it('continues above every id of a position saved before ids were per symbol', async () => {
    const next = await take(new SyntheticFeed(config, []), 1, { seq: 500, rng: 7, prices: {} });
    const trade = next[0]!.values![0] as { id: string };
    assert.equal(trade.id, '501');
  });

  it('continues above the ids of a symbol that was not listed when it restarted', async () => {
    // BTCUSDT traded, then a restart without it, then one with it again: its ids must not repeat.
    const saved = { seq: 90, rng: 7, prices: {}, lastIds: { BTCUSDT: 40, ETHUSDT: 50 } };
    const without = await take(new SyntheticFeed({ ...config, symbols: ['ETHUSDT'] }, []), 1, saved);
    const position = without[without.length - 1]!.position as { lastIds: Record<string, number> };
    assert.equal(position.lastIds.BTCUSDT, 40);
    const again = await take(new SyntheticFeed({ ...config, symbols: ['BTCUSDT'] }, []), 1, position);
    assert.equal((again[0]!.values![0] as { id: string }).id, '41');
  });

  it('makes batches of about 200 trades, every 10 to 50 ms', () => {
    assert.equal(batchIntervalMs(20_000), 10);
    assert.equal(batchIntervalMs(10_000), 20);
    assert.equal(batchIntervalMs(4_000), 50);
    assert.equal(batchIntervalMs(1_000), 50);
    assert.equal(batchIntervalMs(1_000_000), 10);
  });
});
