import path from 'node:path';
import { EmbeddedLog } from './embedded/embedded-log.ts';
import { KafkaLog, type KafkaLogOptions } from './kafka/kafka-log.ts';
import type { Log } from './log.ts';
import { MemoryLog } from './memory/memory-log.ts';

/** The log section of the config: which implementation, and its options. */
export type LogConfig =
  | { type: 'memory' }
  | { type: 'embedded'; fsync?: boolean; segmentBytes?: number }
  | ({ type: 'kafka'; spoolMaxBytes?: number } & KafkaLogOptions);

/** Builds the configured log (not yet opened); the embedded one lives in `<dataDir>/log`. */
export function createLog(config: LogConfig, dataDir: string): Log {
  switch (config.type) {
    case 'memory':
      return new MemoryLog();
    case 'embedded': {
      const options: ConstructorParameters<typeof EmbeddedLog>[0] = { dir: path.join(dataDir, 'log') };
      if (config.fsync !== undefined) options.fsync = config.fsync;
      if (config.segmentBytes !== undefined) options.segmentBytes = config.segmentBytes;
      return new EmbeddedLog(options);
    }
    case 'kafka': {
      const { type: _type, spoolMaxBytes: _spool, ...options } = config;
      return new KafkaLog(options);
    }
  }
}
