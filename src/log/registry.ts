import path from 'node:path';
import { EmbeddedLog } from './embedded/embedded-log.ts';
import { KafkaLog, type KafkaLogOptions } from './kafka/kafka-log.ts';
import type { Log } from './log.ts';
import { MemoryLog } from './memory/memory-log.ts';

/** The log section of the config: which implementation, and its options. */
export type LogConfig =
  | { type: 'memory' }
  | { type: 'embedded'; fsync?: boolean; segmentBytes?: number; retention?: number; retentionBytes?: number }
  | ({
      type: 'kafka';
      spoolMaxBytes?: number;
      retention?: number;
      retentionBytes?: number;
    } & KafkaLogOptions);

/** Segments small enough that retention, which deletes whole ones, keeps the log near its byte cap. */
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Builds the configured log (not yet opened); the embedded one lives in `<dataDir>/log`. */
export function createLog(config: LogConfig, dataDir: string): Log {
  switch (config.type) {
    case 'memory':
      return new MemoryLog();
    case 'embedded': {
      const options: ConstructorParameters<typeof EmbeddedLog>[0] = { dir: path.join(dataDir, 'log') };
      if (config.fsync !== undefined) options.fsync = config.fsync;
      options.retentionMs = config.retention ?? 0;
      options.retentionBytes = config.retentionBytes ?? 0;
      options.segmentBytes =
        config.segmentBytes ??
        (options.retentionBytes > 0
          ? Math.max(1 << 20, Math.min(DEFAULT_SEGMENT_BYTES, Math.floor(options.retentionBytes / 8)))
          : DEFAULT_SEGMENT_BYTES);
      return new EmbeddedLog(options);
    }
    case 'kafka': {
      const { type: _type, spoolMaxBytes: _spool, retention, retentionBytes, ...options } = config;
      return new KafkaLog({ ...options, retentionMs: retention ?? 0, retentionBytes: retentionBytes ?? 0 });
    }
  }
}
