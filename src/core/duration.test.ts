import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDurationMs } from './duration.ts';

test('parses durations with units into ms', () => {
  assert.equal(parseDurationMs('10s'), 10_000);
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('1.5m'), 90_000);
  assert.equal(parseDurationMs('2h'), 7_200_000);
  // 30 * 24 * 3600 * 1000 = 2_592_000_000 (the PostgreSQL store's default tick retention).
  assert.equal(parseDurationMs('30d'), 2_592_000_000);
  assert.equal(parseDurationMs('1.5d'), 129_600_000);
  assert.equal(parseDurationMs('0s'), 0);
  assert.equal(parseDurationMs(2500), 2500);
  assert.equal(parseDurationMs('250'), 250);
});

test('rejects what is not a duration', () => {
  for (const bad of ['ten seconds', '-1s', '1w', '1dd', '', null, -5, Number.NaN, {}]) {
    assert.equal(parseDurationMs(bad), undefined, String(bad));
  }
});
