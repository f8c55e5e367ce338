/**
 * `kafkaTicksPerSec`: the real Ingest appending to the Kafka log and every entry read back
 * (bench/micro.ts measureIngestToLog), on a broker from test/support/kafka.ts (found or started).
 */

import { KafkaLog } from '../src/log/kafka/kafka-log.ts';
import type { Log } from '../src/log/log.ts';
import { findOrStartKafka } from '../test/support/kafka.ts';
import { measureIngestToLog } from './micro.ts';

/** A Kafka-backed Log on `brokers` in a fresh topic namespace (not yet opened: the constructor does not connect). */
function openKafkaLog(brokers: string[]): Log {
  const run = `bench-${Date.now()}`;
  return new KafkaLog({ brokers, topicPrefix: `${run}.`, transactionalId: run, partitions: 3 });
}

/** Ticks/s through Kafka, or why it was not measured. */
export async function measureKafka(
  lines: readonly string[],
): Promise<{ ticksPerSec: number } | { skip: string }> {
  let broker: Awaited<ReturnType<typeof findOrStartKafka>>;
  try {
    broker = await findOrStartKafka();
  } catch (error) {
    // In CI findOrStartKafka throws rather than skip; a bench reports the gap instead of failing.
    return { skip: error instanceof Error ? error.message : String(error) };
  }
  if ('skip' in broker) return broker;
  try {
    const log = openKafkaLog(broker.brokers);
    if (log === undefined) return { skip: 'broker found, but openKafkaLog in bench/kafka.ts is not wired' };
    return { ticksPerSec: await measureIngestToLog(lines, log) };
  } finally {
    await broker.stop();
  }
}
