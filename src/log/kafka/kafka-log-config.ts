/** `log: {type: kafka}`: the distributed log (docs/distributed.md), and how it becomes KafkaLog's options. */
import { z } from 'zod';
import { sizeField } from '../../core/config-fields.ts';
import { logRetentionBytesField, logRetentionField } from '../log-config.ts';
import { kafkaSaslSchema, kafkaTlsSchema } from './kafka-config.ts';
import type { KafkaLogOptions } from './kafka-log.ts';

export const kafkaLogSchema = z.strictObject({
  type: z.literal('kafka'),
  brokers: z.array(z.string().min(1)).min(1).describe('Bootstrap brokers, host:port.'),
  partitions: z.number().int().positive().default(1).describe('Partitions of new topics.'),
  clientId: z.string().min(1).default('streamlines').describe('Kafka client id.'),
  transactionalId: z
    .string()
    .min(1)
    .optional()
    .describe('Transactional id: one per writing process, stable across restarts.'),
  topicPrefix: z.string().default('').describe('Prefix of every Kafka topic name.'),
  replicationFactor: z.number().int().positive().default(1).describe('Replicas of new topics.'),
  tls: kafkaTlsSchema,
  sasl: kafkaSaslSchema,
  retention: logRetentionField.describe(
    '`retention.ms` of the topics ingest creates (0: the broker default).',
  ),
  retentionBytes: logRetentionBytesField.describe(
    '`retention.bytes` of the topics ingest creates, per partition as Kafka counts it (0: the broker default).',
  ),
  spoolMaxBytes: sizeField
    .pipe(z.number().int().positive())
    .default(1_073_741_824)
    .describe('`ingest` buffers appends on disk, up to this many bytes, while the brokers are unreachable.'),
});

export type KafkaLogConfig = z.output<typeof kafkaLogSchema>;

/** KafkaLog's options for a `log: {type: kafka}` section (the spool is ingest's, not the log's). */
export function kafkaLogOptions(config: KafkaLogConfig): KafkaLogOptions {
  const { type: _type, spoolMaxBytes: _spool, retention, retentionBytes, ...options } = config;
  return { ...options, retentionMs: retention, retentionBytes };
}
