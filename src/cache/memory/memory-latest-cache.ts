/** The in-process LatestCache: a map with an expiry per symbol, checked when read. */
import type { LatestTick } from '../../store/store.ts';
import { type LatestCache, lastPerSymbol, sortBySymbol } from '../latest-cache.ts';

export interface MemoryLatestCacheOptions {
  ttlMs: number;
  /** Wall clock in ms; tests pass their own. */
  now?: () => number;
}

interface Entry {
  tick: LatestTick;
  expiresAt: number;
}

export class MemoryLatestCache implements LatestCache {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: MemoryLatestCacheOptions) {
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  async open(): Promise<void> {}

  async set(ticks: readonly LatestTick[]): Promise<void> {
    const expiresAt = this.#now() + this.#ttlMs;
    for (const [symbol, tick] of lastPerSymbol(ticks))
      this.#entries.set(symbol, { tick: { ...tick }, expiresAt });
  }

  async get(symbol: string): Promise<LatestTick | undefined> {
    const entry = this.#entries.get(symbol);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(symbol);
      return undefined;
    }
    return { ...entry.tick };
  }

  async all(): Promise<LatestTick[]> {
    const now = this.#now();
    const out: LatestTick[] = [];
    for (const [symbol, entry] of this.#entries) {
      if (entry.expiresAt <= now) this.#entries.delete(symbol);
      else out.push({ ...entry.tick });
    }
    return sortBySymbol(out);
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }
}
