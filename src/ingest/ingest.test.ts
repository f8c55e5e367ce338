import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type IngestEntry, TOPIC_TICKS } from '../core/records.ts';
import type { Feed, FeedBatch } from '../feeds/feed.ts';
import type { Log } from '../log/log.ts';
import { LogError } from '../log/log-error.ts';
import { MemoryLog } from '../log/memory/memory-log.ts';
import { Ingest, type IngestFault, TOPIC_INGEST_STATE } from './ingest.ts';

/** A bounded feed that hands over fixed batches; its position is the batch index. */
function scriptedFeed(batches: FeedBatch[], name = 'script'): Feed {
  return {
    name,
    type: 'test',
    bounded: true,
    defaultSource: 'test',
    async *run(position: unknown) {
      const from = typeof position === 'number' ? position + 1 : 0;
      for (let i = from; i < batches.length; i++) yield { ...batches[i]!, position: i };
    },
  };
}

async function entries(log: MemoryLog): Promise<IngestEntry[]> {
  const records = await log.read<IngestEntry>(TOPIC_TICKS, 0, 0, 1_000);
  return records.map((record) => record.value);
}

const line = (id: string | number, symbol = 'btcusdt', extra = '') =>
  `{"symbol":"${symbol}","ts":1700000000000,"price":10,"size":1,"id":${JSON.stringify(id)}${extra}}`;

describe('Ingest', () => {
  it('turns lines into ticks, rejections and duplicates, in input order', async () => {
    const log = new MemoryLog();
    await log.open();
    const ingest = new Ingest(log);
    await ingest.open();
    const feed = scriptedFeed([
      { lines: [line('1'), '{broken', line('1', 'BTCUSDT'), line('2', 'ETHUSDT'), '[1]'], position: 0 },
    ]);
    await ingest.runFeed(feed, new AbortController().signal);
    const kinds = (await entries(log)).map((entry) =>
      entry.kind === 'rejected' ? `rejected:${entry.reason}` : entry.kind,
    );
    // 'btcusdt' id 1 and 'BTCUSDT' id 1 are the same trade once symbols are normalised.
    assert.deepEqual(kinds, [
      'tick',
      'rejected:invalid_json',
      'duplicate',
      'tick',
      'rejected:not_object',
      'end',
    ]);
    const [first] = await entries(log);
    assert.equal(first?.kind === 'tick' && first.symbol, 'BTCUSDT');
    assert.equal(ingest.hasEnded('script'), true);
  });

  it('never deduplicates ticks without an id, and scopes ids by source and symbol', async () => {
    const log = new MemoryLog();
    await log.open();
    const ingest = new Ingest(log);
    await ingest.open();
    const noId = '{"symbol":"A","ts":1,"price":1,"size":1}';
    const lines = [noId, noId, line('7', 'A'), line('7', 'B'), line('7', 'A', ',"source":"other"')];
    await ingest.runFeed(scriptedFeed([{ lines, position: 0 }]), new AbortController().signal);
    const kinds = (await entries(log)).map((entry) => entry.kind);
    assert.deepEqual(kinds, ['tick', 'tick', 'tick', 'tick', 'tick', 'end']);
  });

  it('rebuilds the dedup set from the log when there is no dedup checkpoint', async () => {
    const log = new MemoryLog();
    await log.open();
    const batches: FeedBatch[] = [
      { lines: [line('1'), line('2')], position: 0 },
      { lines: [line('2'), line('3')], position: 1 },
    ];
    // First run: only the first batch gets through before "the crash".
    const first = new Ingest(log);
    await first.open();
    await first
      .runFeed(scriptedFeed(batches.slice(0, 1)), new AbortController().signal)
      .catch(() => undefined);
    // Pretend the first run had not ended: drop its end entry by building a fresh log with just batch 0.
    const crashed = new MemoryLog();
    await crashed.open();
    const firstRecords = (await log.read<IngestEntry>(TOPIC_TICKS, 0, 0, 100)).filter(
      (r) => r.value.kind !== 'end',
    );
    await crashed.append(
      TOPIC_TICKS,
      firstRecords.map((r) => ({ key: r.key, value: r.value })),
      { feeds: { script: { position: 0, ended: false } } },
    );
    const second = new Ingest(crashed);
    await second.open();
    await second.runFeed(scriptedFeed(batches), new AbortController().signal);
    const kinds = (await entries(crashed)).map((entry) =>
      entry.kind === 'tick' ? `tick:${entry.id}` : entry.kind,
    );
    // Batch 0 is not read again; id 2 in batch 1 is recognised as already accepted.
    assert.deepEqual(kinds, ['tick:1', 'tick:2', 'duplicate', 'tick:3', 'end']);
  });

  it('does not run a bounded feed again once it ended', async () => {
    const log = new MemoryLog();
    await log.open();
    const feed = scriptedFeed([{ lines: [line('1')], position: 0 }]);
    const first = new Ingest(log);
    await first.open();
    await first.runFeed(feed, new AbortController().signal);
    const second = new Ingest(log);
    await second.open();
    await second.runFeed(feed, new AbortController().signal);
    assert.equal((await entries(log)).length, 2);
    assert.equal(second.hasEnded('script'), true);
  });

  it('stamps entries with their place in ingest order and sends end to every partition (distributed)', async () => {
    const log = new MemoryLog({ partitions: 3 });
    await log.open();
    const symbols = ['aaa', 'bbb', 'ccc', 'ddd', 'eee'];
    const batches: FeedBatch[] = [
      { lines: symbols.map((symbol, i) => line(String(i), symbol)), position: 0 },
      { lines: ['not json', line('0', 'aaa'), line('9', 'fff')], position: 1 },
    ];
    const first = new Ingest(log, { stampSeq: true });
    await first.open();
    // Stop after the first batch (as a live feed, so no end entry): a second ingest continues the
    // numbering from the log's producer state.
    await first.runFeed(
      { ...scriptedFeed(batches.slice(0, 1)), bounded: false },
      new AbortController().signal,
    );
    const second = new Ingest(log, { stampSeq: true });
    await second.open();
    await second.runFeed(scriptedFeed(batches), new AbortController().signal);

    const all: { partition: number; value: IngestEntry }[] = [];
    for (let partition = 0; partition < 3; partition++) {
      for (const record of await log.read<IngestEntry>(TOPIC_TICKS, partition, 0, 100)) all.push(record);
    }
    const bySeq = all
      .filter((record) => record.value.kind !== 'end')
      .sort((a, b) => a.value.seq! - b.value.seq!);
    // Batch 0 (5 ticks) by the first run, then batch 1 from seq 5 by the second.
    assert.deepEqual(
      bySeq.map((record) => [record.value.seq, record.value.kind]),
      [
        [0, 'tick'],
        [1, 'tick'],
        [2, 'tick'],
        [3, 'tick'],
        [4, 'tick'],
        [5, 'rejected'],
        [6, 'duplicate'],
        [7, 'tick'],
      ],
    );
    // The end reached every partition once, with one seq.
    const ends = all.filter((record) => record.value.kind === 'end');
    assert.deepEqual(ends.map((record) => [record.partition, record.value.seq]).sort(), [
      [0, 8],
      [1, 8],
      [2, 8],
    ]);
  });

  it('restores the dedup state from its checkpoint, reading back only the horizon ids', async () => {
    const log = new MemoryLog();
    await log.open();
    const batches: FeedBatch[] = [
      { lines: [line('1'), line('2'), line('5')], position: 0 },
      { lines: [line('6'), line('trade-a')], position: 1 },
      { lines: [line('2'), line('trade-a'), line('3'), line('4'), line('5'), line('trade-b')], position: 2 },
    ];
    const reads: number[] = [];
    const read = log.read.bind(log);
    log.read = async <T>(topic: string, partition: number, from: number, max: number) => {
      if (topic === TOPIC_TICKS) reads.push(from);
      return read<T>(topic, partition, from, max);
    };
    // A dedup checkpoint after every batch.
    const run = async (upTo: number) => {
      const ingest = new Ingest(log, { dedupCheckpointEvery: 1 });
      await ingest.open();
      await ingest.runFeed(
        { ...scriptedFeed(batches.slice(0, upTo)), bounded: false },
        new AbortController().signal,
      );
      return ingest;
    };
    // Integer ids only: a restart reads no tick back.
    await run(1);
    const second = await run(2);
    assert.deepEqual(reads, []);
    assert.deepEqual(second.dedupSizes(), { keys: 1, ranges: 2, ids: 1 });
    // 'trade-a' came with the second append, at offset 3: a restart reads from there, not from 0.
    assert.deepEqual(second.retainFrom(), [3]);
    const third = new Ingest(log, { dedupCheckpointEvery: 1 });
    await third.open();
    assert.deepEqual(reads, [3]);
    await third.runFeed(scriptedFeed(batches), new AbortController().signal);
    const kinds = (await entries(log)).map((entry) =>
      entry.kind === 'tick' ? `tick:${entry.id}` : entry.kind,
    );
    assert.deepEqual(kinds, [
      'tick:1',
      'tick:2',
      'tick:5',
      'tick:6',
      'tick:trade-a',
      'duplicate',
      'duplicate',
      'tick:3',
      'tick:4',
      'duplicate',
      'tick:trade-b',
      'end',
    ]);
    // 1..6 merged into one range once the gap filled.
    assert.deepEqual(third.dedupSizes(), { keys: 1, ranges: 1, ids: 2 });
  });

  it('rejects a tick with a non-integer id older than the dedup horizon as too_old', async () => {
    const log = new MemoryLog();
    await log.open();
    const ingest = new Ingest(log, { dedupHorizonMs: 60_000 });
    await ingest.open();
    const at = (ts: number, id: string) =>
      `{"symbol":"A","ts":${ts},"price":1,"size":1,"id":${JSON.stringify(id)}}`;
    const lines = [at(1_000_000, 'x'), at(1_000_000 - 60_000, 'y'), at(1_000_000 - 60_001, 'z'), at(1, '9')];
    await ingest.runFeed(scriptedFeed([{ lines, position: 0 }]), new AbortController().signal);
    const got = (await entries(log)).map((entry) =>
      entry.kind === 'rejected' ? `rejected:${entry.reason}` : entry.kind,
    );
    // At the horizon's edge a tick is still checked; one ms behind it it is too old; integer ids never are.
    assert.deepEqual(got, ['tick', 'tick', 'rejected:too_old', 'tick', 'end']);
    const rejected = (await entries(log))[2]!;
    assert.ok(
      rejected.kind === 'rejected' && /dedupHorizon/.test(rejected.detail) && rejected.raw === lines[2],
    );
  });

  it('holds a feed back while the log has no space, then resumes by itself, losing nothing', async () => {
    const log = new MemoryLog();
    await log.open();
    let full = false;
    let refused = 0;
    const append = log.append.bind(log);
    log.append = async (topic, records, state) => {
      if (full) {
        refused++;
        throw new LogError('LOG_NO_SPACE', 'no space left to append', {
          cause: Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }),
        });
      }
      return append(topic, records, state);
    };
    const faults: IngestFault[] = [];
    const ingest = new Ingest(log, { onFault: (fault) => faults.push(fault), maxRetryMs: 20 });
    await ingest.open();
    const batches: FeedBatch[] = Array.from({ length: 6 }, (_, i) => ({
      lines: [line(String(2 * i + 1)), line(String(2 * i + 2))],
      position: i,
    }));
    // The disk fills after the second batch.
    const feed: Feed = {
      ...scriptedFeed(batches),
      async *run(position: unknown, signal: AbortSignal) {
        for await (const batch of scriptedFeed(batches).run(position, signal)) {
          if (batch.position === 2) full = true;
          yield batch;
        }
      },
    };
    const running = ingest.runFeed(feed, new AbortController().signal);
    while (refused < 3) await new Promise((resolve) => setTimeout(resolve, 5));
    const [status] = ingest.feedStatuses();
    assert.equal(status?.state, 'running');
    assert.equal(status?.stalled?.reason, 'no_space');
    assert.deepEqual(
      faults.map((fault) => fault.phase),
      ['start'],
      'one line when it starts, none while it lasts',
    );
    full = false;
    await running;
    assert.deepEqual(
      faults.map((fault) => [fault.feed, fault.reason, fault.phase]),
      [
        ['script', 'no_space', 'start'],
        ['script', 'no_space', 'end'],
      ],
    );
    assert.equal(ingest.feedStatuses()[0]?.stalled, undefined);
    assert.equal(ingest.feedStatuses()[0]?.state, 'ended');
    const ids = (await entries(log)).map((entry) => (entry.kind === 'tick' ? entry.id : entry.kind));
    assert.deepEqual(ids, [...Array.from({ length: 12 }, (_, i) => String(i + 1)), 'end']);
  });

  it('stops waiting for space when the feed is stopped', async () => {
    const log = new MemoryLog();
    await log.open();
    log.append = async () => {
      throw new LogError('LOG_NO_SPACE', 'no space');
    };
    const ingest = new Ingest(log, { onFault: () => undefined, maxRetryMs: 10 });
    await ingest.open();
    const controller = new AbortController();
    const running = ingest.runFeed(scriptedFeed([{ lines: [line('1')], position: 0 }]), controller.signal);
    while (ingest.feedStatuses()[0]?.stalled === undefined)
      await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await running;
    assert.equal(ingest.feedStatuses()[0]?.state, 'stopped');
    assert.equal(ingest.feedStatuses()[0]?.stalled, undefined);
  });

  it('counts the entries it reads back at open, not offset differences, toward the next checkpoint', async () => {
    // Kafka's offsets skip (markers, packed records): here each entry is 1 000 offsets after the last.
    const log = new MemoryLog();
    await log.open();
    const gapped: Log = {
      open: () => log.open(),
      close: () => log.close(),
      partitions: (topic) => log.partitions(topic),
      append: (topic, records, state) => log.append(topic, records, state),
      producerState: (topic) => log.producerState(topic),
      endOffset: (topic, partition) => log.endOffset(topic, partition) * 1_000,
      waitFor: (topic, partition, offset, timeoutMs) =>
        log.waitFor(topic, partition, Math.ceil(offset / 1_000), timeoutMs),
      read: async <T>(topic: string, partition: number, from: number, max: number) =>
        (await log.read<T>(topic, partition, Math.ceil(from / 1_000), max)).map((record) => ({
          ...record,
          offset: record.offset * 1_000,
        })),
    };
    const checkpoints = async () => (await log.read(TOPIC_INGEST_STATE, 0, 0, 100)).length;
    const batch = (from: number) => ({ lines: [0, 1, 2, 3].map((i) => line(from + i)), position: from });
    const first = new Ingest(gapped, { dedupCheckpointEvery: 10 });
    await first.open();
    await first.runFeed({ ...scriptedFeed([batch(0)]), bounded: false }, new AbortController().signal);
    assert.equal(await checkpoints(), 0, '4 entries: below the 10 between checkpoints');
    // A restart reads the 4 entries back; 4 more make 8, still below 10.
    const second = new Ingest(gapped, { dedupCheckpointEvery: 10 });
    await second.open();
    await second.runFeed(
      { ...scriptedFeed([batch(0), batch(4)]), bounded: false },
      new AbortController().signal,
    );
    assert.equal(await checkpoints(), 0, '8 entries since the start');
    const third = new Ingest(gapped, { dedupCheckpointEvery: 10 });
    await third.open();
    await third.runFeed(
      { ...scriptedFeed([batch(0), batch(4), batch(8)]), bounded: false },
      new AbortController().signal,
    );
    assert.equal(await checkpoints(), 1, '12 entries: one checkpoint');
  });
});
