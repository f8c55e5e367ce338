/**
 * `kafkaTicksPerSec`: the real Ingest appending to the Kafka log and every entry read back
 * (bench/micro.ts measureIngestToLog), on a broker from test/support/kafka.ts (found or started).
 */

import os from 'node:os';
import { KafkaLog } from '../src/log/kafka/kafka-log.ts';
import type { Log } from '../src/log/log.ts';
import { generateLines } from '../test/support/generate-ticks.ts';
import { findOrStartKafka } from '../test/support/kafka.ts';
import { measureIngestToLog, SYMBOLS } from './micro.ts';
import { listenerPid, portOf, treeCpuSeconds } from './server-cpu.ts';

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

/** CPU seconds (user + system) of this process and of the broker, now. */
async function cpuNow(brokerPid: number | undefined): Promise<{ own: number; broker: number }> {
  const { user, system } = process.cpuUsage();
  const broker = brokerPid === undefined ? 0 : await treeCpuSeconds(brokerPid);
  return { own: (user + system) / 1e6, broker };
}

if (import.meta.main) {
  // npx node bench/kafka.ts [lines]: the stage alone, with the CPU it took here and on the broker
  // (STREAMLINES_TEST_KAFKA_BROKERS names a running one; else one is started and counted too).
  const count = Number(process.argv[2] ?? 2_000_000);
  const lines = [...generateLines({ count, seed: 1, hostile: false, symbols: [...SYMBOLS] })];
  const broker = await findOrStartKafka();
  if ('skip' in broker) throw new Error(broker.skip);
  try {
    const brokerPid = await listenerPid(portOf(broker.brokers[0]!));
    const log = openKafkaLog(broker.brokers);
    const before = await cpuNow(brokerPid);
    let appended = before;
    const ticksPerSec = await measureIngestToLog(lines, log, () => {
      const { user, system } = process.cpuUsage();
      appended = { own: (user + system) / 1e6, broker: before.broker };
    });
    const after = await cpuNow(brokerPid);
    const us = (seconds: number) => Number(((seconds * 1e6) / count).toFixed(2));
    const result = {
      lines: count,
      ticksPerSec,
      cpuUsPerTick: {
        ingestAndAppend: us(appended.own - before.own),
        readBack: us(after.own - appended.own),
        broker: us(after.broker - before.broker),
      },
      loadAverage: os.loadavg().map((load) => Number(load.toFixed(2))),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await broker.stop();
  }
}
