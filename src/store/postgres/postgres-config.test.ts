import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../config/load.ts';
import { createStore } from '../registry.ts';
import { PostgresStore } from './postgres-store.ts';

const DAY = 86_400_000;

test('the postgres store section has defaults: timescale auto, 30d ticks and 90d aggregates retention', () => {
  const config = parseConfig({
    store: { type: 'postgres', url: 'postgres://streamlines@db:5432/streamlines' },
  });
  assert.deepStrictEqual(config.store, {
    type: 'postgres',
    url: 'postgres://streamlines@db:5432/streamlines',
    schema: 'public',
    timescale: 'auto',
    retention: { ticks: 30 * DAY, aggregates: 90 * DAY },
  });
});

test('the postgres store section parses retention durations and rejects bad values with their path', () => {
  const config = parseConfig({
    store: {
      type: 'postgres',
      url: 'postgres://db/x',
      timescale: 'off',
      retention: { ticks: '7d', aggregates: '12h' },
    },
  });
  assert.deepStrictEqual(config.store.type === 'postgres' && config.store.retention, {
    ticks: 7 * DAY,
    aggregates: 12 * 3_600_000,
  });
  assert.throws(() => parseConfig({ store: { type: 'postgres' } }), /store\.url/);
  assert.throws(
    () => parseConfig({ store: { type: 'postgres', url: 'x', timescale: 'yes' } }),
    /store\.timescale/,
  );
  assert.throws(
    () => parseConfig({ store: { type: 'postgres', url: 'x', retention: { ticks: 'a month' } } }),
    /store\.retention\.ticks/,
  );
  assert.throws(() => parseConfig({ store: { type: 'postgres', url: 'x', password: 'p' } }), /password/);
});

test('createStore builds an (unopened) PostgresStore from the config', () => {
  const config = parseConfig({ store: { type: 'postgres', url: 'postgres://127.0.0.1:1/none' } });
  assert.ok(createStore(config.store, '/nonexistent') instanceof PostgresStore);
});
