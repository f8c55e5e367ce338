import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configReferenceMarkdown, withConfigKeyTables } from './config-reference.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('config reference', () => {
  const markdown = configReferenceMarkdown();

  it('docs/configuration.md is what the schema generates (regenerate: npx node scripts/config-docs.ts)', async () => {
    assert.equal(await readFile(path.join(root, 'docs/configuration.md'), 'utf8'), markdown);
  });

  it('the config-keys tables in README.md and docs/ are what the schema generates (regenerate: npx node scripts/config-docs.ts)', async () => {
    const docs = (await readdir(path.join(root, 'docs'))).filter((name) => name.endsWith('.md'));
    let blocks = 0;
    for (const file of ['README.md', ...docs.map((name) => `docs/${name}`)]) {
      const text = await readFile(path.join(root, file), 'utf8');
      assert.equal(text, withConfigKeyTables(text), file);
      blocks += text.split('<!-- config-keys: ').length - 1;
    }
    assert.ok(blocks >= 4, `only ${blocks} config-keys blocks (docs/sinks.md has four)`);
  });

  it('fills a config-keys block with its section and rejects a section that does not exist', () => {
    const filled = withConfigKeyTables(
      'x\n<!-- config-keys: log with type: memory -->\nstale\n<!-- /config-keys -->\n',
    );
    assert.equal(
      filled,
      'x\n<!-- config-keys: log with type: memory -->\n\n| key | type | default | meaning |\n|---|---|---|---|\n' +
        '| `type` | `memory` | **required** | Selects this type. |\n\n<!-- /config-keys -->\n',
    );
    assert.throws(
      () => withConfigKeyTables('<!-- config-keys: log with type: tape -->\n<!-- /config-keys -->'),
      /no config section "log with type: tape"/,
    );
  });

  it('has a section for every type of every component kind, with its keys, types and defaults', () => {
    for (const heading of [
      '## `log` with `type: kafka`',
      '## `store` with `type: postgres`',
      '## `cache` with `type: redis`',
      '## `feeds[]` with `type: binance`',
      '## `sinks[]` with `type: webhook`',
      '## `log.sasl`',
    ])
      assert.ok(markdown.includes(`\n${heading}\n`), heading);
    // Durations and sizes read as a file would write them, required keys are marked.
    assert.match(markdown, /\| `retention` \| duration \| `1d` \| Delete processed log segments/);
    assert.match(markdown, /\| `retentionBytes` \| size \| `1GiB` \|/);
    assert.match(markdown, /\| `brokers` \| list of string \| \*\*required\*\* \| Bootstrap brokers/);
    assert.match(markdown, /\| `log` \| one of `embedded`, `memory`, `kafka` \| `\{type: embedded\}` \|/);
  });
});
