/**
 * Measures tick writes into a real PostgreSQL: batches of 5,000 ProcessedTicks (100 symbols), each
 * with its checkpoint in one transaction, in rows/s, for COPY and for INSERT ... unnest. Uses
 * STREAMLINES_TEST_PG_URL, or starts a throwaway cluster (test/support/postgres.ts).
 * Run: `npx node bench/postgres-store.ts [batches]`.
 */

import type { ProcessedTick } from '../src/core/records.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import type { StoreBatch } from '../src/store/store.ts';
import { createTestSchema, findOrStartPostgres } from '../test/support/postgres.ts';
import { listenerPid, portOf, treeCpuSeconds } from './server-cpu.ts';
import { benchTickBatch } from './tick-batch.ts';

const TICKS_PER_BATCH = 5000;
const SYMBOLS = 100;
const SYMBOL_NAMES = Array.from({ length: SYMBOLS }, (_, i) => `SYM${i}`);
const batchCount = Number(process.argv[2] ?? 40);

/** The store benchmarks' ticks: ids on even seqs only, like a feed that sends ids for some trades. */
function tickBatch(batch: number): ProcessedTick[] {
  return benchTickBatch(batch, TICKS_PER_BATCH, SYMBOL_NAMES, 2);
}

const server = await findOrStartPostgres();
if ('skip' in server) {
  console.error(server.skip);
  process.exit(1);
}
try {
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
    // CPU per row on both sides: this process (encoding) and the server (parsing, inserting).
    const serverPid = await listenerPid(portOf(server.url));
    const serverCpuBefore = serverPid === undefined ? 0 : await treeCpuSeconds(serverPid);
    const clientCpuBefore = process.cpuUsage();
    for (const batch of batches) {
      const start = performance.now();
      await store.write(batch);
      rates.push(TICKS_PER_BATCH / ((performance.now() - start) / 1000));
    }
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const serverCpuS =
      serverPid === undefined ? Number.NaN : (await treeCpuSeconds(serverPid)) - serverCpuBefore;
    const rows = batchCount * TICKS_PER_BATCH;
    await store.close();
    await drop();
    rates.sort((a, b) => a - b);
    const total =
      (batchCount * TICKS_PER_BATCH) / rates.reduce((sum, rate) => sum + TICKS_PER_BATCH / rate, 0);
    console.log(
      `${bulkWrite}: ${batchCount} batches x ${TICKS_PER_BATCH} ticks: overall ${Math.round(total)} rows/s, ` +
        `median batch ${Math.round(rates[Math.floor(rates.length / 2)]!)} rows/s, best ${Math.round(rates.at(-1)!)} rows/s; ` +
        `CPU per row: client ${((clientCpu.user + clientCpu.system) / rows).toFixed(2)} µs, ` +
        `server ${((serverCpuS * 1e6) / rows).toFixed(2)} µs`,
    );
  }
} finally {
  await server.stop();
}
