/**
 * What the processor's checkpoint state costs DuckDB (issue #11, docs/operations.md, Soak):
 * `npx node bench/checkpoint-state.ts [stateBytes] [writes] [memoryLimit]` writes `writes` store
 * batches of 1 000 ticks, each carrying a checkpoint state of `stateBytes` (the processor's snapshot
 * rides every commit, about once a second in a live run), and prints DuckDB's own memory
 * (`duckdb_memory()`), the process's native memory (anonymous RSS minus the V8 heap) and, at the
 * end, the database file's size and that of its state folder. Compare `100` with `200000`: with the
 * state in the `checkpoints` row, the file and native memory grew with writes x state size; with
 * the state in `<db file>.state/` (checkpoint-states.ts) they no longer depend on its size.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBatch } from '../src/store/conformance.ts';
import { DuckDbStore } from '../src/store/duckdb/duckdb-store.ts';
import { benchTickBatch } from './tick-batch.ts';

const stateBytes = Number(process.argv[2] ?? 200_000);
const writes = Number(process.argv[3] ?? 300);
const memoryLimit = process.argv[4] ?? '256MiB';
const symbols = Array.from({ length: 100 }, (_, i) => `SYM${i}`);
const nativeMb = () => {
  const anonKb = Number(
    /RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? Number.NaN,
  );
  return Math.round(anonKb / 1024 - process.memoryUsage().heapTotal / 2 ** 20);
};
const dir = await mkdtemp(join(tmpdir(), 'streamlines-checkpoint-state-'));
try {
  const file = join(dir, 'store.duckdb');
  const store = new DuckDbStore({ path: file, memoryLimit });
  await store.open();
  const connection = await store.connect();
  const state = { padding: 'x'.repeat(stateBytes) };
  let seq = 0;
  for (let write = 1; write <= writes; write++) {
    const ticks = benchTickBatch(write, 1_000, symbols, 1).map((tick) => ({ ...tick, seq: seq++ }));
    await store.write(makeBatch({ ticks, checkpoint: { name: 'process', offsets: { 0: seq }, state } }));
    if (write % 50 === 0 || write === writes) {
      const duckdbMb = Number(
        (
          await connection.runAndReadAll('SELECT sum(memory_usage_bytes) / 1048576 FROM duckdb_memory()')
        ).getRows()[0]![0],
      );
      process.stdout.write(
        `${JSON.stringify({ write, duckdbMb: Math.round(duckdbMb), nativeMb: nativeMb() })}\n`,
      );
    }
  }
  connection.closeSync();
  await store.close();
  process.stdout.write(
    `${JSON.stringify({
      stateBytes,
      writes,
      memoryLimit,
      fileMb: Math.round(statSync(file).size / 2 ** 20),
      stateDirKb: Math.round(
        readdirSync(`${file}.state`).reduce(
          (sum, name) => sum + statSync(join(`${file}.state`, name)).size,
          0,
        ) / 1024,
      ),
    })}\n`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
