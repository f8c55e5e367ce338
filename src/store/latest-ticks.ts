/** Batch helpers shared by the durable stores. */
import type { ProcessedTick } from '../core/records.ts';

/** The tick with the largest seq of each symbol in the batch: the only candidates for `latest`. */
export function lastTickPerSymbol(ticks: readonly ProcessedTick[]): ProcessedTick[] {
  const last = new Map<string, ProcessedTick>();
  for (const tick of ticks) {
    const current = last.get(tick.symbol);
    if (current === undefined || tick.seq > current.seq) last.set(tick.symbol, tick);
  }
  return [...last.values()];
}
