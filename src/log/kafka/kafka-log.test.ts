/**
 * The log conformance suite against a real Kafka broker (test/support/kafka.ts finds or starts one).
 * Each test gets its own topic prefix and transactional id, so tests share the broker but no data.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Producer, stringSerializers } from '@platformatic/kafka';
import { findOrStartKafka, groupOffsets, topicConfigs } from '../../../test/support/kafka.ts';
import { logConfigSchema } from '../../config/schema.ts';
import { EntryEncoder } from '../../core/entry-codec.ts';
import { logConformance } from '../conformance.ts';
import { partitionFor } from '../log.ts';
import { createLog } from '../registry.ts';
import { KafkaLog, type KafkaLogOptions } from './kafka-log.ts';
import { KafkaWire } from './kafka-wire.ts';

it('is configured as log type kafka, with defaults for everything but the brokers', () => {
  const config = logConfigSchema.parse({ type: 'kafka', brokers: ['127.0.0.1:9092'] });
  assert.deepEqual(config, {
    type: 'kafka',
    brokers: ['127.0.0.1:9092'],
    partitions: 1,
    clientId: 'streamlines',
    topicPrefix: '',
    replicationFactor: 1,
    retention: 86_400_000,
    retentionBytes: 1024 ** 3,
    spoolMaxBytes: 1024 ** 3,
  });
  assert.ok(createLog(config, '/nonexistent') instanceof KafkaLog);
  assert.throws(() => logConfigSchema.parse({ type: 'kafka', brokers: [] }));
  assert.throws(() => new KafkaLog({ brokers: ['127.0.0.1:9092'], partitions: 0 }), /partitions/);
});

const kafka = await findOrStartKafka();

if ('skip' in kafka) {
  it('kafka log conformance', { skip: kafka.skip }, () => {});
} else {
  after(() => kafka.stop());
  let run = 0;
  const fresh = (partitions: number): KafkaLogOptions => {
    const id = `t${process.pid}-${Date.now().toString(36)}-${run++}`;
    return { brokers: kafka.brokers, partitions, topicPrefix: `${id}.`, transactionalId: `${id}-log` };
  };
  const open = async (options: KafkaLogOptions) => {
    const log = new KafkaLog(options);
    await log.open();
    return log;
  };
  /** Opens a log, runs `body` with it, and closes it however it ends. */
  const withLog = async (options: KafkaLogOptions, body: (log: KafkaLog) => Promise<void>): Promise<void> => {
    const log = await open(options);
    try {
      await body(log);
    } finally {
      await log.close();
    }
  };
  /** Opens two logs, runs `body` with them, and closes both (the second first) however it ends. */
  const withTwo = async (
    firstOptions: KafkaLogOptions,
    secondOptions: KafkaLogOptions,
    body: (first: KafkaLog, second: KafkaLog) => Promise<void>,
  ): Promise<void> => {
    const first = await open(firstOptions);
    try {
      const second = await open(secondOptions);
      try {
        await body(first, second);
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
  };

  for (const partitions of [1, 3]) {
    logConformance(
      `kafka, ${partitions} partition(s)`,
      async () => {
        const options = fresh(partitions);
        return { log: await open(options), reopen: () => open(options), cleanup: async () => {} };
      },
      // Kafka keeps data across reopen (durable); its storage tail is the broker's, not ours to damage.
      { durable: true, damageableTail: false, offsetGaps: true },
    );
  }

  describe('kafka log specifics', () => {
    it('puts each key in the partition partitionFor() names, and keeps existing topics at their partition count', async () => {
      const options = fresh(4);
      await withLog(options, async (log) => {
        const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'ADAUSDT', 'DOGEUSDT'];
        await log.append(
          'price-ticks',
          keys.map((key, i) => ({ key, value: i })),
        );
        for (let partition = 0; partition < 4; partition++) {
          const got = await log.read<number>('price-ticks', partition, 0, 100);
          for (const record of got) assert.equal(partitionFor(record.key, 4), partition, record.key);
        }
      });
      // A log configured with another count still uses the topic's real one.
      const other = await open({ ...options, partitions: 2 });
      try {
        assert.equal(other.partitions('price-ticks'), 4);
        assert.equal(other.partitions('not-yet-created'), 2);
      } finally {
        await other.close();
      }
    });

    it('sees appends made by another log instance (another process) in read, endOffset and waitFor', async () => {
      const options = fresh(1);
      // The same transactional id: a restarted writer's first reads (its own state) come before it appends.
      await withTwo(options, options, async (reader, writer) => {
        const waiting = reader.waitFor('alerts', 0, 0, 10_000);
        await writer.append('alerts', [{ key: 'a', value: { n: 1 } }], { lastSeq: 1 });
        assert.equal(await waiting, true);
        const got = await reader.read<{ n: number }>('alerts', 0, 0, 10);
        assert.deepEqual(
          got.map((record) => record.value),
          [{ n: 1 }],
        );
        assert.ok(reader.endOffset('alerts', 0) > got[0]!.offset);
        assert.deepEqual(await reader.producerState('alerts'), { lastSeq: 1 });
      });
    });

    it('fences a second writer with the same transactional id (one writer per id)', async () => {
      const options = fresh(1);
      await withTwo(options, options, async (first, second) => {
        await first.append('alerts', [{ key: 'a', value: 1 }]);
        // The producer registers at its first append, fencing the earlier one.
        await second.append('alerts', [{ key: 'a', value: 2 }]);
        await assert.rejects(first.append('alerts', [{ key: 'a', value: 3 }]));
        const values = (await second.read<number>('alerts', 0, 0, 10)).map((record) => record.value);
        assert.deepEqual(values, [1, 2]);
      });
    });

    it('does not fence a writer by opening, reading or waiting with the same transactional id', async () => {
      const options = fresh(1);
      const writer = await open(options);
      try {
        await writer.append('price-ticks', [{ key: 'a', value: 1 }], { seq: 1 });
        // A process that only reads (a `serve`), configured with the writer's id.
        const reader = await open(options);
        try {
          assert.deepEqual(await reader.producerState('price-ticks'), { seq: 1 });
          assert.equal(await reader.waitFor('price-ticks', 0, 0, 5_000), true);
          await writer.append('price-ticks', [{ key: 'a', value: 2 }], { seq: 2 });
          const values = (await reader.read<number>('price-ticks', 0, 0, 10)).map((record) => record.value);
          assert.deepEqual(values, [1, 2]);
        } finally {
          await reader.close();
        }
        await writer.append('price-ticks', [{ key: 'a', value: 3 }], { seq: 3 });
        const values = (await writer.read<number>('price-ticks', 0, 0, 10)).map((record) => record.value);
        assert.deepEqual(values, [1, 2, 3]);
        assert.deepEqual(await writer.producerState('price-ticks'), { seq: 3 });
      } finally {
        await writer.close();
      }
    });

    it('keeps producer state per transactional id: each reads back its own, a new id none', async () => {
      const options = fresh(2);
      const as = (id: string): KafkaLogOptions => ({
        ...options,
        transactionalId: `${options.transactionalId}-${id}`,
      });
      await withTwo(as('a'), as('b'), async (a, b) => {
        await a.append('price-ticks', [{ key: 'x', value: 1 }], { from: 'a', seq: 1 });
        // Enough of b's states after a's that finding a's takes several look-back windows (8, 64, 512
        // offsets: each transaction is a record and a commit marker).
        for (let seq = 1; seq <= 40; seq++) {
          await b.append('price-ticks', seq % 10 === 0 ? [{ key: 'y', value: seq }] : [], { from: 'b', seq });
        }
        assert.deepEqual(await a.producerState('price-ticks'), { from: 'a', seq: 1 });
        assert.deepEqual(await b.producerState('price-ticks'), { from: 'b', seq: 40 });
        const stranger = await open(as('c'));
        try {
          assert.equal(await stranger.producerState('price-ticks'), undefined);
          await stranger.append('price-ticks', [], { from: 'c' });
          assert.deepEqual(await stranger.producerState('price-ticks'), { from: 'c' });
        } finally {
          await stranger.close();
        }
        // A restarted `a` (same id, new instance) resumes from its own state, not b's or c's.
        const restarted = await open(as('a'));
        try {
          assert.deepEqual(await restarted.producerState('price-ticks'), { from: 'a', seq: 1 });
        } finally {
          await restarted.close();
        }
        assert.deepEqual(await b.producerState('price-ticks'), { from: 'b', seq: 40 });
      });
    });

    it('takes an append bigger than the broker accepts in one request (1 MiB), atomically and in order', async () => {
      await withLog(fresh(1), async (log) => {
        // 12 000 records of ~200 bytes: about 2.4 MB for one partition, over message.max.bytes.
        const pad = 'x'.repeat(160);
        const records = Array.from({ length: 12_000 }, (_, i) => ({ key: 'k', value: { i, pad } }));
        await log.append('big', records, { upTo: 12_000 });
        const read = await log.read<{ i: number }>('big', 0, 0, 20_000);
        assert.deepEqual(
          read.map((record) => record.value.i),
          records.map((record) => record.value.i),
        );
        assert.deepEqual(await log.producerState('big'), { upTo: 12_000 });
      });
    });

    it('keeps a producer state bigger than the broker default message size (1 MiB)', async () => {
      const options = fresh(1);
      // Ingest's dedup ranges can outgrow 1 MiB (a feed whose ids have gaps): about 3 MB of JSON.
      const ranges = Array.from({ length: 200_000 }, (_, i) => [i * 3, i * 3 + 1]);
      // One state topic made new by the log, one made before with the broker's default limit.
      const wire = new KafkaWire({ brokers: kafka.brokers, clientId: 'streamlines-test' });
      try {
        await wire.createTopic(`${options.topicPrefix}old.producer-state`, 1, 1, [
          { name: 'cleanup.policy', value: 'compact' },
        ]);
      } finally {
        await wire.disconnect();
      }
      await withLog(options, async (log) => {
        for (const topic of ['new', 'old']) {
          await log.append(topic, [{ key: 'k', value: 1 }], { ranges });
          await log.append(topic, [{ key: 'k', value: 2 }], { ranges, after: 2 });
          assert.deepEqual(await log.producerState(topic), { ranges, after: 2 }, topic);
          assert.deepEqual(
            (await log.read<number>(topic, 0, 0, 10)).map((record) => record.value),
            [1, 2],
          );
        }
      });
    });

    it("reports readers' offsets to a consumer group that Kafka's tools read", async () => {
      const options = fresh(3);
      await withLog(options, async (log) => {
        await log.append('g', [
          { key: 'a', value: 1, partition: 0 },
          { key: 'b', value: 2, partition: 2 },
        ]);
        const group = `${options.topicPrefix}readers`;
        // Two readers (processes) reporting their own partitions at the same moment, a few times.
        const other = await open({ ...options, transactionalId: `${options.transactionalId}-other` });
        try {
          for (let round = 0; round < 3; round++) {
            await Promise.all([
              log.commitGroupOffsets(group, 'g', [{ partition: 0, offset: 1 }]),
              other.commitGroupOffsets(group, 'g', [{ partition: 2, offset: 1 }]),
            ]);
          }
        } finally {
          await other.close();
        }
        const byPartition = await groupOffsets(kafka.brokers, group, `${options.topicPrefix}g`, 3);
        // -1: nothing committed for partition 1.
        assert.deepEqual(byPartition, { 0: 1, 1: -1, 2: 1 });
        // A reader's next offset after a packed record is the Kafka offset after it, as Kafka counts.
        await log.append('g', [
          { key: 'c', value: 3, partition: 1 },
          { key: 'd', value: 4, partition: 1 },
        ]);
        const [, second] = await log.read('g', 1, 0, 2);
        await log.commitGroupOffsets(group, 'g', [{ partition: 1, offset: second!.offset + 1 }]);
        const after = await groupOffsets(kafka.brokers, group, `${options.topicPrefix}g`, 3);
        assert.equal(after[1], 1, 'past the one record at Kafka offset 0');
      });
    });

    it('creates its topics with log.retention and log.retentionBytes, and the state topic compacted', async () => {
      const options = { ...fresh(1), retentionMs: 3_600_000, retentionBytes: 5 * 1024 ** 2 };
      await withLog(options, async (log) => {
        await log.append('r', [{ key: 'a', value: 1 }], { at: 1 });
        const keys = ['retention.ms', 'retention.bytes', 'cleanup.policy'];
        assert.deepEqual(await topicConfigs(kafka.brokers, `${options.topicPrefix}r`, keys), {
          'retention.ms': '3600000',
          'retention.bytes': String(5 * 1024 ** 2),
          'cleanup.policy': 'delete',
        });
        const state = await topicConfigs(kafka.brokers, `${options.topicPrefix}r.producer-state`, keys);
        assert.equal(state['cleanup.policy'], 'compact');
      });
    });

    it("rejects an explicit partition beyond an existing topic's real partition count", async () => {
      const options = fresh(3);
      const creator = await open(options);
      try {
        await creator.append('alerts', [{ key: 'a', value: 0, partition: 2 }]);
      } finally {
        await creator.close();
      }
      // Configured for 4 partitions, but the topic exists with 3: partition 3 does not exist.
      await withLog({ ...options, partitions: 4 }, async (log) => {
        await assert.rejects(log.append('alerts', [{ key: 'a', value: 1, partition: 3 }]), /partition 3/);
        await log.append('alerts', [{ key: 'a', value: 2, partition: 2 }]);
        const values = (await log.read<number>('alerts', 2, 0, 10)).map((record) => record.value);
        assert.deepEqual(values, [0, 2]);
      });
    });

    it('stores a tick entry in a compact binary value, and still reads values written before packing', async () => {
      const options = fresh(1);
      const log = await open(options);
      const tick = {
        source: 'binance',
        symbol: 'BTCUSDT',
        ts: 1_764_000_000_123,
        price: 97_123.45,
        size: 0.0123,
        receivedAt: 1_764_000_000_150,
        id: '4200000001',
        side: 'buy',
        kind: 'tick',
        seq: 123_456,
      };
      const wire = new KafkaWire({ brokers: kafka.brokers, clientId: 'raw-reader' });
      // Earlier versions of this log wrote each entry as a record of its own: JSON text, then a
      // one-entry codec batch.
      const older = new Producer({
        clientId: 'older-writer',
        bootstrapBrokers: kafka.brokers,
        serializers: { ...stringSerializers, value: (value?: Buffer) => value },
      });
      try {
        await log.append('price-ticks', [{ key: 'BTCUSDT', value: tick }]);
        await wire.connect();
        const topic = `${options.topicPrefix}price-ticks`;
        const [raw] = (await wire.fetch(topic, 0, 0, 0)).records;
        assert.ok(raw?.value, 'the record is on the topic');
        // JSON would take over 150 bytes; the entry codec carries the same tick exactly in under 64.
        assert.ok(raw.value.length < 64, `value of ${raw.value.length} bytes`);
        assert.ok(JSON.stringify(tick).length > 150);

        const oneEntry = Buffer.from(
          new EntryEncoder().encode([{ key: 'BTCUSDT', value: { ...tick, seq: 1 } }]),
        );
        const sent = await older.send({
          messages: [
            { topic, key: 'BTCUSDT', value: Buffer.from(JSON.stringify(tick)), partition: 0 },
            { topic, key: 'BTCUSDT', value: oneEntry, partition: 0 },
          ],
        });
        const jsonAt = Number(sent.offsets?.[0]?.offset);
        await log.append('price-ticks', [{ key: 'BTCUSDT', value: { ...tick, seq: 123_457 } }]);
        const read = await log.read<typeof tick>('price-ticks', 0, 0, 10);
        assert.deepEqual(
          read.map((record) => record.value),
          [tick, tick, { ...tick, seq: 1 }, { ...tick, seq: 123_457 }],
        );
        assert.ok(read.every((record, i) => i === 0 || record.offset > read[i - 1]!.offset));
        // A checkpoint written before packing holds Kafka offsets: a read from one starts at that record.
        const fromOld = await log.read<typeof tick>('price-ticks', 0, jsonAt + 1, 10);
        assert.deepEqual(
          fromOld.map((record) => record.value.seq),
          [1, 123_457],
        );
        assert.deepEqual(fromOld[0], read[2]);
      } finally {
        await older.close();
        await wire.disconnect();
        await log.close();
      }
    });

    it("packs an append's entries of one partition into one Kafka record, each entry at its own offset", async () => {
      const options = fresh(2);
      await withLog(options, async (log) => {
        const entries = (from: number, count: number) =>
          Array.from({ length: count }, (_, i) => ({ key: `S${(from + i) % 5}`, value: { n: from + i } }));
        await log.append('p', entries(0, 1_000), { at: 1 });
        await log.append('p', entries(1_000, 10));
        const wire = new KafkaWire({ brokers: kafka.brokers, clientId: 'raw-reader' });
        try {
          await wire.connect();
          for (let partition = 0; partition < 2; partition++) {
            const raw = (await wire.fetch(`${options.topicPrefix}p`, partition, 0, 0)).records;
            assert.equal(raw.length, 2, `one Kafka record per append in partition ${partition}`);
          }
        } finally {
          await wire.disconnect();
        }
        for (let partition = 0; partition < 2; partition++) {
          const expected = entries(0, 1_010).filter(({ key }) => partitionFor(key, 2) === partition);
          const all = await log.read<{ n: number }>('p', partition, 0, 2_000);
          assert.deepEqual(
            all.map(({ key, value }) => ({ key, value })),
            expected,
          );
          // Any entry's offset reads from that entry on; reading in small steps misses and repeats nothing.
          const middle = Math.floor(all.length / 2);
          assert.deepEqual(
            await log.read('p', partition, all[middle]!.offset, 3),
            all.slice(middle, middle + 3),
          );
          assert.deepEqual(await log.read('p', partition, all[middle]!.offset + 1, 1), [all[middle + 1]]);
          const stepped: unknown[] = [];
          for (let from = 0; ; ) {
            const step = await log.read('p', partition, from, 7);
            if (step.length === 0) break;
            stepped.push(...step);
            from = step[step.length - 1]!.offset + 1;
          }
          assert.deepEqual(stepped, all);
          const end = log.endOffset('p', partition);
          assert.ok(end > all[all.length - 1]!.offset);
          assert.equal(await log.waitFor('p', partition, all[all.length - 1]!.offset, 1_000), true);
          assert.equal(await log.waitFor('p', partition, all[all.length - 1]!.offset + 1, 200), false);
        }
      });
    });
  });
}
