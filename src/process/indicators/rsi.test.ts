import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertOnCloses } from '../../../test/fixtures/indicator-closes.ts';
import { Rsi } from './rsi.ts';

// Expected values from Python (StockCharts' RSI example; they print 70.53 from rounded averages):
//   ch = [b - a for a, b in zip(CLOSES, CLOSES[1:])]
//   ag = sum(max(c, 0) for c in ch[:14]) / 14; al = sum(max(-c, 0) for c in ch[:14]) / 14
//   out = [100 - 100 / (1 + ag / al)]
//   for c in ch[14:]:
//       ag = (ag * 13 + max(c, 0)) / 14; al = (al * 13 + max(-c, 0)) / 14
//       out.append(100 - 100 / (1 + ag / al))
const EXPECTED = [
  70.46413502109705, 66.24961855355505, 66.48094183471265, 69.34685316290866, 66.29471265892624,
  57.91502067008556, 62.880718309962404, 63.20878871828778, 56.01158478954757, 62.33992931089789,
  54.67097137765516,
];

test('rsi14 is null for 14 values, then Wilder-smoothed', () => {
  assertOnCloses(new Rsi(14), 14, EXPECTED);
});

test('rsi is 100 when every change is a gain, 50 when prices are flat', () => {
  const rising = new Rsi(14);
  const flat = new Rsi(14);
  for (let i = 0; i < 30; i++) {
    rising.add(100 + i);
    flat.add(100);
  }
  assert.equal(rising.getResult(), 100);
  assert.equal(flat.getResult(), 50);
});

test('rsi is 0 when every change is a loss', () => {
  const falling = new Rsi(14);
  for (let i = 0; i < 15; i++) falling.add(100 - i);
  // avgGain = 0, avgLoss = 1: 100 - 100 / (1 + 0) = 0.
  assert.equal(falling.getResult(), 0);
});
