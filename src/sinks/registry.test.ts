import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../config/load.ts';
import { createSinkEntries, sinkNames } from './registry.ts';

test('the example in docs/sinks.md parses, with every default filled in', async () => {
  const docs = await readFile(new URL('../../docs/sinks.md', import.meta.url), 'utf8');
  const example = /```yaml\n([\s\S]*?)```/.exec(docs)?.[1];
  assert.ok(example, 'docs/sinks.md has a yaml example');
  const config = parseConfig(parse(example));
  assert.deepEqual(
    config.sinks.map((sink) => sink.type),
    ['influxdb', 'cassandra', 'webhook'],
  );
  const [influx, cassandra, webhook] = config.sinks;
  assert.equal(influx?.type === 'influxdb' && influx.database, 'streamlines');
  assert.deepEqual(cassandra?.type === 'cassandra' && cassandra.ttl, {
    ticks: 7 * 86_400_000,
    candles: 400 * 86_400_000,
  });
  assert.deepEqual(webhook?.type === 'webhook' && [webhook.format, webhook.kinds], [
    'slack',
    ['price_above', 'price_below'],
  ]);
  assert.deepEqual(
    createSinkEntries(config.sinks, {}).map(({ name, sink, backlogRows }) => [
      name,
      sink.type,
      sink.records,
      backlogRows,
    ]),
    [
      ['influxdb', 'influxdb', ['ticks', 'candles', 'indicators', 'alerts'], 100_000],
      ['cassandra', 'cassandra', ['ticks', 'candles', 'indicators', 'alerts'], 100_000],
      ['webhook', 'webhook', ['alerts'], 100_000],
    ],
  );
});

test('no sinks unless configured', () => {
  assert.deepEqual(parseConfig({}).sinks, []);
});

test('unknown keys, unknown types and reused names are errors naming the path', () => {
  assert.throws(
    () => parseConfig({ sinks: [{ type: 'influxdb', url: 'http://x', bucket: 'b' }] }),
    /sinks\[0\]\.bucket: unknown key/,
  );
  assert.throws(() => parseConfig({ sinks: [{ type: 'kafka' }] }), /sinks\[0\]/);
  assert.throws(
    () => parseConfig({ sinks: [{ type: 'webhook', url: 'http://a', format: 'teams' }] }),
    /sinks\[0\]\.format/,
  );
  assert.throws(
    () =>
      parseConfig({
        sinks: [
          { type: 'webhook', url: 'http://a', name: 'hook' },
          { type: 'webhook', url: 'http://b', name: 'hook' },
        ],
      }),
    /sinks\[1\]\.name: sink name "hook" is used twice; give each a unique name/,
  );
});

test('unnamed sinks are named after their type, numbered from the second of a type', () => {
  assert.deepEqual(
    sinkNames([
      { type: 'webhook' },
      { type: 'influxdb' },
      { type: 'webhook' },
      { type: 'webhook', name: 'ops' },
    ]),
    ['webhook', 'influxdb', 'webhook-2', 'ops'],
  );
});
