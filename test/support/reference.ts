/** Runs the independent Python reference (test/reference/reference.py) and compares with tolerance. */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { StoredTick } from '../../src/store/store.ts';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '../reference/reference.py');

/** The reference computes every field `GET /ticks` serves. */
export type ReferenceTick = StoredTick;

export interface ReferenceResult {
  counters: Record<string, unknown>;
  symbols: Record<
    string,
    {
      latest: Record<string, unknown>;
      ticks: ReferenceTick[];
      intervals: Record<
        string,
        { candles: Record<string, unknown>[]; indicators: Record<string, unknown>[] }
      >;
    }
  >;
  alerts: Record<string, unknown>[];
}

export async function reference(
  replay: string,
  latenessMs: number,
  alerts: unknown[] | Record<string, unknown>,
): Promise<ReferenceResult> {
  const { stdout } = await run('python3', [SCRIPT, replay, String(latenessMs), JSON.stringify(alerts)], {
    maxBuffer: 1 << 30,
  });
  return JSON.parse(stdout) as ReferenceResult;
}

/** Deep equality where numbers may differ by 1e-9 relative (docs/design.md, Rules). */
export function assertClose(actual: unknown, expected: unknown, path = '$'): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    const scale = Math.max(Math.abs(expected), Math.abs(actual), 1e-300);
    assert.ok(
      Math.abs(actual - expected) / scale <= 1e-9 || actual === expected,
      `${path}: ${actual} != ${expected}`,
    );
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    for (let i = 0; i < expected.length; i++) assertClose(actual[i], expected[i], `${path}[${i}]`);
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    assert.ok(
      actual !== null && typeof actual === 'object',
      `${path}: expected an object, got ${JSON.stringify(actual)}`,
    );
    for (const [key, value] of Object.entries(expected)) {
      assertClose((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    }
    return;
  }
  assert.equal(actual, expected, path);
}
