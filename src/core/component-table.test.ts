import assert from 'node:assert/strict';
import { it } from 'node:test';
import { z } from 'zod';
import { componentKind, createComponent } from './component-table.ts';

const greeter = componentKind<[name: string], string>();

const GREETERS = [
  greeter({
    type: 'plain',
    schema: z.strictObject({ type: z.literal('plain') }),
    create: (_config, name) => `hello ${name}`,
  }),
  greeter({
    type: 'loud',
    schema: z.strictObject({ type: z.literal('loud'), marks: z.number().int().default(1) }),
    // The config is the entry's own schema output: `marks` is a number here, its default filled in.
    create: (config, name) => `HELLO ${name.toUpperCase()}${'!'.repeat(config.marks)}`,
  }),
] as const;

it('builds with the entry whose type the config names, passing the context on', () => {
  assert.equal(createComponent(GREETERS, { type: 'plain' }, 'ada'), 'hello ada');
  const loud = GREETERS[1].schema.parse({ type: 'loud', marks: 3 });
  assert.equal(createComponent(GREETERS, loud, 'ada'), 'HELLO ADA!!!');
});

it('refuses a type no entry has (a config the union did not produce)', () => {
  assert.throws(() => createComponent(GREETERS, { type: 'whisper' }, 'ada'), /no entry for type "whisper"/);
});

/** Entries the type checker must refuse (`npm run typecheck` fails if either line compiles); never run. */
export function entriesThatDoNotCompile(): void {
  const plain = z.strictObject({ type: z.literal('plain') });
  // @ts-expect-error the type is not the schema's literal
  greeter({ type: 'loud', schema: plain, create: () => '' });
  // @ts-expect-error create reads a key the schema does not have
  greeter({ type: 'plain', schema: plain, create: (config) => String(config.marks) });
}
