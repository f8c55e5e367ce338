/** The synthetic processed ticks the store benchmarks write, so every store is measured on the same rows. */
import type { ProcessedTick } from '../src/core/records.ts';

/** Timestamp of the first tick (seq 0); each next seq is 3 ms later. */
export const BENCH_T0 = 1_699_999_980_000;

/**
 * Batch number `batch` of `size` processed ticks cycling over `symbols`; ticks whose seq is a multiple of
 * `idEvery` carry a trade id, the rest none.
 */
export function benchTickBatch(
  batch: number,
  size: number,
  symbols: readonly string[],
  idEvery: number,
): ProcessedTick[] {
  const ticks: ProcessedTick[] = new Array(size);
  for (let i = 0; i < size; i++) {
    const seq = batch * size + i;
    ticks[i] = {
      source: 'synthetic',
      symbol: symbols[seq % symbols.length]!,
      ts: BENCH_T0 + seq * 3,
      price: 100 + Math.sin(seq) * 5,
      size: 0.5 + (seq % 7) / 10,
      id: seq % idEvery === 0 ? String(seq) : undefined,
      side: seq % 3 === 0 ? 'buy' : 'sell',
      receivedAt: BENCH_T0 + seq * 3 + 2,
      seq,
      maShort: seq < 5 ? null : 100.5,
      maLong: seq < 20 ? null : 100.25,
      late: seq % 97 === 0,
    };
  }
  return ticks;
}
