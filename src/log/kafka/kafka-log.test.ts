/**
 * The log conformance suite against a real Kafka broker (test/support/kafka.ts finds or starts one).
 * Each test gets its own topic prefix and transactional id, so tests share the broker but no data.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { findOrStartKafka } from '../../../test/support/kafka.ts';
import { logConfigSchema } from '../../config/schema.ts';
import { logConformance } from '../conformance.ts';
import { partitionFor } from '../log.ts';
import { createLog } from '../registry.ts';
import { KafkaLog, type KafkaLogOptions } from './kafka-log.ts';

it('is configured as log type kafka, with defaults for everything but the brokers', () => {
  const config = logConfigSchema.parse({ type: 'kafka', brokers: ['127.0.0.1:9092'] });
  assert.deepEqual(config, {
    type: 'kafka',
    brokers: ['127.0.0.1:9092'],
    partitions: 1,
    clientId: 'streamlines',
    topicPrefix: '',
    replicationFactor: 1,
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
      const log = await open(options);
      try {
        const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'ADAUSDT', 'DOGEUSDT'];
        await log.append(
          'price-ticks',
          keys.map((key, i) => ({ key, value: i })),
        );
        for (let partition = 0; partition < 4; partition++) {
          const got = await log.read<number>('price-ticks', partition, 0, 100);
          for (const record of got) assert.equal(partitionFor(record.key, 4), partition, record.key);
        }
      } finally {
        await log.close();
      }
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
      const reader = await open({ ...options, transactionalId: `${options.transactionalId}-reader` });
      const writer = await open(options);
      try {
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
      } finally {
        await writer.close();
        await reader.close();
      }
    });

    it('fences a second writer with the same transactional id (one writer per id)', async () => {
      const options = fresh(1);
      const first = await open(options);
      const second = await open(options);
      try {
        await second.append('alerts', [{ key: 'a', value: 2 }]);
        await assert.rejects(first.append('alerts', [{ key: 'a', value: 1 }]));
        const values = (await second.read<number>('alerts', 0, 0, 10)).map((record) => record.value);
        assert.deepEqual(values, [2]);
      } finally {
        await first.close();
        await second.close();
      }
    });
  });
}
