/**
 * Several log entries per Kafka record (docs/kafka.md, Record values): the Kafka log packs the entries
 * an append puts in one partition into one record (or a few, when they are many), so the client, the
 * broker and the readers do their per-record work once per batch instead of once per tick.
 *
 * A packed value is `PACKED` then an entry-codec batch (src/core/entry-codec.ts: one string table and
 * delta-coded ticks for the whole batch). Values written before packing still read: a single entry's
 * codec batch starts with its count, `0x01`, and a JSON value with a JSON text's first character.
 *
 * Positions: a log offset must name one entry, so it is `BASE + kafkaOffset * SLOTS + slot`, where the
 * i-th of a record's n entries takes slot `SLOTS - n + i`. The last entry of a record then takes the
 * slot just below the next record's, so "last offset + 1" (how every reader continues) is exactly the
 * next Kafka record, and a record of one entry (every record written before packing) is at slot
 * `SLOTS - 1`. Offsets below BASE are plain Kafka offsets, as versions before packing stored them in
 * checkpoints: a read from one starts at that Kafka record, whole. 0 is Kafka offset 0 either way.
 * BASE = 2^52 and SLOTS = 2^16 keep every offset an exact integer up to 2^36 Kafka records per
 * partition (at one record per append and partition, centuries of appends).
 */

import { decodeEntries, type EntryEncoder, type KeyedValue } from '../../core/entry-codec.ts';

/** First byte of a packed value. Neither a JSON text nor a one-entry codec batch (0x01) starts with it. */
export const PACKED = 0x02;
/** Offsets from here up are packed positions; below are Kafka offsets (see the file comment). */
export const BASE = 2 ** 52;
/** Positions per Kafka record: at most this many entries in one record. */
export const SLOTS = 2 ** 16;
/** Most entries the writer packs into one record (leaves the slots above for growth; bounds a partial read's re-decode). */
export const MAX_RECORD_ENTRIES = 4_096;
/** Bytes the writer aims to keep a packed value under (a lone bigger entry goes alone). */
export const RECORD_BYTES = 256 * 1024;

/** Where a log offset points: the Kafka record, and the first slot of it that is at or past the offset. */
export interface KafkaPosition {
  kafkaOffset: number;
  slot: number;
}

/** The Kafka record and slot a log offset names (an offset below BASE is the whole record at that Kafka offset). */
export function kafkaPosition(logOffset: number): KafkaPosition {
  if (logOffset < BASE) return { kafkaOffset: logOffset, slot: 0 };
  const packed = logOffset - BASE;
  const slot = packed % SLOTS;
  return { kafkaOffset: (packed - slot) / SLOTS, slot };
}

/**
 * How many of the `count` entries of the record at `kafkaOffset` lie before `start`: only the record
 * `start` points into can hold some (those in slots below `start.slot`).
 */
export function entriesBefore(start: KafkaPosition, kafkaOffset: number, count: number): number {
  return kafkaOffset === start.kafkaOffset ? Math.max(0, start.slot - (SLOTS - count)) : 0;
}

/** The log offset of entry `index` of the `count` entries of the record at `kafkaOffset`. */
export function entryOffset(kafkaOffset: number, index: number, count: number): number {
  return BASE + kafkaOffset * SLOTS + (SLOTS - count + index);
}

/**
 * The log offset before which every record below Kafka offset `kafkaOffset` lies and from which
 * a read starts at that record: the log's end offset for a last stable offset. 0 stays 0.
 */
export function startOfRecord(kafkaOffset: number): number {
  return kafkaOffset === 0 ? 0 : BASE + kafkaOffset * SLOTS;
}

/**
 * The Kafka offset of the first record not wholly below `logOffset`: what a reader that continues
 * from `logOffset` has consumed up to, as Kafka's tools count (consumer-group offsets, lag).
 */
export function kafkaOffsetOf(logOffset: number): number {
  // A reader inside record k has not consumed it whole; one at slot 0 of k has consumed all before k.
  return kafkaPosition(logOffset).kafkaOffset;
}

/** Entries in a record's value (1 for a value written before packing), without decoding them. */
export function entryCount(value: Buffer | null): number {
  if (value === null || value.length === 0 || value[0] !== PACKED) return 1;
  let count = 0;
  let scale = 1;
  for (let at = 1; at < value.length; at++) {
    const byte = value[at]!;
    count += (byte & 127) * scale;
    if (byte < 128) return count;
    scale *= 128;
  }
  return 0;
}

/** The first byte of a one-entry codec batch: the value format of the log before packing. */
const SINGLE_ENTRY = 0x01;

/**
 * One partition's entries, in order, as packed values of at most MAX_RECORD_ENTRIES entries and
 * about RECORD_BYTES each (a run that encodes bigger is halved; a lone bigger entry goes alone).
 */
export function packEntries(encoder: EntryEncoder, entries: readonly KeyedValue[]): Buffer[] {
  const values: Buffer[] = [];
  const pack = (from: number, to: number): void => {
    const bytes = encoder.encode(from === 0 && to === entries.length ? entries : entries.slice(from, to));
    if (bytes.length > RECORD_BYTES && to - from > 1) {
      const middle = from + Math.floor((to - from) / 2);
      pack(from, middle);
      pack(middle, to);
      return;
    }
    const value = Buffer.allocUnsafe(bytes.length + 1);
    value[0] = PACKED;
    value.set(bytes, 1);
    values.push(value);
  };
  for (let from = 0; from < entries.length; from += MAX_RECORD_ENTRIES) {
    pack(from, Math.min(entries.length, from + MAX_RECORD_ENTRIES));
  }
  return values;
}

/**
 * Calls `onEntry` with each entry of a record's value, in order, with its index: a packed value's
 * entries, or the one entry of a value written before packing (a codec batch of one, or JSON under
 * the record's Kafka key). Returns how many entries the value holds.
 */
export function unpackEntries(
  value: Buffer | null,
  kafkaKey: string,
  onEntry: (index: number, key: string, value: unknown) => void,
): number {
  if (value === null || value.length === 0) {
    onEntry(0, kafkaKey, null);
    return 1;
  }
  const first = value[0];
  if (first === PACKED || first === SINGLE_ENTRY) {
    let index = 0;
    return decodeEntries(first === PACKED ? value.subarray(1) : value, (key, entry) => {
      onEntry(index++, key, entry);
    });
  }
  onEntry(0, kafkaKey, JSON.parse(value.toString('utf8')));
  return 1;
}
