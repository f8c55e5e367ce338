/** Every sink type: its config schema and its constructor. A new destination is one folder plus one entry here. */
import { z } from 'zod';
import { CassandraSink, cassandraSinkSchema } from './cassandra/cassandra-sink.ts';
import { InfluxdbSink, influxdbSinkSchema } from './influxdb/influxdb-sink.ts';
import type { Sink } from './sink.ts';
import type { SinkEntry } from './sink-stage.ts';
import { WebhookSink, webhookSinkSchema } from './webhook/webhook-sink.ts';

export const sinkConfigSchema = z.discriminatedUnion('type', [
  influxdbSinkSchema,
  cassandraSinkSchema,
  webhookSinkSchema,
]);
export type SinkConfig = z.output<typeof sinkConfigSchema>;

/** The `sinks` list of the config: names must be unique (they name checkpoints). */
export const sinksConfigSchema = z
  .array(sinkConfigSchema)
  .default([])
  .superRefine((sinks, context) => {
    const names = sinkNames(sinks);
    names.forEach((name, i) => {
      if (names.indexOf(name) !== i)
        context.addIssue({ code: 'custom', path: [i, 'name'], message: `sink name "${name}" is used twice` });
    });
  });

/** Builds the sink a config entry describes (not opened). */
export function createSink(config: SinkConfig, env: NodeJS.ProcessEnv = process.env): Sink {
  switch (config.type) {
    case 'influxdb':
      return new InfluxdbSink(config, env);
    case 'cassandra':
      return new CassandraSink(config, env);
    case 'webhook':
      return new WebhookSink(config, env);
  }
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
