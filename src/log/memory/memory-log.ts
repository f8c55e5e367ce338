import type { AppendRecord, Log, LogRecord } from '../log.ts';
import { partitionFor } from '../log.ts';
import { checkOffset, checkPartition, LogError } from '../log-error.ts';
import { OffsetWaiters } from '../offset-waiters.ts';

interface MemoryTopic {
  records: LogRecord<unknown>[][];
  /** Kept as JSON so later mutation of the caller's object cannot change it, as on a durable log. */
  stateJson: string | undefined;
}

/**
 * A log held in memory, for tests and throwaway runs; nothing survives the process.
 * Appended values are stored by reference: treat them as immutable once appended.
 */
export class MemoryLog implements Log {
  readonly #defaultPartitions: number;
  readonly #topics = new Map<string, MemoryTopic>();
  readonly #waiters = new OffsetWaiters();
  #state: 'new' | 'open' | 'closed' = 'new';

  constructor(options?: { partitions?: number }) {
    const partitions = options?.partitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1) {
      throw new LogError('LOG_BAD_ARGUMENT', `partitions must be an integer >= 1, got ${partitions}`);
    }
    this.#defaultPartitions = partitions;
  }

  async open(): Promise<void> {
    if (this.#state === 'closed') throw new LogError('LOG_CLOSED', 'a closed log cannot be reopened');
    this.#state = 'open';
  }

  partitions(topic: string): number {
    return this.#topics.get(topic)?.records.length ?? this.#defaultPartitions;
  }

  async append<T>(
    topic: string,
    records: readonly AppendRecord<T>[],
    producerState?: unknown,
  ): Promise<void> {
    this.#checkOpen();
    const partitionCount = this.partitions(topic);
    // Checked before anything is written: a bad partition rejects the whole append.
    for (const record of records) {
      if (record.partition !== undefined) checkPartition(topic, record.partition, partitionCount);
    }
    const stateJson = producerState === undefined ? undefined : JSON.stringify(producerState);
    const entry = this.#topic(topic);
    const touched = new Set<number>();
    for (const record of records) {
      const partition = record.partition ?? partitionFor(record.key, partitionCount);
      const list = entry.records[partition]!;
      list.push({ partition, offset: list.length, key: record.key, value: record.value });
      touched.add(partition);
    }
    if (stateJson !== undefined) entry.stateJson = stateJson;
    for (const partition of touched) {
      this.#waiters.notify(topic, partition, entry.records[partition]!.length);
    }
  }

  async producerState(topic: string): Promise<unknown> {
    this.#checkOpen();
    const stateJson = this.#topics.get(topic)?.stateJson;
    return stateJson === undefined ? undefined : JSON.parse(stateJson);
  }

  async read<T>(
    topic: string,
    partition: number,
    fromOffset: number,
    maxRecords: number,
  ): Promise<LogRecord<T>[]> {
    this.#checkOpen();
    checkPartition(topic, partition, this.partitions(topic));
    checkOffset('fromOffset', fromOffset);
    const list = this.#topics.get(topic)?.records[partition];
    if (list === undefined || maxRecords <= 0) return [];
    return list.slice(fromOffset, fromOffset + maxRecords) as LogRecord<T>[];
  }

  endOffset(topic: string, partition: number): number {
    this.#checkOpen();
    checkPartition(topic, partition, this.partitions(topic));
    return this.#topics.get(topic)?.records[partition]?.length ?? 0;
  }

  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    if (this.#state !== 'open') return Promise.resolve(false);
    if (this.endOffset(topic, partition) > offset) return Promise.resolve(true);
    return this.#waiters.wait(topic, partition, offset, timeoutMs);
  }

  async close(): Promise<void> {
    this.#state = 'closed';
    this.#waiters.closeAll();
  }

  #topic(topic: string): MemoryTopic {
    let entry = this.#topics.get(topic);
    if (entry === undefined) {
      entry = { records: Array.from({ length: this.#defaultPartitions }, () => []), stateJson: undefined };
      this.#topics.set(topic, entry);
    }
    return entry;
  }

  #checkOpen(): void {
    if (this.#state === 'new') throw new LogError('LOG_NOT_OPEN', 'call open() before using the log');
    if (this.#state === 'closed') throw new LogError('LOG_CLOSED', 'the log is closed');
  }
}
