/**
 * Measures writes into a real PostgreSQL, with CPU per row on both sides. Uses
 * STREAMLINES_TEST_PG_URL, or starts a throwaway cluster (test/support/postgres.ts).
 *
 *   npx node bench/postgres-store.ts [batches]
 *     batches of 5,000 ProcessedTicks (100 symbols), each with its checkpoint in one transaction,
 *     in rows/s, for COPY and for INSERT ... unnest.
 *   npx node bench/postgres-store.ts replay [lines] [partitions] [entriesPerCommit]
 *     what the distributed processors write for the distributed bench's replay (200 000 lines over
 *     100 symbols, the candle-heavy market of bench/distributed.ts): the Processor's real output
 *     (ticks, candles, indicators, alerts) and its real snapshot as the checkpoint, one processor
 *     and one fenced checkpoint per partition, a commit every `entriesPerCommit` entries (default
 *     15 000: the distributed run commits about that much at once). CPU µs per accepted tick of
 *     this process (encoding) and of the server, the figure `distributedCpu.postgres` is made of.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IngestEntry, ProcessedTick } from '../src/core/records.ts';
import { partitionFor } from '../src/log/log.ts';
import { DEFAULT_ANOMALY, emptyOutput, type ProcessConfig, Processor } from '../src/process/processor.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import type { StoreBatch } from '../src/store/store.ts';
import { writeReplay } from '../test/support/generate-ticks.ts';
import { createTestSchema, findOrStartPostgres, type TestPostgres } from '../test/support/postgres.ts';
import { measureIngest, SYMBOLS } from './micro.ts';
import { listenerPid, portOf, treeCpuSeconds } from './server-cpu.ts';
import { benchTickBatch } from './tick-batch.ts';

const TICKS_PER_BATCH = 5000;
const SYMBOL_NAMES = Array.from({ length: 100 }, (_, i) => `SYM${i}`);

/** The store benchmarks' ticks: ids on even seqs only, like a feed that sends ids for some trades. */
function tickBatch(batch: number): ProcessedTick[] {
  return benchTickBatch(batch, TICKS_PER_BATCH, SYMBOL_NAMES, 2);
}

/** CPU seconds of this process and of the server (the cluster and its backends) around `work`. */
async function cpuAround(
  server: TestPostgres,
  work: () => Promise<void>,
): Promise<{ clientS: number; serverS: number }> {
  const serverPid = await listenerPid(portOf(server.url));
  const serverCpuBefore = serverPid === undefined ? 0 : await treeCpuSeconds(serverPid);
  const clientCpuBefore = process.cpuUsage();
  await work();
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const serverS = serverPid === undefined ? Number.NaN : (await treeCpuSeconds(serverPid)) - serverCpuBefore;
  return { clientS: (clientCpu.user + clientCpu.system) / 1e6, serverS };
}

async function measureTickBatches(server: TestPostgres, batchCount: number): Promise<void> {
  const batches: StoreBatch[] = [];
  for (let b = 0; b < batchCount; b++) {
    batches.push({
      ticks: tickBatch(b),
      candles: [],
      indicators: [],
      alerts: [],
      deadLetters: [],
      checkpoint: { name: 'processor', offsets: { 0: (b + 1) * TICKS_PER_BATCH }, state: { b } },
    });
  }
  for (const bulkWrite of ['copy', 'insert'] as const) {
    const { schema, drop } = await createTestSchema(server.url);
    const store = new PostgresStore({
      url: server.url,
      schema,
      timescale: 'off',
      bulkWrite,
      retentionEveryMs: 0,
    });
    await store.open();
    // One warm-up batch creates the day partition, so the rounds measure steady-state writes.
    await store.write({ ...batches[0]!, checkpoint: { ...batches[0]!.checkpoint, name: 'warm-up' } });
    const rates: number[] = [];
    const { clientS, serverS } = await cpuAround(server, async () => {
      for (const batch of batches) {
        const start = performance.now();
        await store.write(batch);
        rates.push(TICKS_PER_BATCH / ((performance.now() - start) / 1000));
      }
    });
    const rows = batchCount * TICKS_PER_BATCH;
    await store.close();
    await drop();
    rates.sort((a, b) => a - b);
    const total =
      (batchCount * TICKS_PER_BATCH) / rates.reduce((sum, rate) => sum + TICKS_PER_BATCH / rate, 0);
    console.log(
      `${bulkWrite}: ${batchCount} batches x ${TICKS_PER_BATCH} ticks: overall ${Math.round(total)} rows/s, ` +
        `median batch ${Math.round(rates[Math.floor(rates.length / 2)]!)} rows/s, best ${Math.round(rates.at(-1)!)} rows/s; ` +
        `CPU per row: client ${((clientS * 1e6) / rows).toFixed(2)} µs, ` +
        `server ${((serverS * 1e6) / rows).toFixed(2)} µs`,
    );
  }
}

/** What the process role runs with the bench's config (no price rules, crosses on, anomaly off). */
const PROCESS_CONFIG: ProcessConfig = { latenessMs: 10_000, priceRules: [], anomaly: DEFAULT_ANOMALY };

/**
 * The batches the distributed processors commit for the replay: per partition (by symbol, as
 * ingest keys them), the processor's output and snapshot every `entriesPerCommit` entries, each
 * fenced on the previous commit's offsets. Built before anything is timed.
 */
export async function replayBatches(
  lines: number,
  partitions: number,
  entriesPerCommit: number,
): Promise<{ batches: StoreBatch[]; ticks: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'streamlines-bench-pg-'));
  let text: string;
  try {
    const file = join(dir, 'ticks.ndjson');
    await writeReplay(file, { count: lines, seed: 1, hostile: false, symbols: [...SYMBOLS] });
    text = await readFile(file, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const { entries } = measureIngest(
    text.split('\n').filter((line) => line !== ''),
    1,
  );
  const byPartition: IngestEntry[][] = Array.from({ length: partitions }, () => []);
  let seq = 0;
  for (const entry of entries) {
    if (entry.kind !== 'tick') continue;
    byPartition[partitionFor(entry.symbol, partitions)]!.push({ ...entry, seq: seq++ });
  }
  const batches: StoreBatch[] = [];
  byPartition.forEach((partitionEntries, partition) => {
    partitionEntries.push({ kind: 'end', source: 'replay' });
    const processor = new Processor(PROCESS_CONFIG);
    const name = `processor:p${partition}`;
    let previous: Record<number, number> = {};
    for (let from = 0; from < partitionEntries.length; from += entriesPerCommit) {
      const to = Math.min(partitionEntries.length, from + entriesPerCommit);
      const out = emptyOutput();
      for (let offset = from; offset < to; offset++) processor.apply(partitionEntries[offset]!, offset, out);
      const offsets = { [partition]: to };
      batches.push({ ...out, checkpoint: { name, offsets, state: processor.snapshot(), previous } });
      previous = offsets;
    }
  });
  // Commits of the partitions interleave, as the processors' do.
  const perPartition = Math.ceil(batches.length / partitions);
  const ordered: StoreBatch[] = [];
  for (let round = 0; round < perPartition; round++) {
    for (let partition = 0; partition < partitions; partition++) {
      const name = `processor:p${partition}`;
      const ofPartition = batches.filter((batch) => batch.checkpoint.name === name);
      if (ofPartition[round] !== undefined) ordered.push(ofPartition[round]!);
    }
  }
  return { batches: ordered, ticks: seq };
}

async function measureReplayWrites(
  server: TestPostgres,
  lines: number,
  partitions: number,
  entriesPerCommit: number,
): Promise<void> {
  const { batches, ticks } = await replayBatches(lines, partitions, entriesPerCommit);
  const rows = { ticks: 0, candles: 0, indicators: 0, alerts: 0 };
  let stateBytes = 0;
  for (const batch of batches) {
    rows.ticks += batch.ticks.length;
    rows.candles += batch.candles.length;
    rows.indicators += batch.indicators.length;
    rows.alerts += batch.alerts.length;
    stateBytes += JSON.stringify(batch.checkpoint.state).length;
  }
  const { schema, drop } = await createTestSchema(server.url);
  const store = new PostgresStore({ url: server.url, schema, timescale: 'off', retentionEveryMs: 0 });
  await store.open();
  try {
    const started = performance.now();
    const { clientS, serverS } = await cpuAround(server, async () => {
      for (const batch of batches) await store.write(batch);
    });
    const ms = performance.now() - started;
    const perTick = (seconds: number) => ((seconds * 1e6) / ticks).toFixed(2);
    console.log(
      JSON.stringify({
        ticks,
        commits: batches.length,
        rows,
        stateKbPerCommit: Math.round(stateBytes / batches.length / 1024),
        ms: Math.round(ms),
        clientUsPerTick: Number(perTick(clientS)),
        serverUsPerTick: Number(perTick(serverS)),
      }),
    );
  } finally {
    await store.close();
    await drop();
  }
}

if (import.meta.main) {
  const server = await findOrStartPostgres();
  if ('skip' in server) {
    console.error(server.skip);
    process.exit(1);
  }
  try {
    if (process.argv[2] === 'replay') {
      const [lines = 200_000, partitions = 3, entriesPerCommit = 15_000] = process.argv.slice(3).map(Number);
      await measureReplayWrites(server, lines, partitions, entriesPerCommit);
    } else {
      await measureTickBatches(server, Number(process.argv[2] ?? 40));
    }
  } finally {
    await server.stop();
  }
}
