import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertClose, CLOSES } from '../../../test/fixtures/indicator-closes.ts';
import { testPoint } from '../../../test/support/records.ts';
import { CandleIndicators } from './candle-indicators.ts';

test('one point per close: rsi from the 15th, sma/ema/bollinger from the 20th', () => {
  const indicators = new CandleIndicators('BTCUSDT', '5m');
  const points = CLOSES.map((close, i) => indicators.add(1_000 * i, close));
  assert.deepEqual(points[13], testPoint(13_000, { interval: '5m' }));
  // Reference values: the Python snippets in sma.test.ts, rsi.test.ts and bollinger.test.ts.
  assertClose(points[14]!.rsi14, 70.46413502109705);
  assert.equal(points[18]!.sma20, null);
  const twentieth = points[19]!;
  assertClose(twentieth.sma20, 45.409);
  assertClose(twentieth.ema20, 45.409);
  assertClose(twentieth.bbMiddle, 45.409);
  assertClose(twentieth.bbUpper, 47.115328221650216);
  assertClose(twentieth.bbLower, 43.70267177834978);
});

test('restore continues identically', () => {
  const original = new CandleIndicators('X', '1m');
  CLOSES.slice(0, 17).forEach((close, i) => {
    original.add(i, close);
  });
  const restored = new CandleIndicators('X', '1m');
  restored.restore(JSON.parse(JSON.stringify(original.snapshot())));
  CLOSES.slice(17).forEach((close, i) => {
    assert.deepEqual(restored.add(17 + i, close), original.add(17 + i, close));
  });
});
