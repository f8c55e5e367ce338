import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type HealthEvent, HealthRegistry } from './health.ts';

function registry() {
  let now = 1_000;
  const lines: HealthEvent[] = [];
  const health = new HealthRegistry({
    log: (event) => lines.push(event),
    repeatEveryMs: 60_000,
    now: () => now,
  });
  return { health, lines, advance: (ms: number) => (now += ms) };
}

test('a fault is logged once when it starts and once when it ends, rate-limited between', () => {
  const { health, lines, advance } = registry();
  health.ok('store');
  assert.equal(lines.length, 0, 'ok at the start is not news');
  for (let i = 0; i < 100; i++) {
    health.degraded('store', 'disk full', 'store_write_failed');
    advance(1_000);
  }
  // 100 reports over 100 s: the start, and one reminder after 60 s.
  assert.deepStrictEqual(
    lines.map((line) => line.kind),
    ['degraded', 'still_degraded'],
  );
  assert.equal(lines[0]!.message, 'store degraded: disk full');
  assert.equal(lines[0]!.code, 'store_write_failed');
  assert.deepStrictEqual(health.degradedEntries(), [
    {
      dependency: 'store',
      status: 'degraded',
      cause: 'disk full',
      code: 'store_write_failed',
      since: 1_000,
      reports: 100,
      required: true,
    },
  ]);
  health.ok('store');
  health.ok('store');
  assert.deepStrictEqual(
    lines.map((line) => line.kind),
    ['degraded', 'still_degraded', 'recovered'],
  );
  assert.match(lines[2]!.message, /store ok again after 100000 ms \(100 reports; last: disk full\)/);
  assert.deepStrictEqual(health.degradedEntries(), []);
  assert.deepStrictEqual(health.entries(), [{ dependency: 'store', status: 'ok', since: 101_000 }]);
});

test('dependencies are independent, and one-off events are logged and kept (bounded)', () => {
  const { health, lines } = registry();
  health.degraded('kafka', 'brokers unreachable');
  health.degraded('redis', 'connection refused', 'redis_down', false);
  assert.equal(health.degradedEntries()[1]?.required, false);
  health.ok('kafka');
  assert.deepStrictEqual(
    health.degradedEntries().map((entry) => entry.dependency),
    ['redis'],
  );
  for (let i = 0; i < 30; i++) health.event('log', `torn tail repaired ${i}`, 'log_tail_repaired');
  assert.equal(health.recentEvents().length, 20);
  assert.equal(health.recentEvents().at(-1)!.message, 'torn tail repaired 29');
  assert.equal(lines.filter((line) => line.kind === 'event').length, 30);
});
