import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSizeBytes } from './size.ts';

test('parses sizes with binary units into bytes', () => {
  assert.equal(parseSizeBytes('1GiB'), 1_073_741_824);
  assert.equal(parseSizeBytes('256MiB'), 268_435_456);
  assert.equal(parseSizeBytes('64KiB'), 65_536);
  assert.equal(parseSizeBytes('1.5KiB'), 1_536);
  assert.equal(parseSizeBytes('512B'), 512);
  assert.equal(parseSizeBytes(' 2 TiB '), 2 * 1024 ** 4);
  assert.equal(parseSizeBytes('4096'), 4096);
  assert.equal(parseSizeBytes(4096), 4096);
  assert.equal(parseSizeBytes(0), 0);
});

test('rejects what is not a size', () => {
  // Decimal units (kB, MB) are refused rather than guessed: 1MB could mean 10^6 or 2^20 bytes.
  for (const bad of ['1MB', '1kb', '1 gib', '-1KiB', 'big', '', null, -5, 1.5, Number.NaN, {}]) {
    assert.equal(parseSizeBytes(bad), undefined, String(bad));
  }
});
