/**
 * The spooling log over a real Kafka broker that goes away and comes back: appends made during the
 * outage are spooled (and counted), and after the broker restarts on the same port and data dir every
 * record is in Kafka exactly once and in order. test/support/kafka.ts starts a broker of this test's
 * own (it must stop it); outside CI a missing Java/Maven skips loudly, in CI it fails.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { startRestartableKafka } from '../../../test/support/kafka.ts';
import { KafkaLog } from '../kafka/kafka-log.ts';
import type { AppendRecord } from '../log.ts';
import { SpoolingLog } from './spooling-log.ts';

const TOPIC = 'price-ticks';
const kafka = await startRestartableKafka();

if ('skip' in kafka) {
  it('spooling log over Kafka survives a broker outage', { skip: kafka.skip }, () => {});
} else {
  after(() => kafka.destroy());

  it('spooling log over Kafka survives a broker outage: spools, counts, and catches up exactly once', {
    timeout: 300_000,
  }, async () => {
    const id = `spool${process.pid}-${Date.now().toString(36)}`;
    const options = { brokers: kafka.brokers, topicPrefix: `${id}.`, transactionalId: `${id}-log` };
    const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-spool-kafka-'));
    const batch = (n: number): AppendRecord<number>[] =>
      Array.from({ length: 5 }, (_, i) => ({ key: 'BTCUSDT', value: n * 5 + i }));
    const log = new SpoolingLog({
      inner: new KafkaLog(options),
      dir,
      maxBytes: 1_000_000,
      appendTimeoutMs: 3_000,
      retryMs: 250,
    });
    try {
      await log.open();
      for (let n = 0; n < 3; n++) await log.append(TOPIC, batch(n), { position: n + 1 });
      assert.equal(log.stats().spooledAppends, 0);

      await kafka.stopBroker();
      for (let n = 3; n < 6; n++) await log.append(TOPIC, batch(n), { position: n + 1 });
      await log.append(TOPIC, [{ key: '', value: -1 }]); // a clock-like append without state
      const during = log.stats();
      assert.equal(during.spooledAppends, 4, 'every append during the outage is spooled');
      assert.equal(during.spooledRecords, 16);
      assert.ok(during.spoolBytes > 0);
      assert.notEqual(during.lastError, null);
      assert.deepEqual(await log.producerState(TOPIC), { position: 6 });

      await kafka.startBroker();
      await log.drained();
      const drainedStats = log.stats();
      console.log(`spooling log over Kafka: ${JSON.stringify(drainedStats)}`);
      assert.equal(drainedStats.pendingAppends, 0);
      assert.equal(drainedStats.drainedAppends + drainedStats.discardedAppends, 4);
      // Back to direct appends once the spool is empty.
      await log.append(TOPIC, batch(6), { position: 7 });
      assert.equal(log.stats().spooledAppends, 4);
    } finally {
      await log.close();
      await rm(dir, { recursive: true, force: true });
    }

    // Read back with a fresh log (read_committed, as any consumer sees it). Same transactional id: the
    // producer state is kept per producer; a log that only reads does not register (fence) the id.
    const reader = new KafkaLog(options);
    await reader.open();
    try {
      const records = await reader.read<number>(TOPIC, 0, 0, 1_000);
      const expected = [...Array.from({ length: 30 }, (_, i) => i), -1, 30, 31, 32, 33, 34];
      assert.deepEqual(
        records.map((record) => record.value),
        expected,
      );
      assert.deepEqual(
        await reader.producerState(TOPIC).then((state) => (state as { state: unknown }).state),
        {
          position: 7,
        },
      );
    } finally {
      await reader.close();
    }
  });
}
