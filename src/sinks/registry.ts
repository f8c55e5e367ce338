/** Every sink type: its config schema and its constructor. A new destination is one folder plus one entry here. */
import { type ComponentConfig, componentKind, createComponent } from '../core/component-table.ts';
import { CassandraSink, cassandraSinkSchema } from './cassandra/cassandra-sink.ts';
import { InfluxdbSink, influxdbSinkSchema } from './influxdb/influxdb-sink.ts';
import type { Sink } from './sink.ts';
import type { SinkEntry } from './sink-stage.ts';
import { WebhookSink, webhookSinkSchema } from './webhook/webhook-sink.ts';

/** A sink type; `create` builds it unopened, with secrets from `env`. */
const sinkType = componentKind<[env: NodeJS.ProcessEnv], Sink>();

/** The types a `sinks` entry may have (each entry of the config's `sinks` is a union of their schemas). */
export const SINK_TYPES = [
  sinkType({
    type: 'influxdb',
    schema: influxdbSinkSchema,
    create: (config, env) => new InfluxdbSink(config, env),
  }),
  sinkType({
    type: 'cassandra',
    schema: cassandraSinkSchema,
    create: (config, env) => new CassandraSink(config, env),
  }),
  sinkType({
    type: 'webhook',
    schema: webhookSinkSchema,
    create: (config, env) => new WebhookSink(config, env),
  }),
] as const;

/** A parsed `sinks` entry. */
export type SinkConfig = ComponentConfig<typeof SINK_TYPES>;

/** Builds the sink a config entry describes (not opened). */
export function createSink(config: SinkConfig, env: NodeJS.ProcessEnv = process.env): Sink {
  return createComponent(SINK_TYPES, config, env);
}

/** Each sink's name: its own, else its type, then type-2, type-3... for further unnamed ones of that type. */
export function sinkNames(configs: readonly Pick<SinkConfig, 'type' | 'name'>[]): string[] {
  const seen = new Map<string, number>();
  return configs.map((config) => {
    if (config.name !== undefined) return config.name;
    const count = (seen.get(config.type) ?? 0) + 1;
    seen.set(config.type, count);
    return count === 1 ? config.type : `${config.type}-${count}`;
  });
}

/** The stage's entries for the configured sinks. */
export function createSinkEntries(
  configs: readonly SinkConfig[],
  env: NodeJS.ProcessEnv = process.env,
): SinkEntry[] {
  const names = sinkNames(configs);
  return configs.map((config, i) => ({
    name: names[i]!,
    sink: createSink(config, env),
    backlogRows: config.backlog,
  }));
}
