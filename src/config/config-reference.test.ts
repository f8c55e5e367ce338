import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configReferenceMarkdown } from './config-reference.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('config reference', () => {
  const markdown = configReferenceMarkdown();

  it('docs/configuration.md is what the schema generates (regenerate: streamlines config docs > docs/configuration.md)', async () => {
    assert.equal(await readFile(path.join(root, 'docs/configuration.md'), 'utf8'), markdown);
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
