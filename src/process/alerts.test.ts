import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crossedAbove, crossedBelow, groupPriceRules, maCross } from './alerts.ts';

test('price rules are grouped by trimmed, upper-cased symbol, keeping config order', () => {
  const grouped = groupPriceRules([
    { symbol: ' btcusdt ', above: 10 },
    { symbol: 'ETHUSDT', below: 5 },
    { symbol: 'BTCusdt', below: 8 },
  ]);
  assert.deepEqual(grouped.get('BTCUSDT'), [
    { symbol: 'BTCUSDT', above: 10 },
    { symbol: 'BTCUSDT', below: 8 },
  ]);
  assert.deepEqual(grouped.get('ETHUSDT'), [{ symbol: 'ETHUSDT', below: 5 }]);
});

test('above fires only from <= X to > X; equal to X does not fire', () => {
  assert.equal(crossedAbove(99, 101, 100), true);
  assert.equal(crossedAbove(100, 100.5, 100), true);
  assert.equal(crossedAbove(99, 100, 100), false);
  assert.equal(crossedAbove(100.5, 101, 100), false);
  assert.equal(crossedAbove(Number.NaN, 101, 100), false);
});

test('below fires only from >= X to < X; equal to X does not fire', () => {
  assert.equal(crossedBelow(101, 99, 100), true);
  assert.equal(crossedBelow(100, 99.5, 100), true);
  assert.equal(crossedBelow(101, 100, 100), false);
  assert.equal(crossedBelow(99.5, 99, 100), false);
  assert.equal(crossedBelow(Number.NaN, 99, 100), false);
});

test('golden cross from <= 0 to > 0, death cross from >= 0 to < 0, none while an average is null', () => {
  assert.equal(maCross(-1, 1), 'golden_cross');
  assert.equal(maCross(0, 1), 'golden_cross');
  assert.equal(maCross(1, -1), 'death_cross');
  assert.equal(maCross(0, -1), 'death_cross');
  assert.equal(maCross(-1, 0), null);
  assert.equal(maCross(1, 0), null);
  assert.equal(maCross(1, 2), null);
  assert.equal(maCross(Number.NaN, 1), null);
  assert.equal(maCross(-1, Number.NaN), null);
});
