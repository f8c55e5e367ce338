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
    // Continues after the last record read, which is the next offset only when offsets have no gaps.
    const from = out.length === 0 ? 0 : out[out.length - 1]!.offset + 1;
    const batch = await log.read<T>(topic, partition, from, step);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

/** The offsets of the records of a partition, in order. */
async function offsetsIn(log: Log, topic: string, partition: number): Promise<number[]> {
  return (await readPartition(log, topic, partition)).map((record) => record.offset);
}

/**
 * Offsets are contiguous from 0 unless the log has `offsetGaps`; then they only increase, and the end
 * offset is past the last record with nothing readable from it.
 */
async function assertOffsets(
  log: Log,
  topic: string,
  partition: number,
  offsets: readonly number[],
  gaps: boolean,
) {
  const end = log.endOffset(topic, partition);
  if (!gaps) {
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => i),
      `offsets of ${topic}/${partition} contiguous from 0`,
    );
    assert.equal(end, offsets.length, `end offset of ${topic}/${partition}`);
    return;
  }
  for (let i = 1; i < offsets.length; i++) {
    assert.ok(
      offsets[i]! > offsets[i - 1]!,
      `offsets of ${topic}/${partition} increase: ${offsets.join(',')}`,
    );
  }
  if (offsets.length === 0) {
    assert.equal(end, 0, `end offset of the empty ${topic}/${partition}`);
  } else {
    assert.ok(offsets[0]! >= 0);
    assert.ok(
      end > offsets[offsets.length - 1]!,
      `end offset ${end} of ${topic}/${partition} past the last record`,
    );
    assert.deepEqual(
      await log.read(topic, partition, end, 10),
      [],
      `nothing at the end offset of ${topic}/${partition}`,
    );
  }
}

async function readAll<T>(log: Log, topic: string, step = 1000): Promise<LogRecord<T>[]> {
  const out: LogRecord<T>[] = [];
  for (let partition = 0; partition < log.partitions(topic); partition++) {
    out.push(...(await readPartition<T>(log, topic, partition, step)));
  }
  return out;
}

/** The partition a record must land in: its explicit one, else its key's. */
function targetOf(record: AppendRecord<unknown>, partitionCount: number): number {
  return record.partition ?? partitionFor(record.key, partitionCount);
}

/**
 * Records of `keys` from `from`, every `every`-th one put explicitly in the partition after its key's
 * (so, with several partitions, never where the key alone would put it).
 */
function mixedRecords(
  keys: readonly string[],
  from: number,
  count: number,
  partitionCount: number,
  every = 2,
): AppendRecord<Tick>[] {
  return records(keys, from, count).map((record, j) =>
    j % every === 0
      ? { ...record, partition: (partitionFor(record.key, partitionCount) + 1) % partitionCount }
      : record,
  );
}

/** Every partition's end offset, to show an append changed none. */
function endOffsets(log: Log, topic: string): number[] {
  return Array.from({ length: log.partitions(topic) }, (_, partition) => log.endOffset(topic, partition));
}

/**
 * Asserts that `topic` holds exactly `expected`, each in its (explicit, else key's) partition, in order, offsets
 * contiguous from 0 (or, with `gaps`, increasing).
 */
async function assertHolds(
  log: Log,
  topic: string,
  expected: readonly AppendRecord<Tick>[],
  gaps: boolean,
  step = 1000,
) {
  const partitionCount = log.partitions(topic);
  const byPartition: AppendRecord<Tick>[][] = Array.from({ length: partitionCount }, () => []);
  for (const record of expected) byPartition[targetOf(record, partitionCount)]!.push(record);
  for (let partition = 0; partition < partitionCount; partition++) {
    const got = await readPartition<Tick>(log, topic, partition, step);
    const offsets = got.map((record) => record.offset);
    const want = byPartition[partition]!.map((record, i) => ({
      partition,
      offset: offsets[i] ?? -1,
      ...record,
    }));
    assert.deepEqual(got, want, `partition ${partition} of ${topic}`);
    await assertOffsets(log, topic, partition, offsets, gaps);
  }
}

/** Retention settings for a log under test; its clock is the test's. */
export interface RetentionSettings {
  retentionMs: number;
  retentionBytes: number;
  /** Small, so a few appends span several segments (the unit retention deletes). */
  segmentBytes: number;
  now: () => number;
}

/** A log with retention: the usual hooks, plus running retention now and the bytes it holds. */
export interface RetentionUnderTest extends LogUnderTest {
  /** Runs one retention pass now (the log also runs them in the background). */
  enforce: () => void;
  /** Bytes of storage `topic` takes. */
  bytesHeld: (topic: string) => number;
}

/** How an implementation differs from the strictest one. */
export interface ConformanceOptions {
  /** The log keeps data across close and reopen, so the persistence tests are registered too. */
  durable: boolean;
  /** The durable log's storage can be damaged by `corruptTail` (default: `durable`). */
  damageableTail?: boolean;
  /**
   * Offsets may skip (Kafka: a transaction's commit marker takes an offset). Records must still come
   * back in order with increasing offsets, and reads from any offset start at the next record there.
   */
  offsetGaps?: boolean;
  /** Opens a log with retention on fresh storage; without it the retention cases are skipped. */
  retention?: (settings: RetentionSettings) => Promise<RetentionUnderTest>;
}

/** Registers the log conformance tests for one implementation. */
export function logConformance(
  name: string,
  makeLog: () => Promise<LogUnderTest>,
  options: ConformanceOptions = { durable: false },
): void {
  const gaps = options.offsetGaps ?? false;
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
        await assertHolds(log, 'ticks', [...first, ...second], gaps);
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
        // `at[i]` is the offset of the i-th record: i itself, unless the log has offset gaps.
        const at = await offsetsIn(log, 'ticks', partition);
        assert.equal(at.length, 10);
        await assertOffsets(log, 'ticks', partition, at, gaps);
        assert.deepEqual(offsetsOf(await log.read('ticks', partition, 0, 3)), at.slice(0, 3));
        // Crosses the boundary between the two appends.
        assert.deepEqual(offsetsOf(await log.read('ticks', partition, at[2]!, 4)), at.slice(2, 6));
        // From the offset after a record (a gap, where the log has them): starts at the next record.
        assert.deepEqual(offsetsOf(await log.read('ticks', partition, at[3]! + 1, 2)), at.slice(4, 6));
        const tail = await log.read<Tick>('ticks', partition, at[8]!, 5);
        assert.deepEqual(offsetsOf(tail), at.slice(8, 10));
        assert.deepEqual(
          tail.map((record) => record.value),
          [tick(8), tick(9)],
        );
        assert.deepEqual(await log.read('ticks', partition, at[9]! + 1, 5), []);
        assert.deepEqual(await log.read('ticks', partition, at[9]! + 1000, 5), []);
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
          if (p === partition) {
            await assertOffsets(log, 'ticks', p, await offsetsIn(log, 'ticks', p), gaps);
            assert.equal((await offsetsIn(log, 'ticks', p)).length, 7);
          } else {
            assert.equal(log.endOffset('ticks', p), 0);
          }
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
        const partition = partitionFor('k', log.partitions('ticks'));
        const end = log.endOffset('ticks', partition);
        await log.append('ticks', [], { batch: 2, positions: null });
        assert.deepEqual(await log.producerState('ticks'), { batch: 2, positions: null });
        assert.equal(log.endOffset('ticks', partition), end);
        await assertOffsets(log, 'ticks', partition, await offsetsIn(log, 'ticks', partition), gaps);
      }));

    it('waitFor resolves true at once when the data is there', () =>
      withLog(async ({ log }) => {
        const partition = partitionFor('k', log.partitions('ticks'));
        await log.append('ticks', records(['k'], 0, 2));
        const at = await offsetsIn(log, 'ticks', partition);
        assert.equal(await log.waitFor('ticks', partition, at[1]!, 10_000), true);
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
        await assertHolds(log, 'topic-a', a, gaps);
        await assertHolds(log, 'topic-b', b, gaps);
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
        await assertHolds(log, 'ticks', all, gaps, 7);
        // Random access into the middle of the history.
        const partition = partitionFor('p', log.partitions('ticks'));
        const at = await offsetsIn(log, 'ticks', partition);
        const middle = await log.read<Tick>('ticks', partition, at[123]!, 3);
        assert.deepEqual(
          middle.map((record) => record.offset),
          at.slice(123, 126),
        );
      }));

    it("puts a record with an explicit partition there, in order among that partition's records", () =>
      withLog(async ({ log }) => {
        const partitionCount = log.partitions('ticks');
        const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
        const first = records(keys, 0, 6);
        const mixed = mixedRecords(keys, 6, 12, partitionCount);
        // One record for every partition, as an entry all partitions must see is appended.
        const everywhere = Array.from({ length: partitionCount }, (_, partition) => ({
          key: 'everywhere',
          value: tick(100 + partition),
          partition,
        }));
        const last = records(keys, 18, 6);
        await log.append('ticks', first);
        await log.append('ticks', mixed);
        await log.append('ticks', everywhere);
        await log.append('ticks', last);
        await assertHolds(log, 'ticks', [...first, ...mixed, ...everywhere, ...last], gaps);
        const all = await readAll<Tick>(log, 'ticks');
        for (let partition = 0; partition < partitionCount; partition++) {
          const got = all.filter((record) => record.key === 'everywhere' && record.partition === partition);
          assert.deepEqual(
            got.map((record) => record.value),
            [tick(100 + partition)],
            `the explicit record of partition ${partition}`,
          );
        }
        if (partitionCount > 1) {
          // The explicit records of `mixed` really are away from their key's partition.
          const moved = all.filter(
            (record) => record.value.i >= 6 && record.value.i < 18 && record.value.i % 2 === 0,
          );
          assert.equal(moved.length, 6);
          for (const record of moved)
            assert.notEqual(record.partition, partitionFor(record.key, partitionCount));
        }
      }));

    it('rejects a whole append with a partition out of range, writing nothing', () =>
      withLog(async ({ log }) => {
        const partitionCount = log.partitions('ticks');
        const kept = records(['a', 'b'], 0, 4);
        await log.append('ticks', kept, { batch: 0 });
        const ends = endOffsets(log, 'ticks');
        for (const bad of [partitionCount, -1, 0.5, Number.NaN]) {
          await assert.rejects(
            log.append(
              'ticks',
              [...records(['a', 'b'], 10, 3), { key: 'a', value: tick(13), partition: bad }],
              {
                batch: 1,
              },
            ),
            (error: Error) => error instanceof Error && /partition/.test(error.message),
            `partition ${bad}`,
          );
        }
        await assertHolds(log, 'ticks', kept, gaps);
        assert.deepEqual(endOffsets(log, 'ticks'), ends);
        assert.deepEqual(await log.producerState('ticks'), { batch: 0 });
        // Nor on a topic not written yet: it stays empty.
        await assert.rejects(
          log.append('fresh', [{ key: 'a', value: tick(0), partition: log.partitions('fresh') }], { s: 1 }),
          /partition/,
        );
        assert.equal(await log.producerState('fresh'), undefined);
        assert.deepEqual(await readAll(log, 'fresh'), []);
        // The log still appends afterwards.
        const next = mixedRecords(['a', 'b'], 20, 4, partitionCount);
        await log.append('ticks', next, { batch: 2 });
        await assertHolds(log, 'ticks', [...kept, ...next], gaps);
        assert.deepEqual(await log.producerState('ticks'), { batch: 2 });
      }));

    it('appends keyed and explicit records atomically with the producer state', () =>
      withLog(async (subject) => {
        let log = subject.log;
        const partitionCount = log.partitions('ticks');
        const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'];
        const first = mixedRecords(keys, 0, 10, partitionCount, 3);
        const second = mixedRecords(keys, 10, 10, partitionCount);
        await log.append('ticks', first, { batch: 0 });
        await log.append('ticks', second, { batch: 1 });
        await assertHolds(log, 'ticks', [...first, ...second], gaps);
        assert.deepEqual(await log.producerState('ticks'), { batch: 1 });
        if (subject.reopen === undefined) return;
        await log.close();
        log = subject.log = await subject.reopen();
        await assertHolds(log, 'ticks', [...first, ...second], gaps);
        assert.deepEqual(await log.producerState('ticks'), { batch: 1 });
        if (subject.corruptTail === undefined || !(options.damageableTail ?? options.durable)) return;
        // A crash in the middle of the last append loses its records in every partition and its state.
        await log.close();
        await subject.corruptTail('ticks', 'truncate-last-frame');
        log = subject.log = await subject.reopen();
        await assertHolds(log, 'ticks', first, gaps);
        assert.deepEqual(await log.producerState('ticks'), { batch: 0 });
      }));

    const durableIt = options.durable ? it : it.skip;
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
        await assertHolds(log, 'ticks', [...first, ...second], gaps);
        await assertHolds(log, 'alerts', records(['a'], 0, 2), gaps);
        assert.deepEqual(await log.producerState('ticks'), { batch: 1 });
        assert.equal(await log.producerState('alerts'), undefined);
        // Appending continues the offsets, and that survives another reopen.
        const third = records(keys, 50, 10);
        await log.append('ticks', third, { batch: 2 });
        await assertHolds(log, 'ticks', [...first, ...second, ...third], gaps);
        await log.close();
        log = await subject.reopen();
        await assertHolds(log, 'ticks', [...first, ...second, ...third], gaps);
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
    const damageIt = (options.damageableTail ?? options.durable) ? it : it.skip;
    for (const { damage, keepsLast } of damages) {
      damageIt(`recovers a damaged tail (${damage}) to the last whole append and its state`, async () => {
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
          await assertHolds(log, 'ticks', kept, gaps);
          assert.deepEqual(await log.producerState('ticks'), { batch: keepsLast ? 1 : 0 });
          // The damaged bytes are gone: new appends land right after the kept ones and stay readable.
          const next = records(keys, 100, 5);
          await log.append('ticks', next, { batch: 2 });
          await log.close();
          log = await reopen();
          await assertHolds(log, 'ticks', [...kept, ...next], gaps);
          assert.deepEqual(await log.producerState('ticks'), { batch: 2 });
        } finally {
          await log.close();
          await subject.cleanup();
        }
      });
    }

    registerRetentionCases(options.retention);
  });
}

const HOUR = 3_600_000;

/** Appends `count` appends of `size` records over `keys`, each with its producer state `{ batch }`. */
async function appendBatches(
  log: Log,
  topic: string,
  keys: readonly string[],
  from: number,
  count: number,
  size: number,
): Promise<AppendRecord<Tick>[]> {
  const all: AppendRecord<Tick>[] = [];
  for (let batch = 0; batch < count; batch++) {
    const next = records(keys, from + batch * size, size);
    all.push(...next);
    await log.append(topic, next, { batch: from / size + batch });
  }
  return all;
}

/** What a partition holds from its start offset on, as [offset, value.i] pairs. */
async function heldFromStart(log: Log, topic: string, partition: number): Promise<[number, number][]> {
  return (await readPartition<Tick>(log, topic, partition)).map((record) => [record.offset, record.value.i]);
}

/** The retention cases (docs/design.md, Retention and history): whole segments, processed and old (or over the byte cap), go. */
function registerRetentionCases(
  retention: ((settings: RetentionSettings) => Promise<RetentionUnderTest>) | undefined,
): void {
  const retentionIt = retention === undefined ? it.skip : it;
  let clock = 0;
  const settings = (overrides: Partial<RetentionSettings> = {}): RetentionSettings => ({
    retentionMs: HOUR,
    retentionBytes: 0,
    segmentBytes: 2_000,
    now: () => clock,
    ...overrides,
  });
  async function withRetention(
    overrides: Partial<RetentionSettings>,
    test: (subject: RetentionUnderTest) => Promise<void>,
  ): Promise<void> {
    clock = 1_000_000;
    const subject = await retention!(settings(overrides));
    try {
      await test(subject);
    } finally {
      await subject.log.close();
      await subject.cleanup();
    }
  }
  const keys = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];

  retentionIt('retention deletes nothing unprocessed, however old or large', () =>
    withRetention({ retentionBytes: 1 }, async ({ log, enforce }) => {
      const all = await appendBatches(log, 'ticks', keys, 0, 30, 10);
      clock += 10 * HOUR;
      enforce();
      await assertHolds(log, 'ticks', all, false);
      for (let partition = 0; partition < log.partitions('ticks'); partition++)
        assert.equal(log.startOffset!('ticks', partition), 0);
    }),
  );

  retentionIt(
    'retention deletes whole processed segments once older than the retention, never the newest',
    () =>
      withRetention({}, async ({ log, enforce, bytesHeld }) => {
        const all = await appendBatches(log, 'ticks', keys, 0, 30, 10);
        const partitionCount = log.partitions('ticks');
        const before = await Promise.all(
          Array.from({ length: partitionCount }, (_, partition) => heldFromStart(log, 'ticks', partition)),
        );
        const processed = Array.from({ length: partitionCount }, (_, partition) =>
          Math.floor(log.endOffset('ticks', partition) / 2),
        );
        for (let partition = 0; partition < partitionCount; partition++)
          log.markProcessed!('ticks', partition, processed[partition]!);
        const bytesBefore = bytesHeld('ticks');
        // Processed but young: kept.
        enforce();
        for (let partition = 0; partition < partitionCount; partition++)
          assert.equal(log.startOffset!('ticks', partition), 0, 'young segments are kept');
        clock += HOUR + 1;
        enforce();
        assert.ok(bytesHeld('ticks') < bytesBefore, `${bytesHeld('ticks')} < ${bytesBefore} bytes`);
        let deletedSomething = false;
        for (let partition = 0; partition < partitionCount; partition++) {
          const start = log.startOffset!('ticks', partition);
          assert.ok(start <= processed[partition]!, `nothing unprocessed deleted in ${partition}`);
          if (start > 0) deletedSomething = true;
          // Everything from the start on is exactly what was there; a read from 0 starts at the start.
          const expected = before[partition]!.filter(([offset]) => offset >= start);
          assert.deepEqual(await heldFromStart(log, 'ticks', partition), expected);
          const first = await log.read<Tick>('ticks', partition, 0, 1);
          assert.deepEqual(
            first.map((record) => record.offset),
            expected.slice(0, 1).map(([offset]) => offset),
          );
          assert.equal(log.endOffset('ticks', partition), before[partition]!.length);
        }
        assert.ok(deletedSomething, 'old processed segments were deleted');
        // Everything processed and old: all but the newest segment go; appends continue the offsets.
        for (let partition = 0; partition < partitionCount; partition++)
          log.markProcessed!('ticks', partition, log.endOffset('ticks', partition));
        clock += 2 * HOUR;
        enforce();
        const next = records(keys, 1_000, 6);
        await log.append('ticks', next, { batch: 'next' });
        const kept = all.filter((_, i) => i >= all.length - 30);
        for (let partition = 0; partition < partitionCount; partition++) {
          const held = await heldFromStart(log, 'ticks', partition);
          const values = held.map(([, i]) => i);
          for (const record of next)
            if (targetOf(record, partitionCount) === partition) assert.ok(values.includes(record.value.i));
          assert.equal(held[held.length - 1]![0], log.endOffset('ticks', partition) - 1);
        }
        assert.ok(kept.length > 0);
        assert.deepEqual(await log.producerState('ticks'), { batch: 'next' });
      }),
  );

  retentionIt('retention keeps a topic under its byte cap, oldest processed segments first', () =>
    withRetention({ retentionMs: 0, retentionBytes: 6_000 }, async ({ log, enforce, bytesHeld }) => {
      await appendBatches(log, 'ticks', keys, 0, 40, 10);
      assert.ok(bytesHeld('ticks') > 6_000);
      for (let partition = 0; partition < log.partitions('ticks'); partition++)
        log.markProcessed!('ticks', partition, log.endOffset('ticks', partition));
      enforce();
      // At most one segment (2 000 bytes and one frame) over the cap.
      assert.ok(bytesHeld('ticks') <= 6_000 + 2_000 + 1_000, `${bytesHeld('ticks')} bytes held`);
      assert.ok(bytesHeld('ticks') > 0);
    }),
  );

  retentionIt('retention never deletes a segment holding an unprocessed record of any partition', () =>
    withRetention({}, async ({ log, enforce }) => {
      await appendBatches(log, 'ticks', keys, 0, 30, 10);
      const partitionCount = log.partitions('ticks');
      if (partitionCount < 2) return;
      // Partition 0 fully processed, the others not at all.
      log.markProcessed!('ticks', 0, log.endOffset('ticks', 0));
      clock += 10 * HOUR;
      enforce();
      for (let partition = 0; partition < partitionCount; partition++)
        assert.equal(log.startOffset!('ticks', partition), 0, `partition ${partition}`);
    }),
  );

  retentionIt('retention keeps offsets, records and the producer state across a reopen', () =>
    withRetention({}, async (subject) => {
      let log = subject.log;
      await appendBatches(log, 'ticks', keys, 0, 30, 10);
      for (let partition = 0; partition < log.partitions('ticks'); partition++)
        log.markProcessed!('ticks', partition, log.endOffset('ticks', partition) - 5);
      // A stateless append last: the state is still the last one given, after deletion and reopen.
      await log.append('ticks', records(keys, 500, 3));
      clock += 2 * HOUR;
      subject.enforce();
      const partitionCount = log.partitions('ticks');
      const held = await Promise.all(
        Array.from({ length: partitionCount }, (_, partition) => heldFromStart(log, 'ticks', partition)),
      );
      const starts = Array.from({ length: partitionCount }, (_, partition) =>
        log.startOffset!('ticks', partition),
      );
      assert.ok(
        starts.some((start) => start > 0),
        'something was deleted',
      );
      await log.close();
      log = subject.log = await subject.reopen!();
      for (let partition = 0; partition < partitionCount; partition++) {
        assert.equal(log.startOffset!('ticks', partition), starts[partition]);
        assert.deepEqual(await heldFromStart(log, 'ticks', partition), held[partition]);
      }
      assert.deepEqual(await log.producerState('ticks'), { batch: 29 });
      const next = records(keys, 700, 3);
      await log.append('ticks', next, { batch: 'after' });
      for (let partition = 0; partition < partitionCount; partition++) {
        const now = await heldFromStart(log, 'ticks', partition);
        assert.deepEqual(now.slice(0, held[partition]!.length), held[partition]);
        const added = next
          .filter((record) => targetOf(record, partitionCount) === partition)
          .map((r) => r.value.i);
        assert.deepEqual(
          now.slice(held[partition]!.length),
          added.map((i, j) => [held[partition]!.length + starts[partition]! + j, i]),
        );
      }
    }),
  );
}
