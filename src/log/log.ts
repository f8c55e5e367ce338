/**
 * The log stage: a durable, replayable, partitioned record of entries (docs/design.md, The flow).
 * Implementations: `memory` (tests), `embedded` (files in the data dir); every one passes
 * `conformance.test.ts`.
 */

/** A record to append. `key` picks the partition (same key, same partition, order kept). */
export interface AppendRecord<T> {
  key: string;
  value: T;
  /**
   * Puts the record in this partition instead of `partitionFor(key)` (e.g. an entry every partition
   * must see is appended once per partition). Must be below the topic's partition count.
   */
  partition?: number;
}

/**
 * A record read back, with its position. Offsets increase per partition from 0; the memory and embedded
 * logs number records contiguously, Kafka leaves gaps where its transaction markers sit.
 */
export interface LogRecord<T> {
  partition: number;
  offset: number;
  key: string;
  value: T;
}

export interface Log {
  /** Opens (and on a durable log, recovers) the log. Must be called before anything else. */
  open(): Promise<void>;
  /** Number of partitions of a topic (fixed when the topic is first used). */
  partitions(topic: string): number;
  /**
   * Appends records atomically together with the producer's state: after a crash, either all of
   * them and the state are there, or none. Resolves once the append is durable against a process
   * crash. Appends are applied in call order.
   */
  append<T>(topic: string, records: readonly AppendRecord<T>[], producerState?: unknown): Promise<void>;
  /** The producer state of the last append to `topic` that carried one, or undefined. */
  producerState(topic: string): Promise<unknown>;
  /** Up to `maxRecords` records of a partition starting at `fromOffset`; [] when none yet. */
  read<T>(topic: string, partition: number, fromOffset: number, maxRecords: number): Promise<LogRecord<T>[]>;
  /** The offset the next record appended to the partition will get. */
  endOffset(topic: string, partition: number): number;
  /**
   * Resolves true as soon as a record at or past `offset` can be read, or false after
   * `timeoutMs` or when the log closes.
   */
  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
  /**
   * Retention (docs/design.md, Retention and history), on logs that delete old records themselves (the embedded log; Kafka's topics
   * have their own). Records below `offset` of the partition are processed and may be deleted once
   * retention allows; the mark never moves back. Logs without retention omit it.
   */
  markProcessed?(topic: string, partition: number, offset: number): void;
  /** The first offset still held (records below it were deleted by retention); reads from below start there. */
  startOffset?(topic: string, partition: number): number;
}

/** The partition a key maps to (FNV-1a, stable across processes and implementations). */
export function partitionFor(key: string, partitionCount: number): number {
  if (partitionCount <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitionCount;
}
