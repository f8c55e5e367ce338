import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateRecord } from '../../ingest/validate.ts';
import type { FeedBatch } from '../feed.ts';
import { SyntheticFeed, syntheticFeedSchema } from './synthetic-feed.ts';

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

  it('produces valid trades on the configured symbols with increasing ids', async () => {
    const batches = await take(new SyntheticFeed(config, []), 50);
    const values = batches.flatMap((batch) => batch.values ?? []);
    assert.ok(values.length >= 50);
    const ids: number[] = [];
    for (const value of values) {
      const result = validateRecord(value, 'synthetic', 0);
      assert.ok(result.ok, JSON.stringify(value));
      assert.ok(['BTCUSDT', 'AAPL'].includes(result.tick.symbol));
      assert.ok(result.tick.side === 'buy' || result.tick.side === 'sell');
      ids.push(Number(result.tick.id));
    }
    assert.deepEqual(
      ids,
      ids.map((_, i) => i + 1),
    );
  });

  it('continues the same market from a saved position', async () => {
    const first = await take(new SyntheticFeed(config, []), 10);
    const position = first[first.length - 1]!.position as { seq: number; prices: Record<string, number> };
    const next = await take(new SyntheticFeed(config, []), 1, position);
    const trade = next[0]!.values![0] as { id: string; symbol: string; price: number };
    assert.equal(trade.id, String(position.seq + 1));
    // One step of a 0.04% random walk stays close to where the symbol's price was left.
    const before = position.prices[trade.symbol]!;
    assert.ok(Math.abs(trade.price / before - 1) < 0.01, `${trade.price} vs ${before}`);
  });
});
