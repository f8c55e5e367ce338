import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertOnCloses } from '../../../test/fixtures/indicator-closes.ts';
import { Ema } from './ema.ts';

// Expected values from Python:
//   a = 2/21; v = sum(CLOSES[:20])/20; out = [v]
//   for x in CLOSES[20:]: v = a*x + (1-a)*v; out.append(v)
const EXPECTED = [
  45.409, 45.485285714285716, 45.55811564625851, 45.572580822805314, 45.65614455396671, 45.66794031073179,
];

test('ema20 is null for 19 values, seeded with the sma of the first 20, then alpha = 2/21', () => {
  assertOnCloses(new Ema(20), 19, EXPECTED);
});

test('ema of period 3, worked by hand', () => {
  const ema = new Ema(3);
  for (const value of [1, 2, 3, 7]) ema.add(value);
  // Seed = (1 + 2 + 3) / 3 = 2; alpha = 2/4 = 0.5; next = 0.5 * 7 + 0.5 * 2 = 4.5.
  assert.equal(ema.getResult(), 4.5);
});
