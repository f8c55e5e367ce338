/** Every log type: its config schema and its constructor. A new log is one folder plus one entry here. */
import path from 'node:path';
import { type ComponentConfig, componentKind, createComponent } from '../core/component-table.ts';
import { EmbeddedLog } from './embedded/embedded-log.ts';
import { embeddedLogSchema } from './embedded/embedded-log-config.ts';
import { KafkaLog } from './kafka/kafka-log.ts';
import { kafkaLogOptions, kafkaLogSchema } from './kafka/kafka-log-config.ts';
import type { Log } from './log.ts';
import { MemoryLog } from './memory/memory-log.ts';
import { memoryLogSchema } from './memory/memory-log-config.ts';

/** Segments small enough that retention, which deletes whole ones, keeps the log near its byte cap. */
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** A log type; `create` builds it unopened, the embedded one in `<dataDir>/log`. */
const logType = componentKind<[dataDir: string], Log>();

/** The `log` section's types (the config's `log` is a union of their schemas). */
export const LOG_TYPES = [
  logType({
    type: 'embedded',
    schema: embeddedLogSchema,
    create: (config, dataDir) =>
      new EmbeddedLog({
        dir: path.join(dataDir, 'log'),
        fsync: config.fsync,
        retentionMs: config.retention,
        retentionBytes: config.retentionBytes,
        segmentBytes:
          config.segmentBytes ??
          (config.retentionBytes > 0
            ? Math.max(1 << 20, Math.min(DEFAULT_SEGMENT_BYTES, Math.floor(config.retentionBytes / 8)))
            : DEFAULT_SEGMENT_BYTES),
      }),
  }),
  logType({ type: 'memory', schema: memoryLogSchema, create: () => new MemoryLog() }),
  logType({
    type: 'kafka',
    schema: kafkaLogSchema,
    create: (config) => new KafkaLog(kafkaLogOptions(config)),
  }),
] as const;

/** The parsed `log` section. */
export type LogConfig = ComponentConfig<typeof LOG_TYPES>;

/** Builds the configured log (not yet opened); the embedded one lives in `<dataDir>/log`. */
export function createLog(config: LogConfig, dataDir: string): Log {
  return createComponent(LOG_TYPES, config, dataDir);
}
