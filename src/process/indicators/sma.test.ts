import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertOnCloses } from '../../../test/fixtures/indicator-closes.ts';
import { Sma } from './sma.ts';

// Expected values from Python:
//   sma = lambda xs, n: [sum(xs[i+1-n:i+1])/n for i in range(n-1, len(xs))]
//   [repr(v) for v in sma(CLOSES, 20)]
const EXPECTED = [45.409, 45.5025, 45.610499999999995, 45.6885, 45.8305, 45.903000000000006];

test('sma20 is null for 19 values, then the mean of the last 20', () => {
  assertOnCloses(new Sma(20), 19, EXPECTED);
});

test('sma of a short period, worked by hand', () => {
  const sma = new Sma(3);
  for (const value of [1, 2, 3, 10]) sma.add(value);
  // Last 3 of [1, 2, 3, 10] = (2 + 3 + 10) / 3 = 5.
  assert.equal(sma.getResult(), 5);
});
