/**
 * Memory of ingest's dedup state, per symbol and per tick (issue 11): the exact Set of every
 * `source\0symbol\0id` ingest kept before, against the ranges + horizon of src/ingest/dedup.ts, over
 * 100 symbols whose providers number trades 1, 2, 3... (as Binance, Coinbase and Kraken do), and over
 * string ids inside a 24 h horizon.
 *
 *   node --expose-gc bench/dedup-memory.ts [TICKS]
 */
import { Dedup } from '../src/ingest/dedup.ts';

const SYMBOLS = 100;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

function heapAfter(build: () => unknown): number {
  gc!();
  const before = process.memoryUsage().heapUsed;
  const kept = build();
  gc!();
  const after = process.memoryUsage().heapUsed;
  if (kept === undefined) throw new Error('unreachable');
  return after - before;
}

function measure(ticks: number): { ticks: number; oldSet: number; integerIds: number; stringIds: number } {
  const oldSet = heapAfter(() => {
    const seen = new Set<string>();
    for (let n = 0; n < ticks; n++)
      seen.add(`binance\u0000SYM${n % SYMBOLS}\u0000${Math.floor(n / SYMBOLS) + 1}`);
    return seen;
  });
  const integerIds = heapAfter(() => {
    const dedup = new Dedup(86_400_000);
    for (let n = 0; n < ticks; n++)
      dedup.check('binance', `SYM${n % SYMBOLS}`, 1_700_000_000_000 + n, String(Math.floor(n / SYMBOLS) + 1));
    return dedup;
  });
  // String ids, 1 000 ticks/s over all symbols: a 24 h horizon holds 86.4 M of them at most; here all
  // `ticks` stay inside it, the worst case per tick.
  const stringIds = heapAfter(() => {
    const dedup = new Dedup(86_400_000);
    for (let n = 0; n < ticks; n++) dedup.check('x', `SYM${n % SYMBOLS}`, 1_700_000_000_000 + n, `t-${n}`);
    return dedup;
  });
  return { ticks, oldSet, integerIds, stringIds };
}

const ticks = Number(process.argv[2] ?? 1_000_000);
for (const count of [ticks / 2, ticks]) {
  const { oldSet, integerIds, stringIds } = measure(count);
  process.stdout.write(
    `${count} ticks over ${SYMBOLS} symbols: Set ${(oldSet / count).toFixed(1)} B/tick (${(oldSet / 2 ** 20).toFixed(1)} MiB); ` +
      `ranges ${(integerIds / SYMBOLS).toFixed(0)} B/symbol (${(integerIds / 1024).toFixed(1)} KiB total); ` +
      `string ids in the horizon ${(stringIds / count).toFixed(1)} B/id\n`,
  );
}
