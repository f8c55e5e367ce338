/**
 * The JSON Schema of the config file, generated from the zod schema (the one source of truth):
 * docs/config.schema.json holds its output and a test keeps the two equal. Editors use it for
 * completion and checks (`# yaml-language-server: $schema=...`).
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';

export const CONFIG_SCHEMA_ID = 'https://streamlines.dev/config.schema.json';

/** The config file's JSON Schema (draft 2020-12), as a file would hold it. */
export function configJsonSchema(): z.core.JSONSchema.JSONSchema {
  // The file's side of the schema (io: input): durations are strings or numbers there, and keys with
  // defaults are optional. Transforms have no JSON Schema form; their input type is what a file holds.
  const schema = z.toJSONSchema(configSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      // zod leaves out the default of a key whose value is transformed (a duration, a size), as the
      // default is the parsed value; ms and bytes are values a file may hold too, so show it.
      if (zodSchema instanceof z.ZodDefault && jsonSchema.default === undefined)
        jsonSchema.default = zodSchema.def.defaultValue;
    },
  });
  return {
    ...schema,
    $id: CONFIG_SCHEMA_ID,
    title: 'Streamlines config',
    description:
      'Every key optional; unknown keys are errors. Each key can also be set from the environment: STREAMLINES_<PATH> with __ between levels (docs/distributed.md).',
  };
}

/** The schema as docs/config.schema.json holds it. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}
