import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { CACHE_TYPES } from '../cache/registry.ts';
import { componentKind } from '../core/component-table.ts';
import { FEED_TYPES } from '../feeds/registry.ts';
import { LOG_TYPES } from '../log/registry.ts';
import { SINK_TYPES } from '../sinks/registry.ts';
import { STORE_TYPES } from '../store/registry.ts';
import { configJsonSchema } from './json-schema.ts';
import { parseConfig } from './load.ts';
import { componentUnion } from './schema.ts';

/** The `type` values a section of the JSON Schema accepts, in order. */
function typesOf(node: z.core.JSONSchema.JSONSchema | undefined): string[] {
  const items = node?.items;
  const union = items !== undefined && !Array.isArray(items) && typeof items === 'object' ? items : node;
  return (union?.oneOf ?? []).map((member) => {
    const type = member.properties?.type;
    return typeof type === 'object' ? String(type.const) : '?';
  });
}

describe('config composed from the registries', () => {
  it('each component section accepts exactly the types of its registry table', () => {
    const properties = configJsonSchema().properties ?? {};
    const sections = {
      feeds: FEED_TYPES,
      log: LOG_TYPES,
      store: STORE_TYPES,
      cache: CACHE_TYPES,
      sinks: SINK_TYPES,
    };
    for (const [key, table] of Object.entries(sections)) {
      const node = properties[key];
      assert.deepEqual(
        typesOf(typeof node === 'object' ? node : undefined),
        table.map((entry) => entry.type),
        key,
      );
    }
  });

  it('a table entry is all a new type needs: the union parses it with its defaults', () => {
    const kind = componentKind<[], string>();
    const union = componentUnion([
      kind({ type: 'a', schema: z.strictObject({ type: z.literal('a') }), create: () => 'a' }),
      kind({
        type: 'b',
        schema: z.strictObject({ type: z.literal('b'), size: z.number().default(2) }),
        create: (config) => `b${config.size}`,
      }),
    ] as const);
    assert.deepEqual(union.parse({ type: 'b' }), { type: 'b', size: 2 });
    assert.throws(() => union.parse({ type: 'c' }));
    assert.throws(() => union.parse({ type: 'a', size: 1 }));
  });

  it('names the key of a component section in its errors: unknown type, unknown key, bad value', () => {
    assert.throws(() => parseConfig({ log: { type: 'tape' } }), /log\.type/);
    assert.throws(() => parseConfig({ store: { type: 'duckdb', paht: 'x' } }), /store\.paht: unknown key/);
    assert.throws(
      () => parseConfig({ log: { type: 'embedded', retention: 'soon' } }),
      /log\.retention: expected a duration/,
    );
    assert.throws(() => parseConfig({ sinks: [{ type: 'webhook' }] }), /sinks\[0\]\.url/);
  });

  it('retention.deadLetters: a count of dead letters kept, 10 000 unless told, 0 keeps all', () => {
    assert.equal(parseConfig({}).retention.deadLetters, 10_000);
    assert.equal(parseConfig({ retention: { deadLetters: 0 } }).retention.deadLetters, 0);
    for (const deadLetters of [-1, 1.5, '10d']) {
      assert.throws(() => parseConfig({ retention: { deadLetters } }), /retention\.deadLetters/);
    }
  });
});
