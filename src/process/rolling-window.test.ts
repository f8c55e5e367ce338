import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RollingWindow } from './rolling-window.ts';

test('holds the newest values oldest first across wrap-arounds', () => {
  const window = new RollingWindow(3);
  assert.deepEqual(window.toArray(), []);
  for (const value of [1, 2]) window.push(value);
  assert.deepEqual(window.toArray(), [1, 2]);
  assert.equal(window.count, 2);
  for (const value of [3, 4, 5, 6, 7]) window.push(value);
  assert.deepEqual(window.toArray(), [5, 6, 7]);
  assert.equal(window.count, 3);
});

test('sumLast is bit-identical to a left-to-right reduce at every ring position', () => {
  // Values chosen so that summation order changes the last bits: 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1.
  const window = new RollingWindow(5);
  const seen: number[] = [];
  for (let i = 0; i < 23; i++) {
    const value = 0.1 * ((i * 7) % 11) + 1e-3 * i;
    window.push(value);
    seen.push(value);
    for (let n = 1; n <= window.count; n++) {
      const expected = seen.slice(-n).reduce((a, b) => a + b, 0);
      assert.equal(window.sumLast(n), expected, `i=${i} n=${n}`);
    }
  }
});

test('squaredDeviationSumLast matches a direct two-pass computation', () => {
  const window = new RollingWindow(4);
  for (const value of [10, 2, 4, 4, 5, 7]) window.push(value);
  // Newest 4 are [4, 4, 5, 7], mean 5: deviations -1, -1, 0, 2 -> 1 + 1 + 0 + 4 = 6 (by hand).
  assert.equal(window.squaredDeviationSumLast(4, 5), 6);
});

test('clear empties the window and rejects a non-positive capacity', () => {
  const window = new RollingWindow(2);
  window.push(1);
  window.clear();
  assert.equal(window.count, 0);
  assert.deepEqual(window.toArray(), []);
  assert.throws(() => new RollingWindow(0), RangeError);
});
