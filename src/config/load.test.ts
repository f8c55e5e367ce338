import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { ConfigError, loadConfig, parseConfig } from './load.ts';

const ROOT = join(import.meta.dirname, '../..');

/**
 * The YAML blocks of a Markdown file (indented ones inside lists too), with their line numbers. A block
 * whose first line is a comment naming another tool's file (`# prometheus.yml`) is not a Streamlines
 * config and is left out; every other YAML block is one.
 */
function configBlocks(markdown: string): { line: number; text: string }[] {
  const blocks: { line: number; text: string }[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```ya?ml\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const indent = (open[1] as string).length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] as string); j++)
      body.push((lines[j] as string).slice(indent));
    const first = body.find((line) => line.trim() !== '') ?? '';
    if (!/^#\s*\S+\.(ya?ml|json)\b/.test(first) || /^#\s*config\//.test(first))
      blocks.push({ line: i + 1, text: body.join('\n') });
    i = j;
  }
  return blocks;
}

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

  it('reads the alert frequency controls: off by default, durations in ms', () => {
    assert.deepEqual(parseConfig({}).alerts.maCross, { cooldownMs: 0 });
    const config = parseConfig({
      alerts: { rules: [{ symbol: 'a', above: 1, cooldown: '5m' }], maCross: { cooldown: '30s' } },
    });
    assert.deepEqual(config.alerts.rules, [{ symbol: 'A', above: 1, cooldownMs: 300_000 }]);
    assert.deepEqual(config.alerts.maCross, { cooldownMs: 30_000 });
    assert.equal(parseConfig({ alerts: { maCross: false } }).alerts.maCross, false);
    assert.throws(() => parseConfig({ alerts: { maCross: true } }), /alerts\.maCross/);
    assert.throws(() => parseConfig({ alerts: { maCross: { cooldwn: '1s' } } }), /alerts\.maCross/);
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
      /feeds\[1\]\.name: feed name "synthetic" is used twice; give each a unique name/,
    );
    assert.throws(() => parseConfig([]), ConfigError);
  });

  it('parses every example config shipped in config/', async () => {
    const dir = join(import.meta.dirname, '../../config');
    const files = (await readdir(dir)).filter((file) => /\.(ya?ml|json)$/.test(file));
    assert.ok(files.length > 0);
    for (const file of files) await loadConfig(join(dir, file));
  });

  it('parses every config example in the README and docs/', async () => {
    const files = [
      'README.md',
      ...(await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
    ];
    let parsed = 0;
    for (const file of files) {
      for (const block of configBlocks(await readFile(join(ROOT, file), 'utf8'))) {
        assert.doesNotThrow(
          () => parseConfig(parseYaml(block.text) ?? {}, `${file}:${block.line}`),
          `${file}:${block.line}`,
        );
        parsed++;
      }
    }
    // README's config section, and the feed, Kafka, PostgreSQL, security and distributed examples.
    assert.ok(parsed >= 6, `only ${parsed} config examples found`);
  });

  it('reports a missing or unparsable file clearly', async () => {
    await assert.rejects(loadConfig('/nonexistent/streamlines.yaml'), /cannot read config file/);
  });
});
