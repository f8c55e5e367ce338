/**
 * Append and read throughput of the Kafka log: `npx node bench/kafka-log.ts [records] [batch]`.
 * Uses STREAMLINES_TEST_KAFKA_BROKERS, or starts a throwaway broker like the tests do.
 */

import { KafkaLog } from '../src/log/kafka/kafka-log.ts';
import { findOrStartKafka } from '../test/support/kafka.ts';

const total = Number(process.argv[2] ?? 200_000);
const batch = Number(process.argv[3] ?? 2_000);
const partitions = 3;
const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'ADAUSDT', 'DOGEUSDT', 'BNBUSDT', 'LTCUSDT'];

const kafka = await findOrStartKafka();
if ('skip' in kafka) throw new Error(kafka.skip);
const id = `bench-${Date.now().toString(36)}`;
const log = new KafkaLog({ brokers: kafka.brokers, partitions, topicPrefix: `${id}.`, transactionalId: id });
try {
  await log.open();
  // An ingest entry's shape, so record sizes are realistic (~150 bytes of JSON).
  const tick = (i: number) => {
    const symbol = symbols[i % symbols.length]!;
    return {
      key: symbol,
      value: {
        kind: 'tick',
        source: 'bench',
        symbol,
        ts: 1_700_000_000_000 + i,
        price: 100 + (i % 97) * 0.01,
        size: 1 + (i % 5),
        id: String(i),
      },
    };
  };
  let started = performance.now();
  for (let from = 0; from < total; from += batch) {
    const records = Array.from({ length: Math.min(batch, total - from) }, (_, j) => tick(from + j));
    await log.append('price-ticks', records, { next: from + records.length });
  }
  const appendSeconds = (performance.now() - started) / 1000;
  started = performance.now();
  let read = 0;
  for (let partition = 0; partition < partitions; partition++) {
    for (let from = 0; ; ) {
      const records = await log.read('price-ticks', partition, from, 5_000);
      if (records.length === 0) break;
      read += records.length;
      from = records[records.length - 1]!.offset + 1;
    }
  }
  const readSeconds = (performance.now() - started) / 1000;
  if (read !== total) throw new Error(`read ${read} of ${total} records`);
  const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en')} records/s`;
  console.log(
    `append: ${total} records in batches of ${batch}: ${appendSeconds.toFixed(2)} s, ${rate(total, appendSeconds)}`,
  );
  console.log(
    `read:   ${read} records in steps of 5000: ${readSeconds.toFixed(2)} s, ${rate(read, readSeconds)}`,
  );
} finally {
  await log.close();
  await kafka.stop();
}
