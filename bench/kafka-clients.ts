/**
 * The two maintained Kafka clients on the Kafka log's own pattern, on one broker (docs/kafka.md):
 * appends of `batch` ~150-byte ticks over 3 partitions, each one transaction that also writes a
 * producer-state record, then everything read back read_committed.
 *
 *   npx node bench/kafka-clients.ts [records] [batch]
 *
 * @platformatic/kafka is measured through KafkaLog itself. @confluentinc/kafka-javascript is a native
 * addon the project does not depend on: build it elsewhere (docs/kafka.md says how) and point
 * CKJS_MODULE at its package directory; without it only the first client is measured.
 */
import { createRequire } from 'node:module';
import { KafkaLog } from '../src/log/kafka/kafka-log.ts';
import { partitionFor } from '../src/log/log.ts';
import { findOrStartKafka } from '../test/support/kafka.ts';

const total = Number(process.argv[2] ?? 100_000);
const batch = Number(process.argv[3] ?? 2_000);
const partitions = 3;
const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'ADAUSDT', 'DOGEUSDT', 'BNBUSDT', 'LTCUSDT'];

/** An ingest entry's shape, so record sizes are realistic. */
function tick(i: number) {
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
}

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);

async function platformatic(brokers: string[]) {
  const id = `bench-plt-${Date.now().toString(36)}`;
  const log = new KafkaLog({ brokers, partitions, topicPrefix: `${id}.`, transactionalId: id });
  await log.open();
  try {
    let started = performance.now();
    for (let from = 0; from < total; from += batch) {
      const records = Array.from({ length: Math.min(batch, total - from) }, (_, j) => tick(from + j));
      await log.append('price-ticks', records, { next: from + records.length });
    }
    const appendMs = performance.now() - started;
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
    if (read !== total) throw new Error(`platformatic: read ${read} of ${total}`);
    return { append: rate(total, appendMs), read: rate(read, performance.now() - started) };
  } finally {
    await log.close();
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the optional native client is loaded untyped
async function confluent(brokers: string[], module: any) {
  const { Kafka } = module.KafkaJS;
  const id = `bench-ck-${Date.now().toString(36)}`;
  const topic = `${id}.price-ticks`;
  const kafka = new Kafka({ kafkaJS: { brokers, clientId: id, logLevel: 0 } });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      { topic, numPartitions: partitions },
      {
        topic: `${topic}.producer-state`,
        numPartitions: 1,
        configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
      },
    ],
  });
  await admin.disconnect();
  const producer = kafka.producer({
    kafkaJS: { transactionalId: id, idempotent: true, maxInFlightRequests: 1 },
  });
  await producer.connect();
  let started = performance.now();
  for (let from = 0; from < total; from += batch) {
    const records = Array.from({ length: Math.min(batch, total - from) }, (_, j) => tick(from + j));
    const transaction = await producer.transaction();
    await transaction.send({
      topic,
      messages: records.map(({ key, value }) => ({
        key,
        value: JSON.stringify(value),
        partition: partitionFor(key, partitions),
      })),
    });
    await transaction.send({
      topic: `${topic}.producer-state`,
      messages: [
        {
          key: `price-ticks\u0000${id}`,
          value: JSON.stringify({ next: from + records.length }),
          partition: 0,
        },
      ],
    });
    await transaction.commit();
  }
  const appendMs = performance.now() - started;
  await producer.disconnect();
  const consumer = kafka.consumer({
    kafkaJS: { groupId: id, fromBeginning: true, autoCommit: false },
    'isolation.level': 'read_committed',
  });
  await consumer.connect();
  await consumer.subscribe({ topic });
  started = performance.now();
  let read = 0;
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch: fetched }: { batch: { messages: unknown[] } }) => {
          read += fetched.messages.length;
          if (read >= total) resolve();
        },
      })
      .catch(reject);
  });
  const readMs = performance.now() - started;
  await consumer.disconnect();
  return { append: rate(total, appendMs), read: rate(read, readMs) };
}

const kafka = await findOrStartKafka();
if ('skip' in kafka) throw new Error(kafka.skip);
try {
  console.log(`${total} records, appends of ${batch}, ${partitions} partitions, one transaction per append`);
  console.log('@platformatic/kafka', await platformatic(kafka.brokers));
  const modulePath = process.env.CKJS_MODULE;
  if (modulePath === undefined) console.log('@confluentinc/kafka-javascript: set CKJS_MODULE to measure it');
  else
    console.log(
      '@confluentinc/kafka-javascript',
      await confluent(kafka.brokers, createRequire(import.meta.url)(modulePath)),
    );
} finally {
  await kafka.stop();
}
