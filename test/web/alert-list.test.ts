import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendOlder, type ListedAlert, visibleWindow, windowSize } from '../../web/src/lib/alert-list.ts';

const alert = (ts: number, symbol = 'A', kind = 'price_above'): ListedAlert => ({
  ts,
  symbol,
  kind,
  price: ts,
  message: `${symbol} ${kind} ${ts}`,
});

test('an older page is appended newest first, without the boundary alerts already listed', () => {
  const listed = [alert(9), alert(7), alert(5, 'A'), alert(5, 'B')];
  // The API answers to=5 with the last alerts up to ts 5 inclusive, ascending.
  const page = [alert(3), alert(4), alert(5, 'A'), alert(5, 'B'), alert(5, 'C')];
  const { list, added } = appendOlder(listed, page);
  assert.equal(added, 3);
  assert.deepEqual(
    list.map((a) => `${a.ts}${a.symbol}`),
    ['9A', '7A', '5A', '5B', '5C', '4A', '3A'],
  );
});

test('two identical alerts at the boundary are two alerts: only those listed are skipped', () => {
  const listed = [alert(5)];
  const { list, added } = appendOlder(listed, [alert(4), alert(5), alert(5)]);
  assert.equal(added, 2);
  assert.deepEqual(
    list.map((a) => a.ts),
    [5, 5, 4],
  );
});

test('a page with nothing new adds nothing; the first page fills an empty list', () => {
  assert.equal(appendOlder([alert(5)], [alert(5)]).added, 0);
  assert.deepEqual(
    appendOlder([], [alert(1), alert(2)]).list.map((a) => a.ts),
    [2, 1],
  );
});

test('the visible window covers the viewport plus overscan, moves in steps, clamped to the list', () => {
  assert.deepEqual(visibleWindow(0, 340, 34, 100_000, 10), { start: 0, end: 40 });
  assert.deepEqual(visibleWindow(34 * 5_000, 340, 34, 100_000, 10), { start: 4_990, end: 5_030 });
  // Five rows further: the same window, so nothing is redrawn.
  assert.deepEqual(visibleWindow(34 * 5_005, 340, 34, 100_000, 10), { start: 4_990, end: 5_030 });
  assert.deepEqual(visibleWindow(34 * 99_995, 340, 34, 100_000, 10), { start: 99_980, end: 100_000 });
  assert.deepEqual(visibleWindow(34 * 500, 340, 34, 100, 10), { start: 100, end: 100 });
  assert.deepEqual(visibleWindow(0, 340, 34, 0, 10), { start: 0, end: 0 });
  // Every row on screen is drawn, wherever the scroll is.
  for (let top = 0; top < 34 * 300; top += 7) {
    const { start, end } = visibleWindow(top, 340, 34, 1_000, 10);
    assert.ok(start <= Math.floor(top / 34) && end >= Math.ceil((top + 340) / 34), `at ${top}`);
  }
});

test('keyed by row mod windowSize, the rows of a window have distinct keys, and keep them as it moves', () => {
  const size = windowSize(340, 34, 10);
  assert.equal(size, 40);
  const keys = (start: number, end: number) =>
    new Map(Array.from({ length: end - start }, (_, i) => [start + i, (start + i) % size]));
  for (let top = 0; top < 34 * 3_000; top += 13) {
    const { start, end } = visibleWindow(top, 340, 34, 2_500, 10);
    assert.ok(end - start <= size, `window at ${top}: ${end - start} rows`);
    assert.equal(new Set(keys(start, end).values()).size, end - start, `distinct keys at ${top}`);
  }
  // Ten rows further: the thirty rows in both windows keep their keys; the ten that came in take the
  // keys (the elements) of the ten that left.
  const before = keys(4_990, 5_030);
  const after = keys(5_000, 5_040);
  for (let row = 5_000; row < 5_030; row++) assert.equal(after.get(row), before.get(row));
  assert.deepEqual(
    [...after].filter(([row]) => row >= 5_030).map(([, key]) => key),
    [...before].filter(([row]) => row < 5_000).map(([, key]) => key),
  );
});
