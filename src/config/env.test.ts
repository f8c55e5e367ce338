import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyEnvOverrides } from './env.ts';
import { ConfigError, loadConfig } from './load.ts';
import { configSchema } from './schema.ts';

const keys = Object.keys(configSchema.shape);

describe('config from the environment', () => {
  it('sets any key by its path: levels joined by __, each in SNAKE_CASE, values as YAML', async () => {
    const config = await loadConfig(undefined, {
      STREAMLINES_STORE__TYPE: 'postgres',
      STREAMLINES_STORE__URL: 'postgres://app@db:5432/streamlines',
      STREAMLINES_LOG__TYPE: 'kafka',
      STREAMLINES_LOG__BROKERS: '[kafka-0:9092, kafka-1:9092]',
      STREAMLINES_LOG__TOPIC_PREFIX: 'prod.',
      STREAMLINES_LOG__PARTITIONS: '6',
      STREAMLINES_SERVER__PORT: '9000',
      STREAMLINES_LATENESS: '5s',
      STREAMLINES_FEEDS__0__TYPE: 'replay',
      STREAMLINES_FEEDS__0__PATH: '/data/ticks.ndjson',
    });
    assert.equal(config.store.type, 'postgres');
    assert.equal(config.store.type === 'postgres' && config.store.url, 'postgres://app@db:5432/streamlines');
    assert.equal(config.log.type, 'kafka');
    assert.deepEqual(config.log.type === 'kafka' && config.log.brokers, ['kafka-0:9092', 'kafka-1:9092']);
    assert.equal(config.log.type === 'kafka' && config.log.topicPrefix, 'prod.');
    assert.equal(config.log.type === 'kafka' && config.log.partitions, 6);
    assert.equal(config.server.port, 9000);
    assert.equal(config.lateness, 5_000);
    assert.deepEqual(
      config.feeds.map((feed) => feed.type),
      ['replay'],
    );
  });

  it('overrides the file, and leaves variables that are not config alone', () => {
    const file = { server: { port: 8080, host: 'localhost' }, symbols: ['BTCUSDT'] };
    const { value, overrides } = applyEnvOverrides(file, keys, {
      STREAMLINES_SERVER__PORT: '8081',
      STREAMLINES_KAFKA_PASSWORD: 'secret',
      STREAMLINES_TEST_KAFKA_BROKERS: '127.0.0.1:1',
      OTHER: 'x',
    });
    assert.deepEqual(value, { server: { port: 8081, host: 'localhost' }, symbols: ['BTCUSDT'] });
    assert.deepEqual(overrides, [{ variable: 'STREAMLINES_SERVER__PORT', path: ['server', 'port'] }]);
    assert.equal(file.server.port, 8080, 'the decoded file is not changed');
  });

  it('names the variable when its value is invalid', async () => {
    await assert.rejects(loadConfig(undefined, { STREAMLINES_SERVER__PORT: 'eighty' }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /STREAMLINES_SERVER__PORT/);
      assert.match(error.message, /server\.port/);
      return true;
    });
  });
});
