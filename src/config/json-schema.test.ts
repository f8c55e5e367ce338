import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { configJsonSchema, configJsonSchemaText } from './json-schema.ts';

const root = path.resolve(import.meta.dirname, '../..');

describe('config JSON Schema', () => {
  it('docs/config.schema.json is what the zod schema generates (regenerate: streamlines config schema > docs/config.schema.json)', async () => {
    // Compared as JSON, so the formatter may lay the file out its own way.
    const file = JSON.parse(await readFile(path.join(root, 'docs/config.schema.json'), 'utf8'));
    assert.deepEqual(file, JSON.parse(configJsonSchemaText()));
  });

  const validate = new Ajv2020({ strict: false }).compile(configJsonSchema());

  it('accepts every shipped example config', async () => {
    const dir = path.join(root, 'config');
    const files = (await readdir(dir)).filter((name) => /\.(ya?ml|json)$/.test(name));
    assert.ok(files.length > 0);
    for (const name of files) {
      const value = parseYaml(await readFile(path.join(dir, name), 'utf8'));
      assert.ok(validate(value), `${name}: ${JSON.stringify(validate.errors)}`);
    }
  });

  it('rejects what the config loader rejects: unknown keys, wrong types, a password in the file', () => {
    assert.equal(validate({ serverr: {} }), false);
    assert.equal(validate({ log: { type: 'kafka', brokers: 'not-a-list' } }), false);
    assert.equal(
      validate({
        log: {
          type: 'kafka',
          brokers: ['b:9092'],
          sasl: { mechanism: 'PLAIN', username: 'u', password: 'p' },
        },
      }),
      false,
    );
    assert.equal(
      validate({ log: { type: 'kafka', brokers: ['b:9092'], partitions: 3 }, lateness: '10s' }),
      true,
    );
  });
});
