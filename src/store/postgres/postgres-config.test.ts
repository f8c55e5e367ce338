import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../../config/load.ts';
import { createStore } from '../registry.ts';
import { isConnectionError, PostgresStore } from './postgres-store.ts';

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

test('isConnectionError tells an unreachable server from a bad query', () => {
  const reachable = [
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    Object.assign(new Error('connection failure'), { code: '08006' }),
    new Error('Connection terminated unexpectedly'),
  ];
  for (const error of reachable) assert.equal(isConnectionError(error), true, error.message);
  const queryErrors = [
    Object.assign(new Error('relation "x" does not exist'), { code: '42P01' }),
    Object.assign(new Error('duplicate key'), { code: '23505' }),
    new Error('something else'),
    undefined,
  ];
  for (const error of queryErrors) assert.equal(isConnectionError(error), false, String(error));
});
