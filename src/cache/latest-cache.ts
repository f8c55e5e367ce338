/**
 * The latest tick of every symbol, kept for a limited time (docs/design.md, Modes: "latest prices cached in
 * Redis with a TTL"). The processor sets it after each committed batch; any process can read it.
 * Implementations: `memory` (one process), `redis` (shared); both pass `conformance.ts`.
 */
import type { LatestTick } from '../store/store.ts';

export interface LatestCache {
  /** Connects; must be called before anything else. */
  open(): Promise<void>;
  /**
   * Sets the latest tick of each symbol in `ticks` (the last one of a symbol in the list wins);
   * each expires `ttlMs` after this call unless set again.
   */
  set(ticks: readonly LatestTick[]): Promise<void>;
  /** The cached tick of a symbol, or undefined when none was set or it expired. */
  get(symbol: string): Promise<LatestTick | undefined>;
  /** Every unexpired entry, ascending by symbol. */
  all(): Promise<LatestTick[]>;
  close(): Promise<void>;
}

/** Keeps only the last tick of each symbol, so a batch costs one write per symbol. */
export function lastPerSymbol(ticks: readonly LatestTick[]): Map<string, LatestTick> {
  const last = new Map<string, LatestTick>();
  for (const tick of ticks) last.set(tick.symbol, tick);
  return last;
}

/** Ascending by symbol, in code-unit order (the same in every implementation and locale). */
export function sortBySymbol(ticks: LatestTick[]): LatestTick[] {
  return ticks.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
}
