/**
 * Embedded log throughput: 1,000,000 tick-like records appended in batches of 5,000 with a reader
 * tailing right behind (the in-process pipeline's hot path), then reopened (recovery scan) and read
 * back cold from disk. Run: npx node bench/embedded-log.ts [partitions] [batch] [fsync]
 * (defaults 1, 5000, no fsync; a batch of 1 measures the worst case for the recovery scan).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedLog } from '../src/log/embedded/embedded-log.ts';
import type { AppendRecord } from '../src/log/log.ts';

const TOTAL = 1_000_000;
const partitions = Number(process.argv[2] ?? 1);
const BATCH = Number(process.argv[3] ?? 5_000);
const fsync = process.argv[4] === 'fsync';
const symbols =
  partitions === 1 ? ['BTCUSDT'] : ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT', 'ADAUSDT', 'DOGEUSDT'];

function makeBatch(start: number): AppendRecord<unknown>[] {
  const batch: AppendRecord<unknown>[] = new Array(BATCH);
  for (let i = 0; i < BATCH; i++) {
    const n = start + i;
    const symbol = symbols[n % symbols.length]!;
    batch[i] = {
      key: symbol,
      value: {
        kind: 'tick',
        source: 'replay',
        symbol,
        ts: 1_700_000_000_000 + n * 10,
        price: 43_000 + (n % 1000) * 0.5,
        size: 0.001 * ((n % 97) + 1),
        id: String(1_000_000_000 + n),
        receivedAt: 1_700_000_000_050 + n * 10,
      },
    };
  }
  return batch;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'streamlines-log-bench-'));
try {
  let log = new EmbeddedLog({ dir, partitions, fsync });
  await log.open();
  const next = new Array<number>(partitions).fill(0);
  let tailed = 0;
  // Batches are made just in time, like ingest does, and only the log's work is timed.
  let appendMs = 0;
  for (let b = 0; b < Math.ceil(TOTAL / BATCH); b++) {
    const batch = makeBatch(b * BATCH);
    const batchStarted = performance.now();
    await log.append('price-ticks', batch, { batch: b });
    for (let p = 0; p < partitions; p++) {
      const records = await log.read('price-ticks', p, next[p]!, 10_000);
      next[p]! += records.length;
      tailed += records.length;
    }
    appendMs += performance.now() - batchStarted;
  }
  if (tailed !== TOTAL) throw new Error(`tailed ${tailed} of ${TOTAL}`);
  await log.close();
  const bytes = fs
    .readdirSync(path.join(dir, 'price-ticks'))
    .reduce((sum, name) => sum + fs.statSync(path.join(dir, 'price-ticks', name)).size, 0);

  log = new EmbeddedLog({ dir, partitions });
  let started = performance.now();
  await log.open();
  const openMs = performance.now() - started;

  started = performance.now();
  let cold = 0;
  for (let p = 0; p < partitions; p++) {
    for (let offset = 0; ; ) {
      const records = await log.read('price-ticks', p, offset, 10_000);
      if (records.length === 0) break;
      offset += records.length;
      cold += records.length;
    }
  }
  const coldMs = performance.now() - started;
  if (cold !== TOTAL) throw new Error(`read ${cold} of ${TOTAL}`);
  await log.close();

  const rate = (ms: number) => `${Math.round(TOTAL / (ms / 1000)).toLocaleString('en-US')} records/s`;
  console.log(
    `partitions=${partitions} fsync=${fsync} records=${TOTAL} batch=${BATCH} log=${(bytes / 2 ** 20).toFixed(1)} MiB`,
  );
  console.log(`append + tailing read: ${appendMs.toFixed(0)} ms, ${rate(appendMs)}`);
  console.log(`open (recovery scan):  ${openMs.toFixed(0)} ms`);
  console.log(`cold read from disk:   ${coldMs.toFixed(0)} ms, ${rate(coldMs)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
