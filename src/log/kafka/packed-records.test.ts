import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryEncoder, type KeyedValue } from '../../core/entry-codec.ts';
import {
  BASE,
  entriesBefore,
  entryCount,
  entryOffset,
  kafkaOffsetOf,
  kafkaPosition,
  MAX_RECORD_ENTRIES,
  PACKED,
  packEntries,
  RECORD_BYTES,
  SLOTS,
  startOfRecord,
  unpackEntries,
} from './packed-records.ts';

const tick = (i: number, symbol = 'BTCUSDT') => ({
  key: symbol,
  value: {
    source: 'binance',
    symbol,
    ts: 1_764_000_000_000 + i,
    price: 97_000 + i / 100,
    size: 0.5,
    receivedAt: 1_764_000_000_010 + i,
    id: String(4_200_000_000 + i),
    kind: 'tick',
    seq: i,
  },
});

/** Every entry of the values, in order, as unpackEntries gives them. */
function unpackAll(values: readonly Buffer[]): KeyedValue[] {
  const out: KeyedValue[] = [];
  for (const value of values)
    unpackEntries(value, 'kafka-key', (_index, key, entry) => out.push({ key, value: entry }));
  return out;
}

describe('packed Kafka records', () => {
  it('puts one partition’s entries in one value and gives them back exactly, in order', () => {
    const entries: KeyedValue[] = [
      ...Array.from({ length: 1_000 }, (_, i) => tick(i, i % 2 ? 'BTCUSDT' : 'ETHUSDT')),
      { key: '', value: { kind: 'end', source: 'replay', seq: 1_000 } },
    ];
    const values = packEntries(new EntryEncoder(), entries);
    assert.equal(values.length, 1);
    assert.equal(values[0]![0], PACKED);
    assert.equal(entryCount(values[0]!), entries.length);
    assert.deepEqual(unpackAll(values), entries);
    // The string table and deltas of one batch: far under the ~50 bytes a tick takes alone.
    assert.ok(values[0]!.length / entries.length < 36, `${values[0]!.length} bytes`);
  });

  it('splits by entry count and by bytes, keeping the order', () => {
    const many = Array.from({ length: MAX_RECORD_ENTRIES * 2 + 5 }, (_, i) => tick(i));
    const byCount = packEntries(new EntryEncoder(), many);
    assert.deepEqual(
      byCount.map((value) => entryCount(value)),
      [MAX_RECORD_ENTRIES, MAX_RECORD_ENTRIES, 5],
    );
    assert.deepEqual(unpackAll(byCount), many);

    const raw = 'x'.repeat(4_000);
    const big = Array.from({ length: 200 }, (_, i) => ({ key: '', value: { kind: 'rejected', raw, i } }));
    const byBytes = packEntries(new EntryEncoder(), big);
    assert.ok(byBytes.length > 2, `${byBytes.length} values`);
    for (const value of byBytes) assert.ok(value.length <= RECORD_BYTES, `${value.length} bytes`);
    assert.deepEqual(unpackAll(byBytes), big);

    const huge = [{ key: '', value: 'y'.repeat(RECORD_BYTES * 2) }];
    assert.deepEqual(unpackAll(packEntries(new EntryEncoder(), huge)), huge, 'a lone big entry goes alone');
  });

  it('still reads values written before packing: a one-entry codec batch, and JSON under the Kafka key', () => {
    const [one] = [tick(7)];
    const single = Buffer.from(new EntryEncoder().encode([one!]));
    assert.equal(single[0], 0x01);
    assert.equal(entryCount(single), 1);
    assert.deepEqual(unpackAll([single]), [one]);
    const json = Buffer.from(JSON.stringify(one!.value));
    assert.equal(entryCount(json), 1);
    assert.deepEqual(unpackAll([json]), [{ key: 'kafka-key', value: one!.value }]);
    assert.deepEqual(unpackAll([Buffer.alloc(0)]), [{ key: 'kafka-key', value: null }]);
  });

  it('numbers entries so that the last one + 1 is the next Kafka record', () => {
    // Record at Kafka offset 5 with 3 entries, then one of 1 entry at offset 7 (a marker at 6).
    const first = [0, 1, 2].map((i) => entryOffset(5, i, 3));
    const second = entryOffset(7, 0, 1);
    assert.deepEqual(first, [
      BASE + 5 * SLOTS + SLOTS - 3,
      BASE + 5 * SLOTS + SLOTS - 2,
      BASE + 6 * SLOTS - 1,
    ]);
    assert.ok(first.every(Number.isSafeInteger));
    assert.deepEqual(kafkaPosition(first[2]! + 1), { kafkaOffset: 6, slot: 0 });
    assert.equal(first[2]! + 1, startOfRecord(6));
    assert.ok(second > first[2]! && second < startOfRecord(8));
    // A read from the second entry leaves out the first of that record only.
    const start = kafkaPosition(first[1]!);
    assert.deepEqual(start, { kafkaOffset: 5, slot: SLOTS - 2 });
    assert.equal(entriesBefore(start, 5, 3), 1);
    assert.equal(entriesBefore(start, 7, 1), 0);
    assert.equal(entriesBefore(kafkaPosition(first[2]! + 1), 6, 1), 0);
    // Consumer-group offsets: inside record 5 the reader stands at 5; after all of it at 6.
    assert.equal(kafkaOffsetOf(first[1]!), 5);
    assert.equal(kafkaOffsetOf(first[2]! + 1), 6);
    // The largest Kafka offset that keeps every position exact.
    assert.ok(Number.isSafeInteger(entryOffset(2 ** 36 - 1, SLOTS - 1, SLOTS)));
  });

  it('reads an offset below BASE as a Kafka offset, as checkpoints from before packing hold them', () => {
    assert.deepEqual(kafkaPosition(0), { kafkaOffset: 0, slot: 0 });
    assert.deepEqual(kafkaPosition(12_345), { kafkaOffset: 12_345, slot: 0 });
    assert.equal(kafkaOffsetOf(12_345), 12_345);
    assert.equal(entriesBefore(kafkaPosition(12_345), 12_345, 3), 0, 'the whole record is read');
    assert.equal(startOfRecord(0), 0, 'an empty partition ends at 0');
    assert.ok(startOfRecord(1) > 12_345, 'every packed position sorts after every old one');
  });
});
