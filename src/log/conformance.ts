/**
 * The contract every Log implementation passes (STYLE §2): register it from a test file with a factory.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AppendRecord, Log, LogRecord } from './log.ts';
import { partitionFor } from './log.ts';

/** How a durable log's last frame is damaged before reopening, as a crash or a bad disk tail would. */
export type TailDamage = 'truncate-last-frame' | 'append-garbage';

/** A fresh, opened log for one test, and hooks to exercise durability when the log has any. */
export interface LogUnderTest {
  log: Log;
  /** Opens a new instance on the same storage (the test has closed the previous one). */
  reopen?: () => Promise<Log>;
  /** Damages the tail of `topic`'s storage while the log is closed. */
  corruptTail?: (topic: string, damage: TailDamage) => Promise<void>;
  /** Releases the storage (the test has closed its logs). */
  cleanup: () => Promise<void>;
}

interface Tick {
  i: number;
  price: number;
  tags: string[];
  meta: { note: string | null; ok: boolean };
}

function tick(i: number): Tick {
  return {
    i,
    price: 100 + i * 0.25,
    tags: [`t${i % 3}`],
    meta: { note: i % 2 === 0 ? null : `n${i}`, ok: true },
  };
}

function records(keys: readonly string[], from: number, count: number): AppendRecord<Tick>[] {
  return Array.from({ length: count }, (_, j) => ({
    key: keys[(from + j) % keys.length]!,
    value: tick(from + j),
  }));
}

async function readPartition<T>(
  log: Log,
  topic: string,
  partition: number,
  step = 1000,
): Promise<LogRecord<T>[]> {
  const out: LogRecord<T>[] = [];
  for (;;) {
    const batch = await log.read<T>(topic, partition, out.length, step);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

async function readAll<T>(log: Log, topic: string, step = 1000): Promise<LogRecord<T>[]> {
  const out: LogRecord<T>[] = [];
  for (let partition = 0; partition < log.partitions(topic); partition++) {
    out.push(...(await readPartition<T>(log, topic, partition, step)));
  }
  return out;
}

/** Asserts that `topic` holds exactly `expected`, each in its key's partition, offsets contiguous from 0. */
async function assertHolds(log: Log, topic: string, expected: readonly AppendRecord<Tick>[], step = 1000) {
  const partitionCount = log.partitions(topic);
  const byPartition: AppendRecord<Tick>[][] = Array.from({ length: partitionCount }, () => []);
  for (const record of expected) byPartition[partitionFor(record.key, partitionCount)]!.push(record);
  for (let partition = 0; partition < partitionCount; partition++) {
    const got = await readPartition<Tick>(log, topic, partition, step);
    const want = byPartition[partition]!.map((record, offset) => ({ partition, offset, ...record }));
    assert.deepEqual(got, want, `partition ${partition} of ${topic}`);
    assert.equal(log.endOffset(topic, partition), want.length);
  }
}

/** Registers the log conformance tests for one implementation. */
/** `durable`: the log keeps data across close and reopen, so the persistence tests are registered too. */
export function logConformance(
  name: string,
  makeLog: () => Promise<LogUnderTest>,
  options: { durable: boolean } = { durable: false },
): void {
  async function withLog(test: (subject: LogUnderTest) => Promise<void>): Promise<void> {
    const subject = await makeLog();
    try {
      await test(subject);
    } finally {
      await subject.log.close();
      await subject.cleanup();
    }
  }

  describe(`log conformance: ${name}`, () => {
    it('reads back what was appended, each key in its partition, offsets contiguous from 0', () =>
      withLog(async ({ log }) => {
        const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'ADAUSDT'];
        const first = records(keys, 0, 30);
        const second = records(keys, 30, 20);
        await log.append('ticks', first);
        await log.append('ticks', second);
        await assertHolds(log, 'ticks', [...first, ...second]);
        const all = await readAll<Tick>(log, 'ticks');
        assert.equal(all.length, 50);
        assert.deepEqual(
          all.map((record) => record.value.i).sort((a, b) => a - b),
          Array.from({ length: 50 }, (_, i) => i),
        );
      }));

    it('keeps every record of a key in one partition, in append order', () =>
      withLog(async ({ log }) => {
        const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
        for (let batch = 0; batch < 5; batch++) await log.append('ticks', records(keys, batch * 14, 14));
        const partitionCount = log.partitions('ticks');
        const all = await readAll<Tick>(log, 'ticks');
        for (const key of keys) {
          const ofKey = all.filter((record) => record.key === key);
          assert.equal(ofKey.length, 10, `key ${key}`);
          assert.ok(ofKey.every((record) => record.partition === partitionFor(key, partitionCount)));
          const values = ofKey.map((record) => record.value.i);
          assert.deepEqual(
            values,
            [...values].sort((a, b) => a - b),
            `key ${key} in order`,
          );
          const offsets = ofKey.map((record) => record.offset);
          assert.deepEqual(
            offsets,
            [...offsets].sort((a, b) => a - b),
          );
        }
      }));

    it('reads at most maxRecords, from any offset, and nothing past the end', () =>
      withLog(async ({ log }) => {
        const partition = partitionFor('k', log.partitions('ticks'));
        await log.append('ticks', records(['k'], 0, 4));
        await log.append('ticks', records(['k'], 4, 6));
        const offsetsOf = (list: LogRecord<Tick>[]) => list.map((record) => record.offset);
        assert.deepEqual(offsetsOf(await log.read('ticks', partition, 0, 3)), [0, 1, 2]);
        // Crosses the boundary between the two appends.
        assert.deepEqual(offsetsOf(await log.read('ticks', partition, 2, 4)), [2, 3, 4, 5]);
        const tail = await log.read<Tick>('ticks', partition, 8, 5);
        assert.deepEqual(offsetsOf(tail), [8, 9]);
        assert.deepEqual(
          tail.map((record) => record.value),
          [tick(8), tick(9)],
        );
        assert.deepEqual(await log.read('ticks', partition, 10, 5), []);
        assert.deepEqual(await log.read('ticks', partition, 1000, 5), []);
        assert.deepEqual(await log.read('ticks', partition, 0, 0), []);
        assert.deepEqual(await log.read('never-written', 0, 0, 10), []);
      }));

    it('reports the end offset of each partition', () =>
      withLog(async ({ log }) => {
        const partitionCount = log.partitions('ticks');
        for (let partition = 0; partition < partitionCount; partition++) {
          assert.equal(log.endOffset('ticks', partition), 0);
        }
        const partition = partitionFor('k', partitionCount);
        await log.append('ticks', records(['k'], 0, 3));
        await log.append('ticks', records(['k'], 3, 4));
        for (let p = 0; p < partitionCount; p++) {
          assert.equal(log.endOffset('ticks', p), p === partition ? 7 : 0);
        }
      }));

    it('returns the producer state of the last append that carried one', () =>
      withLog(async ({ log }) => {
        assert.equal(await log.producerState('ticks'), undefined);
        const state = { batch: 1, positions: { a: 3 } };
        await log.append('ticks', records(['k'], 0, 2), state);
        state.batch = 99; // the log must have kept the state as it was appended
        assert.deepEqual(await log.producerState('ticks'), { batch: 1, positions: { a: 3 } });
        await log.append('ticks', records(['k'], 2, 2));
        assert.deepEqual(await log.producerState('ticks'), { batch: 1, positions: { a: 3 } });
        // A state alone moves no offset.
        await log.append('ticks', [], { batch: 2, positions: null });
        assert.deepEqual(await log.producerState('ticks'), { batch: 2, positions: null });
        assert.equal(log.endOffset('ticks', partitionFor('k', log.partitions('ticks'))), 4);
      }));

    it('waitFor resolves true at once when the data is there', () =>
      withLog(async ({ log }) => {
        const partition = partitionFor('k', log.partitions('ticks'));
        await log.append('ticks', records(['k'], 0, 2));
        assert.equal(await log.waitFor('ticks', partition, 1, 10_000), true);
      }));

    it('waitFor resolves true when an append gets past the offset, not before', () =>
      withLog(async ({ log }) => {
        const partition = partitionFor('k', log.partitions('ticks'));
        const started = performance.now();
        let settled = false;
        const waiting = log.waitFor('ticks', partition, 2, 10_000).then((arrived) => {
          settled = true;
          return arrived;
        });
        await log.append('ticks', records(['k'], 0, 2)); // end 2: offset 2 is not there yet
        await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(settled, false);
        setTimeout(() => void log.append('ticks', records(['k'], 2, 1)), 20);
        assert.equal(await waiting, true);
        assert.ok(performance.now() - started < 5_000, 'woken by the append, not the timeout');
      }));

    it('waitFor resolves false after its timeout', () =>
      withLog(async ({ log }) => {
        const started = performance.now();
        assert.equal(await log.waitFor('ticks', 0, 0, 50), false);
        assert.ok(performance.now() - started >= 45);
      }));

    it('waitFor resolves false when the log closes', () =>
      withLog(async ({ log }) => {
        const started = performance.now();
        const waiting = log.waitFor('ticks', 0, 0, 30_000);
        setTimeout(() => void log.close(), 20);
        assert.equal(await waiting, false);
        assert.ok(performance.now() - started < 5_000);
      }));

    it('keeps topics independent', () =>
      withLog(async ({ log }) => {
        const a = records(['x', 'y'], 0, 5);
        const b = records(['x', 'y'], 100, 3);
        await log.append('topic-a', a, { from: 'a' });
        await log.append('topic-b', b, { from: 'b' });
        await assertHolds(log, 'topic-a', a);
        await assertHolds(log, 'topic-b', b);
        assert.deepEqual(await log.producerState('topic-a'), { from: 'a' });
        assert.deepEqual(await log.producerState('topic-b'), { from: 'b' });
        const partition = partitionFor('x', log.partitions('topic-c'));
        const waiting = log.waitFor('topic-c', partition, 0, 60);
        await log.append('topic-a', records(['x'], 5, 1));
        assert.equal(await waiting, false, 'an append to another topic does not wake topic-c');
      }));

    it('serves long histories read in small steps', () =>
      withLog(async ({ log }) => {
        const keys = ['p', 'q', 'r', 's'];
        const all: AppendRecord<Tick>[] = [];
        for (let batch = 0; batch < 40; batch++) {
          const next = records(keys, batch * 50, 50);
          all.push(...next);
          await log.append('ticks', next, { batch });
        }
        await assertHolds(log, 'ticks', all, 7);
        // Random access into the middle of the history.
        const partition = partitionFor('p', log.partitions('ticks'));
        const middle = await log.read<Tick>('ticks', partition, 123, 3);
        assert.deepEqual(
          middle.map((record) => record.offset),
          [123, 124, 125],
        );
      }));

    const durableIt = options.durable ? it : () => undefined;
    durableIt('keeps everything across close and reopen', async () => {
      const subject = await makeLog();
      if (subject.reopen === undefined) throw new Error('a durable log under test must offer reopen()');
      let log = subject.log;
      try {
        const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
        const first = records(keys, 0, 25);
        const second = records(keys, 25, 25);
        await log.append('ticks', first, { batch: 0 });
        await log.append('ticks', second, { batch: 1 });
        await log.append('alerts', records(['a'], 0, 2));
        const partitionCount = log.partitions('ticks');
        await log.close();
        log = await subject.reopen();
        assert.equal(log.partitions('ticks'), partitionCount);
        await assertHolds(log, 'ticks', [...first, ...second]);
        await assertHolds(log, 'alerts', records(['a'], 0, 2));
        assert.deepEqual(await log.producerState('ticks'), { batch: 1 });
        assert.equal(await log.producerState('alerts'), undefined);
        // Appending continues the offsets, and that survives another reopen.
        const third = records(keys, 50, 10);
        await log.append('ticks', third, { batch: 2 });
        await assertHolds(log, 'ticks', [...first, ...second, ...third]);
        await log.close();
        log = await subject.reopen();
        await assertHolds(log, 'ticks', [...first, ...second, ...third]);
        assert.deepEqual(await log.producerState('ticks'), { batch: 2 });
      } finally {
        await log.close();
        await subject.cleanup();
      }
    });

    const damages: { damage: TailDamage; keepsLast: boolean }[] = [
      { damage: 'truncate-last-frame', keepsLast: false },
      { damage: 'append-garbage', keepsLast: true },
    ];
    for (const { damage, keepsLast } of damages) {
      durableIt(`recovers a damaged tail (${damage}) to the last whole append and its state`, async () => {
        const subject = await makeLog();
        const { reopen, corruptTail } = subject;
        if (reopen === undefined || corruptTail === undefined) {
          throw new Error('a durable log under test must offer reopen() and corruptTail()');
        }
        let log = subject.log;
        try {
          const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
          const first = records(keys, 0, 20);
          const last = records(keys, 20, 7);
          await log.append('ticks', first, { batch: 0 });
          await log.append('ticks', last, { batch: 1 });
          await log.close();
          await corruptTail('ticks', damage);
          log = await reopen();
          const kept = keepsLast ? [...first, ...last] : first;
          await assertHolds(log, 'ticks', kept);
          assert.deepEqual(await log.producerState('ticks'), { batch: keepsLast ? 1 : 0 });
          // The damaged bytes are gone: new appends land right after the kept ones and stay readable.
          const next = records(keys, 100, 5);
          await log.append('ticks', next, { batch: 2 });
          await log.close();
          log = await reopen();
          await assertHolds(log, 'ticks', [...kept, ...next]);
          assert.deepEqual(await log.producerState('ticks'), { batch: 2 });
        } finally {
          await log.close();
          await subject.cleanup();
        }
      });
    }
  });
}
