/**
 * The shape of every registry (feeds, log, store, cache, sinks): a table with one entry per type of
 * the component, each `{type, schema, create}`. The schema sits beside the type's code; the config
 * composes one discriminated union per table (src/config/schema.ts), so its JSON Schema and the
 * config reference are built from the same entries, and adding a type is one entry in one table.
 */
import type { z } from 'zod';

/** A config schema whose output names its type (`{type: 'embedded', ...}`). */
export type TypedConfigSchema = z.core.$ZodTypeDiscriminable & z.ZodType<{ type: string }>;

/** One type of a component kind. */
export interface ComponentType<Schema extends TypedConfigSchema, Context extends unknown[], Instance> {
  /** The `type` value of the config that selects this entry. */
  readonly type: z.output<Schema>['type'];
  /** The entry's config, declared beside its code: keys, defaults, descriptions. */
  readonly schema: Schema;
  /**
   * Builds an instance from a config this entry's schema produced. Declared as a method so that a
   * table holds entries of different configs (method parameters compare bivariantly);
   * `createComponent` hands each entry only configs of its own `type`.
   */
  create(config: z.output<Schema>, ...context: Context): Instance;
}

/** Any entry of a table whose instances take `Context` and are `Instance`s. */
export type AnyComponentType<Context extends unknown[] = never[], Instance = unknown> = ComponentType<
  TypedConfigSchema,
  Context,
  Instance
>;

/** A table: at least one entry, so the config can make a union of it. */
export type ComponentTable = readonly [AnyComponentType, ...AnyComponentType[]];

/** The parsed config of any entry of `Table` (the union of the entries' schema outputs). */
export type ComponentConfig<Table extends ComponentTable> = z.output<Table[number]['schema']>;

/**
 * Declares the entries of one kind: `Context` is what `create` takes besides the config (a data
 * dir, the environment), `Instance` what it returns. The helper only fixes those two, so each
 * entry's `create` gets its config type from its own schema.
 */
export function componentKind<Context extends unknown[], Instance>() {
  return <Schema extends TypedConfigSchema>(
    entry: ComponentType<Schema, Context, Instance>,
  ): ComponentType<Schema, Context, Instance> => entry;
}

/** Builds the instance a parsed config names, with the table's entry of its `type`. */
export function createComponent<Context extends unknown[], Instance>(
  table: readonly AnyComponentType<Context, Instance>[],
  config: { type: string },
  ...context: Context
): Instance {
  const entry = table.find((candidate) => candidate.type === config.type);
  // The config schema is the union of these entries, so a parsed config always has one.
  if (entry === undefined) throw new Error(`no entry for type "${config.type}" in this registry`);
  return entry.create(config, ...context);
}

/**
 * A refinement for a config list whose entries need distinct names (they name checkpoints, metrics,
 * status): `namesOf` gives each entry's name, defaults included; a name used again is an issue at
 * that entry's `name`, so the message names its path.
 */
export function uniqueNames<Entry>(namesOf: (entries: readonly Entry[]) => string[], what: string) {
  return (entries: readonly Entry[], context: z.RefinementCtx): void => {
    const names = namesOf(entries);
    names.forEach((name, index) => {
      if (names.indexOf(name) !== index)
        context.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `${what} "${name}" is used twice; give each a unique name`,
        });
    });
  };
}
