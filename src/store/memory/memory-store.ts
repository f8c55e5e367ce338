/**
 * A store in plain maps and arrays, for tests and for running without a database. Nothing
 * survives the process.
 */
import type {
  Alert,
  Candle,
  DeadLetter,
  IndicatorPoint,
  Interval,
  ProcessedTick,
} from '../../core/records.ts';
import { normalizeLimit, selectRange } from '../range-query.ts';
import type {
  AlertQuery,
  ApiKeyRecord,
  Checkpoint,
  ExpiryCutoffs,
  ExpiryResult,
  LatestTick,
  NewApiKey,
  RangeQuery,
  Store,
  StoreBatch,
  StoredSpan,
  StoredTick,
  SymbolSummary,
} from '../store.ts';
import {
  CheckpointConflictError,
  deadLetterBound,
  expiryPlan,
  latestTickOf,
  noneExpired,
  sameOffsets,
  storedTickOf,
} from '../store.ts';

/** Records kept sorted by a key, re-sorted lazily: batches mostly arrive in order, reads are rarer. */
class SortedList<T> {
  readonly #compare: (a: T, b: T) => number;
  #items: T[] = [];
  #sorted = true;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  push(item: T): void {
    const last = this.#items[this.#items.length - 1];
    if (last !== undefined && this.#compare(last, item) > 0) this.#sorted = false;
    this.#items.push(item);
  }

  /** Removes the items `expired` says yes to; returns how many went. */
  removeWhere(expired: (item: T) => boolean): number {
    const before = this.#items.length;
    this.#items = this.#items.filter((item) => !expired(item));
    return before - this.#items.length;
  }

  items(): readonly T[] {
    if (!this.#sorted) {
      this.#items.sort(this.#compare);
      this.#sorted = true;
    }
    return this.#items;
  }
}

const byTsThenSeq = (a: { ts: number; seq: number }, b: { ts: number; seq: number }): number =>
  a.ts - b.ts || a.seq - b.seq;
const byTs = (a: { ts: number }, b: { ts: number }): number => a.ts - b.ts;

function seriesKey(symbol: string, interval: Interval): string {
  return `${symbol}\u0000${interval}`;
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** The series of one symbol and interval that `record` belongs in, created empty on first use. */
function seriesOf<T extends { symbol: string; interval: Interval; ts: number }>(
  series: Map<string, SortedList<T>>,
  record: T,
): SortedList<T> {
  return getOrCreate(series, seriesKey(record.symbol, record.interval), () => new SortedList<T>(byTs));
}

/** The in-memory store: same semantics as the durable ones, checked by the same conformance suite. */
export class MemoryStore implements Store {
  #open = false;
  readonly #ticks = new Map<string, SortedList<ProcessedTick>>();
  readonly #candles = new Map<string, SortedList<Candle>>();
  readonly #indicators = new Map<string, SortedList<IndicatorPoint>>();
  readonly #alerts = new SortedList<Alert>(byTsThenSeq);
  readonly #deadLetters = new SortedList<DeadLetter>((a, b) => a.seq - b.seq);
  readonly #latest = new Map<string, ProcessedTick>();
  /** JSON, as a durable store keeps it: a later change to the caller's state object does not leak in. */
  readonly #checkpoints = new Map<string, string>();
  /** API keys by id, in creation order; the hash stays in here. */
  readonly #keys = new Map<string, ApiKeyRecord & { hash: string }>();

  async open(): Promise<void> {
    this.#open = true;
  }

  async write(batch: StoreBatch): Promise<void> {
    this.#assertOpen();
    // Everything that can throw happens before the first mutation, so a failed write leaves nothing.
    // The same rule as the durable stores' CHECK constraint.
    if (typeof batch.checkpoint.name !== 'string' || batch.checkpoint.name.length === 0) {
      throw new Error('checkpoint name must be a non-empty string');
    }
    const checkpointJson = JSON.stringify({
      offsets: batch.checkpoint.offsets,
      state: batch.checkpoint.state ?? null,
    });
    const previous = batch.checkpoint.previous;
    if (previous !== undefined) {
      const stored = this.#checkpoints.get(batch.checkpoint.name);
      const offsets = stored === undefined ? {} : (JSON.parse(stored) as Checkpoint).offsets;
      if (!sameOffsets(offsets, previous)) {
        throw new CheckpointConflictError(batch.checkpoint.name, previous, offsets);
      }
    }

    for (const tick of batch.ticks) {
      getOrCreate(this.#ticks, tick.symbol, () => new SortedList<ProcessedTick>(byTsThenSeq)).push({
        ...tick,
      });
      const latest = this.#latest.get(tick.symbol);
      if (latest === undefined || tick.seq > latest.seq) this.#latest.set(tick.symbol, { ...tick });
    }
    for (const candle of batch.candles) seriesOf(this.#candles, candle).push({ ...candle, final: true });
    for (const point of batch.indicators) seriesOf(this.#indicators, point).push({ ...point });
    for (const alert of batch.alerts) {
      const { threshold, ...rest } = alert;
      // An explicit `threshold: undefined` is stored as absent, as a SQL NULL would be.
      this.#alerts.push(threshold === undefined ? rest : { ...rest, threshold });
    }
    for (const deadLetter of batch.deadLetters) this.#deadLetters.push({ ...deadLetter });
    this.#checkpoints.set(batch.checkpoint.name, checkpointJson);
  }

  async checkpoint(name: string): Promise<Checkpoint | undefined> {
    this.#assertOpen();
    const json = this.#checkpoints.get(name);
    return json === undefined ? undefined : (JSON.parse(json) as Checkpoint);
  }

  async symbols(): Promise<SymbolSummary[]> {
    this.#assertOpen();
    return [...this.#latest.values()]
      .map((tick) => ({ symbol: tick.symbol, lastPrice: tick.price, lastTs: tick.ts }))
      .sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
  }

  async latest(symbol: string): Promise<LatestTick | undefined> {
    this.#assertOpen();
    const tick = this.#latest.get(symbol);
    return tick === undefined ? undefined : latestTickOf(tick);
  }

  async ticks(symbol: string, range: RangeQuery): Promise<StoredTick[]> {
    this.#assertOpen();
    const list = this.#ticks.get(symbol);
    if (list === undefined) return [];
    return selectRange(list.items(), range).map(storedTickOf);
  }

  async candles(symbol: string, interval: Interval, range: RangeQuery): Promise<Candle[]> {
    this.#assertOpen();
    const list = this.#candles.get(seriesKey(symbol, interval));
    return list === undefined ? [] : selectRange(list.items(), range).map((candle) => ({ ...candle }));
  }

  async indicators(symbol: string, interval: Interval, range: RangeQuery): Promise<IndicatorPoint[]> {
    this.#assertOpen();
    const list = this.#indicators.get(seriesKey(symbol, interval));
    return list === undefined ? [] : selectRange(list.items(), range).map((point) => ({ ...point }));
  }

  async alerts(query: AlertQuery): Promise<Alert[]> {
    this.#assertOpen();
    const matching = this.#alerts
      .items()
      .filter(
        (alert) =>
          (query.symbol === undefined || alert.symbol === query.symbol) &&
          (query.kind === undefined || alert.kind === query.kind),
      );
    return selectRange(matching, query).map((alert) => ({ ...alert }));
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    this.#assertOpen();
    const all = this.#deadLetters.items();
    const count = Math.min(all.length, normalizeLimit(limit));
    return all.slice(all.length - count).map((deadLetter) => ({ ...deadLetter }));
  }

  async createKey(key: NewApiKey): Promise<void> {
    this.#assertOpen();
    // The same rules as the durable stores' constraints.
    if (typeof key.name !== 'string' || key.name.length === 0) throw new Error('key name must not be empty');
    if (key.role !== 'read' && key.role !== 'admin') throw new Error(`unknown key role "${key.role}"`);
    if (this.#keys.has(key.id)) throw new Error(`key id "${key.id}" already exists`);
    for (const existing of this.#keys.values()) {
      if (existing.hash === key.hash) throw new Error('key hash already exists');
    }
    const { id, name, role, hash, createdAt } = key;
    this.#keys.set(id, { id, name, role, hash, createdAt, revokedAt: null });
  }

  async listKeys(): Promise<ApiKeyRecord[]> {
    this.#assertOpen();
    return [...this.#keys.values()]
      .map(({ hash: _hash, ...record }) => record)
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    this.#assertOpen();
    for (const { hash: keyHash, ...record } of this.#keys.values()) {
      if (keyHash === hash && record.revokedAt === null) return record;
    }
    return undefined;
  }

  async revokeKey(id: string, revokedAt: number = Date.now()): Promise<boolean> {
    this.#assertOpen();
    const key = this.#keys.get(id);
    if (key === undefined || key.revokedAt !== null) return false;
    key.revokedAt = revokedAt;
    return true;
  }

  async newestTickTs(): Promise<number | undefined> {
    this.#assertOpen();
    let newest: number | undefined;
    for (const list of this.#ticks.values()) {
      const items = list.items();
      const last = items[items.length - 1];
      if (last !== undefined && !(last.ts <= (newest ?? Number.NEGATIVE_INFINITY))) newest = last.ts;
    }
    return newest;
  }

  async storedSpan(): Promise<StoredSpan> {
    this.#assertOpen();
    const span: StoredSpan = {};
    for (const list of this.#ticks.values()) {
      const first = list.items()[0];
      if (first !== undefined && !(first.ts >= (span.oldestTickTs ?? Infinity))) span.oldestTickTs = first.ts;
    }
    const aggregates = [...this.#candles.values(), ...this.#indicators.values(), this.#alerts];
    for (const list of aggregates) {
      const first = (list.items() as readonly { ts: number }[])[0];
      if (first !== undefined && !(first.ts >= (span.oldestAggregateTs ?? Infinity))) {
        span.oldestAggregateTs = first.ts;
      }
    }
    return span;
  }

  async deleteExpired(cutoffs: ExpiryCutoffs): Promise<ExpiryResult> {
    this.#assertOpen();
    const result = noneExpired();
    const bound = deadLetterBound(cutoffs);
    for (const [table, beforeMs] of expiryPlan(cutoffs)) {
      const lists =
        table === 'ticks'
          ? this.#ticks.values()
          : table === 'candles'
            ? this.#candles.values()
            : table === 'indicators'
              ? this.#indicators.values()
              : [this.#alerts];
      for (const list of lists as Iterable<SortedList<{ ts: number }>>) {
        result[table] += list.removeWhere((record) => record.ts < beforeMs);
      }
    }
    if (bound !== undefined) {
      const letters = this.#deadLetters.items();
      // The same cutoff as deadLetterExpirySql: below the keep-th newest seq, and at most maxRows.
      const oldestKept = letters[letters.length - bound.keep]?.seq;
      if (oldestKept !== undefined) {
        const stepEnd = letters[bound.maxRows]?.seq ?? oldestKept;
        const beforeSeq = Math.min(oldestKept, stepEnd);
        result.deadLetters = this.#deadLetters.removeWhere((letter) => letter.seq < beforeSeq);
      }
    }
    return result;
  }

  async close(): Promise<void> {
    this.#open = false;
  }

  #assertOpen(): void {
    if (!this.#open) throw new Error('MemoryStore is not open: call open() first');
  }
}
