/**
 * In-process stages of the benchmark: JSON.parse alone, ingest (parse + validate + dedup), the
 * processor alone and the stores' bulk writes. Each is measured on its own, without the others.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { IngestEntry, ProcessedTick, Tick } from '../src/core/records.ts';
import { TOPIC_TICKS } from '../src/core/records.ts';
import type { Feed, FeedBatch } from '../src/feeds/feed.ts';
import { Dedup } from '../src/ingest/dedup.ts';
import { DEFAULT_DEDUP_HORIZON_MS, Ingest } from '../src/ingest/ingest.ts';
import { validateRecord } from '../src/ingest/validate.ts';
import type { Log } from '../src/log/log.ts';
import { MemoryLog } from '../src/log/memory/memory-log.ts';
import { DEFAULT_ANOMALY, emptyOutput, type ProcessConfig, Processor } from '../src/process/processor.ts';
import { DuckDbStore } from '../src/store/duckdb/duckdb-store.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import type { Store, StoreBatch } from '../src/store/store.ts';
import { createTestSchema, findOrStartPostgres } from '../test/support/postgres.ts';
import { benchTickBatch } from './tick-batch.ts';
import { bestOf, perSecond } from './util.ts';

/** Lines per feed batch and ticks per processor output batch, as the pipeline hands them on. */
const FEED_BATCH = 10_000;
const PROCESS_BATCH = 10_000;
/** Ticks per store write, as docs/design.md's store measurement specifies. */
export const STORE_BATCH = 5_000;
export const SYMBOLS = Array.from({ length: 100 }, (_, i) => `SYM${i}`);

/** JSON.parse alone on every line: the yardstick every other number stands next to. */
export function measureParse(lines: readonly string[], rounds: number): number {
  let sink = 0;
  const ms = bestOf(rounds, () => {
    for (let i = 0; i < lines.length; i++) sink += (JSON.parse(lines[i]!) as { ts: number }).ts & 1;
  });
  // Using the sink keeps the parse from being optimised away.
  if (sink < 0) throw new Error('unreachable');
  return perSecond(lines.length, ms);
}

/**
 * Parse + validate + dedup, the work ingest does per line, with the Dedup of src/ingest/dedup.ts
 * (exact integer ids as ranges, other ids for the horizon) as src/ingest/ingest.ts keeps it. Returns the rate and the accepted ticks as log entries, for
 * the processor stage to run on the same input.
 */
export function measureIngest(
  lines: readonly string[],
  rounds: number,
): { ticksPerSec: number; entries: IngestEntry[] } {
  let entries: IngestEntry[] = [];
  const ms = bestOf(rounds, () => {
    const dedup = new Dedup(DEFAULT_DEDUP_HORIZON_MS);
    const out: IngestEntry[] = [];
    const receivedAt = Date.now();
    for (let i = 0; i < lines.length; i++) {
      let value: unknown;
      try {
        value = JSON.parse(lines[i]!);
      } catch {
        continue;
      }
      // Built as ingest builds its entries, `kind` included.
      const result = validateRecord(value, 'replay', receivedAt, 'tick');
      if (!result.ok) continue;
      const tick = result.tick;
      if (dedup.check(tick.source, tick.symbol, tick.ts, tick.id) !== 'accept') continue;
      out.push(tick as Tick & { kind: 'tick' });
    }
    entries = out;
  });
  entries.push({ kind: 'end', source: 'replay' });
  return { ticksPerSec: perSecond(lines.length, ms), entries };
}

/** A bounded feed that hands over prepared lines in batches, as the replay feed does. */
class LinesFeed implements Feed {
  readonly name = 'bench';
  readonly type = 'replay';
  readonly bounded = true;
  readonly defaultSource = 'replay';
  readonly #lines: readonly string[];

  constructor(lines: readonly string[]) {
    this.#lines = lines;
  }

  async *run(_position: unknown, signal: AbortSignal): AsyncIterable<FeedBatch> {
    for (let first = 0; first < this.#lines.length && !signal.aborted; first += FEED_BATCH) {
      const end = Math.min(this.#lines.length, first + FEED_BATCH);
      yield { lines: this.#lines.slice(first, end), position: end };
    }
  }
}

/**
 * The real Ingest class appending to `log` (a fresh MemoryLog unless given) from a scripted bounded
 * feed, then every entry read back: lines/s from the first append to the last record read.
 */
export async function measureIngestToLog(
  lines: readonly string[],
  given?: Log,
  /** Called between the appends and the read-back (bench/kafka.ts splits its CPU there). */
  onAppended?: () => void,
): Promise<number> {
  const log = given ?? new MemoryLog();
  await log.open();
  try {
    const ingest = new Ingest(log);
    await ingest.open();
    const started = performance.now();
    await ingest.runFeed(new LinesFeed(lines), new AbortController().signal);
    onAppended?.();
    let read = 0;
    for (let partition = 0; partition < log.partitions(TOPIC_TICKS); partition++) {
      const end = log.endOffset(TOPIC_TICKS, partition);
      for (let offset = 0; offset < end; ) {
        const records = await log.read(TOPIC_TICKS, partition, offset, FEED_BATCH);
        if (records.length === 0) break;
        read += records.length;
        offset = records[records.length - 1]!.offset + 1;
      }
    }
    const ms = performance.now() - started;
    // Every line and the end entry are in the log: nothing was skipped.
    if (read < lines.length) throw new Error(`read back ${read} entries for ${lines.length} lines`);
    return perSecond(lines.length, ms);
  } finally {
    await log.close();
  }
}

/**
 * Ticks over SYMBOLS at `marketTicksPerSecond` (exponential gaps), with up to 2 s of disorder and
 * 0.1 % of ticks past the lateness: the processor bench's market (bench/processor.ts).
 * 1 000 ticks/s over 100 symbols puts ~600 ticks in each 1m candle.
 */
export function syntheticEntries(count: number, marketTicksPerSecond = 1_000): IngestEntry[] {
  const prices = SYMBOLS.map((_, i) => 100 + i);
  const entries: IngestEntry[] = new Array(count);
  let seed = 42;
  const random = () => {
    seed = (Math.imul(seed, 1_664_525) + 1_013_904_223) >>> 0;
    return seed / 2 ** 32;
  };
  let ts = 1_700_000_000_000;
  for (let i = 0; i < count; i++) {
    const s = i % SYMBOLS.length;
    ts += Math.round((-Math.log(1 - random()) * 1000) / marketTicksPerSecond);
    const delayMs = random() < 0.001 ? 15_000 : Math.floor(random() * 2_000);
    const price = prices[s]! * (1 + (random() - 0.5) * 0.002);
    prices[s] = price;
    // The key order of ingest's entries (src/ingest/validate.ts, and the entry codec's decoding): the
    // processor sees objects of that shape in the pipeline, and a shape it never gets there would make
    // its property accesses polymorphic after the replay stage and measure that instead.
    entries[i] = {
      source: 'synthetic',
      symbol: SYMBOLS[s]!,
      ts: ts - delayMs,
      price,
      size: random() * 2,
      receivedAt: ts,
      id: String(i),
      kind: 'tick',
    };
  }
  entries.push({ kind: 'end', source: 'synthetic' });
  return entries;
}

const PROCESS_CONFIG: ProcessConfig = { latenessMs: 10_000, priceRules: [], anomaly: DEFAULT_ANOMALY };

/** The Processor alone over pre-built entries on this thread (one core): ticks/s, best of `rounds`. */
export function measureProcess(entries: readonly IngestEntry[], rounds: number): number {
  let ticks = 0;
  for (const entry of entries) if (entry.kind === 'tick') ticks++;
  const ms = bestOf(rounds, () => {
    const processor = new Processor(PROCESS_CONFIG);
    let out = emptyOutput();
    for (let i = 0; i < entries.length; i++) {
      processor.apply(entries[i]!, i, out);
      if (out.ticks.length >= PROCESS_BATCH) out = emptyOutput();
    }
  });
  return perSecond(ticks, ms);
}

/** `STORE_BATCH` processed ticks over SYMBOLS, batch number `batch`. */
function tickBatch(batch: number): ProcessedTick[] {
  return benchTickBatch(batch, STORE_BATCH, SYMBOLS, 1);
}

function storeBatches(count: number): StoreBatch[] {
  return Array.from({ length: count }, (_, b) => ({
    ticks: tickBatch(b),
    candles: [],
    indicators: [],
    alerts: [],
    deadLetters: [],
    checkpoint: { name: 'bench', offsets: { 0: (b + 1) * STORE_BATCH }, state: { b } },
  }));
}

/** Rows/s of `batches` sequential writes, each a transaction with its checkpoint, after one warm-up. */
async function measureWrites(store: Store, batchCount: number): Promise<number> {
  const batches = storeBatches(batchCount + 1);
  // The warm-up batch pays for first-use costs (table files, partitions), not measured.
  await store.write(batches[0]!);
  const started = performance.now();
  for (let b = 1; b < batches.length; b++) await store.write(batches[b]!);
  return perSecond(batchCount * STORE_BATCH, performance.now() - started);
}

/** DuckDbStore into a temp file. */
export async function measureDuckDbStore(batchCount: number): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-bench-store-'));
  const store = new DuckDbStore({ path: path.join(dir, 'bench.duckdb') });
  try {
    await store.open();
    return await measureWrites(store, batchCount);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * PostgresStore (COPY) into a fresh schema, when test/support/postgres.ts finds or starts a
 * server; undefined (with the reason) when there is none.
 */
export async function measurePostgresStore(
  batchCount: number,
): Promise<{ rowsPerSec: number } | { skip: string }> {
  let server: Awaited<ReturnType<typeof findOrStartPostgres>>;
  try {
    server = await findOrStartPostgres();
  } catch (error) {
    // In CI findOrStartPostgres throws rather than skip; a bench reports the gap instead of failing.
    return { skip: error instanceof Error ? error.message : String(error) };
  }
  if ('skip' in server) return server;
  try {
    const { schema, drop } = await createTestSchema(server.url);
    const store = new PostgresStore({ url: server.url, schema, timescale: 'off', retentionEveryMs: 0 });
    try {
      await store.open();
      return { rowsPerSec: await measureWrites(store, batchCount) };
    } finally {
      await store.close();
      await drop();
    }
  } finally {
    await server.stop();
  }
}
