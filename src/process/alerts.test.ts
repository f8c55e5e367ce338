import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cooledDown, crossedAbove, crossedBelow, groupPriceRules, maCross } from './alerts.ts';

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

test('a cooldown lets an alert fire again only at a tick at least the cooldown later in event time', () => {
  assert.equal(cooledDown(Number.NaN, 5, 1_000), true, 'never fired');
  assert.equal(cooledDown(10_000, 10_999, 1_000), false);
  assert.equal(cooledDown(10_000, 11_000, 1_000), true);
  assert.equal(cooledDown(10_000, 9_000, 1_000), false, 'a late tick older than the firing waits');
  assert.equal(cooledDown(10_000, 9_000, 0), true, 'no cooldown: everything fires');
});

test('grouping keeps a positive cooldown and drops a zero one', () => {
  const grouped = groupPriceRules([
    { symbol: 'A', above: 1, cooldownMs: 500 },
    { symbol: 'A', below: 1, cooldownMs: 0 },
  ]);
  assert.deepEqual(grouped.get('A'), [
    { symbol: 'A', above: 1, cooldownMs: 500 },
    { symbol: 'A', below: 1 },
  ]);
});
