import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseConfig } from './load.ts';

describe('config', () => {
  it('has a default for every key', () => {
    const config = parseConfig({});
    assert.equal(config.lateness, 10_000);
    assert.deepEqual(
      config.feeds.map((feed) => feed.type),
      ['synthetic'],
    );
    assert.equal(config.log.type, 'embedded');
    assert.equal(config.store.type, 'duckdb');
    assert.equal(config.server.port, 8080);
    assert.equal(config.alerts.anomaly.enabled, false);
  });

  it('normalises rule symbols and parses durations', () => {
    const config = parseConfig({ lateness: '2.5s', alerts: { rules: [{ symbol: ' btcusdt', below: 5 }] } });
    assert.equal(config.lateness, 2_500);
    assert.deepEqual(config.alerts.rules, [{ symbol: 'BTCUSDT', below: 5 }]);
  });

  it('rejects unknown keys with their path', () => {
    assert.throws(
      () => parseConfig({ alerts: { rules: [{ symbol: 'A', above: 1, extra: true }] }, serverr: {} }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /serverr: unknown key/.test(error.message) &&
        /alerts\.rules\[0\]\.extra: unknown key/.test(error.message),
    );
  });

  it('explains wrong types and values', () => {
    assert.throws(() => parseConfig({ lateness: 'soon' }), /lateness: expected a duration/);
    assert.throws(() => parseConfig({ server: { port: 70_000 } }), /server\.port/);
    assert.throws(() => parseConfig({ feeds: [{ type: 'replay' }] }), /feeds\[0\]\.path/);
    assert.throws(
      () => parseConfig({ feeds: [{ type: 'synthetic' }, { type: 'synthetic' }] }),
      /duplicate feed name/,
    );
    assert.throws(() => parseConfig([]), ConfigError);
  });

  it('parses every example config shipped in config/', async () => {
    const dir = join(import.meta.dirname, '../../config');
    const files = (await readdir(dir)).filter((file) => /\.(ya?ml|json)$/.test(file));
    assert.ok(files.length > 0);
    for (const file of files) await loadConfig(join(dir, file));
  });

  it('reports a missing or unparsable file clearly', async () => {
    await assert.rejects(loadConfig('/nonexistent/streamlines.yaml'), /cannot read config file/);
  });
});
