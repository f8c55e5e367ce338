/**
 * Child process of spooling-log.test.ts: an ingest-like writer over a SpoolingLog whose inner log (an
 * EmbeddedLog, which outlives the process) fails at random, until SIGKILLed. It resumes at the
 * position in its producer state, as ingest does, and prints its counters after every append.
 * Usage: node spool-writer.fixture.ts <logDir> <spoolDir> <seed>
 */
import { EmbeddedLog } from '../embedded/embedded-log.ts';
import type { AppendRecord, Log, LogRecord } from '../log.ts';
import { SpoolingLog } from './spooling-log.ts';

/** The writer's producer state: the next value it will append. */
export interface WriterState {
  next: number;
}

/** Value of the stateless appends (like ingest's clock entries), told apart from the numbered ones. */
export const CLOCK_VALUE = -1;

/** An inner log that fails a fixed share of calls: before writing, or after writing (a lost answer). */
class RandomlyFailingLog implements Log {
  readonly #inner: Log;
  #seed: number;

  constructor(inner: Log, seed: number) {
    this.#inner = inner;
    this.#seed = seed;
  }

  /** xorshift32: reproducible per seed. */
  #random(): number {
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed / 2 ** 32;
  }

  open(): Promise<void> {
    return this.#inner.open();
  }
  partitions(topic: string): number {
    return this.#inner.partitions(topic);
  }
  async append<T>(
    topic: string,
    records: readonly AppendRecord<T>[],
    producerState?: unknown,
  ): Promise<void> {
    const roll = this.#random();
    if (roll < 0.2) throw new Error('inner down');
    await this.#inner.append(topic, records, producerState);
    if (roll < 0.35) throw new Error('answer lost');
  }
  async producerState(topic: string): Promise<unknown> {
    if (this.#random() < 0.2) throw new Error('inner down');
    return this.#inner.producerState(topic);
  }
  read<T>(topic: string, partition: number, fromOffset: number, maxRecords: number): Promise<LogRecord<T>[]> {
    return this.#inner.read<T>(topic, partition, fromOffset, maxRecords);
  }
  endOffset(topic: string, partition: number): number {
    return this.#inner.endOffset(topic, partition);
  }
  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    return this.#inner.waitFor(topic, partition, offset, timeoutMs);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

if (import.meta.main) {
  const [logDir, spoolDir, seed] = process.argv.slice(2);
  const inner = new RandomlyFailingLog(new EmbeddedLog({ dir: logDir! }), Number(seed) || 1);
  const log = new SpoolingLog({ inner, dir: spoolDir!, maxBytes: 4_096, retryMs: 1 });
  await log.open();
  let state: WriterState | undefined;
  while (state === undefined) {
    try {
      state = ((await log.producerState('ticks')) as WriterState | undefined) ?? { next: 0 };
    } catch {
      // The inner log failed the read: ask again, as ingest's open would be retried.
    }
  }
  let next = state.next;
  for (let n = 0; ; n++) {
    if (n % 4 === 3) {
      await log.append('ticks', [{ key: '', value: CLOCK_VALUE }]);
    } else {
      const size = 1 + (next % 7);
      const records = Array.from({ length: size }, (_, i) => ({ key: 'K', value: next + i }));
      next += size;
      await log.append('ticks', records, { next } satisfies WriterState);
    }
    process.stdout.write(`${JSON.stringify(log.stats())}\n`);
  }
}
