import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Bollinger } from './bollinger.ts';
import { Ema } from './ema.ts';
import type { Indicator } from './indicator.ts';
import { Rsi } from './rsi.ts';
import { Sma } from './sma.ts';

// The shared contract every indicator passes: null until warm, then a value; a snapshot taken at any
// point and sent through JSON restores into a fresh instance that continues bit-identically.
const CASES: { name: string; warmAt: number; create: () => Indicator<unknown, unknown> }[] = [
  { name: 'sma20', warmAt: 20, create: () => new Sma(20) },
  { name: 'ema20', warmAt: 20, create: () => new Ema(20) },
  { name: 'rsi14', warmAt: 15, create: () => new Rsi(14) },
  { name: 'bollinger(20, 2)', warmAt: 20, create: () => new Bollinger(20, 2) },
];

function series(length: number): number[] {
  let price = 100;
  const values: number[] = [];
  for (let i = 0; i < length; i++) {
    price *= 1 + Math.sin(i * 1.7) * 0.01;
    values.push(price);
  }
  return values;
}

for (const { name, warmAt, create } of CASES) {
  test(`${name}: null before value ${warmAt}, non-null from it`, () => {
    const indicator = create();
    series(warmAt + 5).forEach((value, i) => {
      indicator.add(value);
      assert.equal(indicator.getResult() === null, i + 1 < warmAt, `value ${i + 1}`);
    });
  });

  test(`${name}: snapshot/restore through JSON continues bit-identically`, () => {
    const values = series(60);
    for (const cut of [0, 1, warmAt - 1, warmAt, 37]) {
      const uninterrupted = create();
      const first = create();
      values.slice(0, cut).forEach((value) => {
        uninterrupted.add(value);
        first.add(value);
      });
      const resumed = create();
      resumed.restore(JSON.parse(JSON.stringify(first.snapshot())));
      for (const value of values.slice(cut)) {
        uninterrupted.add(value);
        resumed.add(value);
        assert.deepEqual(resumed.getResult(), uninterrupted.getResult(), `cut ${cut}`);
      }
    }
  });
}
