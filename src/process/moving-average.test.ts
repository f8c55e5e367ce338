import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TickMovingAverages } from './moving-average.ts';

test('short is null for 4 prices, long for 19; then the means of the last 5 and 20', () => {
  const averages = new TickMovingAverages();
  for (let price = 1; price <= 25; price++) {
    averages.add(price);
    // Prices 1..n: the last k have mean n - (k - 1) / 2 (by hand: an arithmetic series).
    assert.equal(averages.short, price < 5 ? null : price - 2);
    assert.equal(averages.long, price < 20 ? null : price - 9.5);
  }
});

test('means are bit-identical to a straightforward left-to-right sum', () => {
  const averages = new TickMovingAverages();
  const prices: number[] = [];
  for (let i = 0; i < 50; i++) {
    const price = 100 + 0.1 * ((i * 13) % 17) + 0.01 * i;
    averages.add(price);
    prices.push(price);
    const mean = (k: number) => prices.slice(-k).reduce((a, b) => a + b, 0) / k;
    if (prices.length >= 5) assert.equal(averages.short, mean(5));
    if (prices.length >= 20) assert.equal(averages.long, mean(20));
  }
});

test('restore from a snapshot continues identically', () => {
  const original = new TickMovingAverages();
  for (let i = 0; i < 23; i++) original.add(10 + i * 0.3);
  const restored = new TickMovingAverages();
  restored.restore(JSON.parse(JSON.stringify(original.snapshot())));
  assert.equal(restored.short, original.short);
  assert.equal(restored.long, original.long);
  original.add(7.7);
  restored.add(7.7);
  assert.equal(restored.long, original.long);
});
