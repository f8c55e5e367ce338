/**
 * Duplicate detection with memory that does not grow with the number of ticks (docs/design.md, Duplicates).
 *
 * Per (source, symbol): ids that are canonical decimal integers below 2^53 are remembered exactly as a
 * sorted set of disjoint ranges (a feed numbering its trades 1, 2, 3... costs one range); any other id is
 * remembered with its tick's ts for `horizonMs` of event time behind the largest accepted ts of its
 * (source, symbol), and a tick with such an id older than that is `too_old`.
 *
 * A checkpoint holds per (source, symbol) its ranges and newest ts, the non-integer ids accepted before
 * the previous checkpoint that are still inside the horizon, and `horizonFrom`: the log offsets (per
 * partition) from which the newer ones can be read back. So a checkpoint costs O(long-lived ids), not
 * O(all ids), and the log a restart needs is at most about two checkpoint intervals long (nothing at all
 * for a feed whose ids are integers).
 */

/** The verdict on one valid tick: accept it, drop it as a duplicate, or reject it as too old to check. */
export type DedupVerdict = 'accept' | 'duplicate' | 'too_old';

/** One (source, symbol) in a snapshot. `ranges` is flat `[start0, end0, start1, end1, ...]`, inclusive. */
export interface DedupKeySnapshot {
  source: string;
  symbol: string;
  /** null before the first tick (JSON has no -Infinity). */
  maxTs: number | null;
  ranges: number[];
  /** Non-integer ids from before the previous checkpoint, still inside the horizon: flat `[id0, ts0, ...]`. */
  ids: (string | number)[];
}

/** The dedup state as ingest checkpoints it in its producer state. */
export interface DedupSnapshot {
  version: 2;
  keys: DedupKeySnapshot[];
  /** Per partition, the log offset from which the ids inside the horizon can be read back; null: none to read. */
  horizonFrom: number[] | null;
}

const CANONICAL_ID = /^(?:0|[1-9]\d{0,15})$/;
const MAX_EXACT_ID = 2 ** 53;

/** The id as an integer when it is a canonical decimal below 2^53 (`"7"`; not `"007"`, `"-1"`, `"1e3"`), else -1. */
export function exactIdOf(id: string): number {
  if (!CANONICAL_ID.test(id)) return -1;
  const value = Number(id);
  return value < MAX_EXACT_ID ? value : -1;
}

/** A sorted set of disjoint, non-adjacent inclusive integer ranges; adjacent ones are merged on insert. */
export class IdRanges {
  /** Flat `[start0, end0, start1, end1, ...]`, ascending. */
  #flat: number[];

  constructor(flat: number[] = []) {
    this.#flat = flat.slice();
  }

  get rangeCount(): number {
    return this.#flat.length / 2;
  }

  has(id: number): boolean {
    const i = this.#lastStartAtOrBelow(id);
    return i >= 0 && id <= this.#flat[2 * i + 1]!;
  }

  /** Adds `id`; returns false when it was already there. */
  add(id: number): boolean {
    const flat = this.#flat;
    const count = flat.length / 2;
    // The common case first: the next id of an increasing feed extends the last range.
    if (count > 0 && id === flat[flat.length - 1]! + 1) {
      flat[flat.length - 1] = id;
      return true;
    }
    const i = this.#lastStartAtOrBelow(id);
    if (i >= 0 && id <= flat[2 * i + 1]!) return false;
    const joinsLeft = i >= 0 && flat[2 * i + 1]! + 1 === id;
    const joinsRight = i + 1 < count && flat[2 * (i + 1)]! - 1 === id;
    if (joinsLeft && joinsRight) {
      flat[2 * i + 1] = flat[2 * (i + 1) + 1]!;
      flat.splice(2 * (i + 1), 2);
    } else if (joinsLeft) {
      flat[2 * i + 1] = id;
    } else if (joinsRight) {
      flat[2 * (i + 1)] = id;
    } else {
      flat.splice(2 * (i + 1), 0, id, id);
    }
    return true;
  }

  /** A copy of the flat ranges. */
  toFlat(): number[] {
    return this.#flat.slice();
  }

  /** Index of the last range starting at or below `id`, or -1. */
  #lastStartAtOrBelow(id: number): number {
    const flat = this.#flat;
    let low = 0;
    let high = flat.length / 2 - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (flat[2 * mid]! <= id) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }
}

class KeyState {
  readonly source: string;
  readonly symbol: string;
  maxTs = Number.NEGATIVE_INFINITY;
  readonly ranges: IdRanges;
  /** Non-integer ids and the ts of the tick that brought them; entries behind the horizon are dead. */
  readonly recent = new Map<string, number>();
  #sweepAt = 1_024;
  /** The last snapshot of this key, reused while nothing changed. */
  snapshot: DedupKeySnapshot | undefined;

  constructor(source: string, symbol: string, ranges: IdRanges) {
    this.source = source;
    this.symbol = symbol;
    this.ranges = ranges;
  }

  isLive(ts: number, horizonMs: number): boolean {
    return ts >= this.maxTs - horizonMs;
  }

  /** Forgets ids behind the horizon once the map has doubled since the last sweep (amortised O(1)). */
  sweep(horizonMs: number): void {
    if (this.recent.size < this.#sweepAt) return;
    const oldest = this.maxTs - horizonMs;
    for (const [id, ts] of this.recent) if (ts < oldest) this.recent.delete(id);
    this.#sweepAt = Math.max(1_024, 2 * this.recent.size);
  }
}

/** Accepted non-integer ids of one append: where it starts in the log, and which (key, ts) it brought. */
interface HorizonGroup {
  startOffsets: readonly number[];
  keys: KeyState[];
  ids: string[];
  ts: number[];
  /** Entries before this are known to be behind their key's horizon. */
  cursor: number;
}

/** The dedup state of one ingest (see the file comment). */
export class Dedup {
  readonly #horizonMs: number;
  readonly #keys = new Map<string, KeyState>();
  /** Appends that brought non-integer ids, oldest first; the first still holding a live id pins `horizonFrom`. */
  #groups: HorizonGroup[] = [];
  #groupsHead = 0;
  #current: HorizonGroup | undefined;
  #currentStart: readonly number[] = [];
  /** Groups before this index came before the last checkpoint: the next one writes their ids out. */
  #mark = 0;
  /** Ids written out by checkpoints (and restored from one), kept in every checkpoint while live. */
  #written: HorizonGroup = { startOffsets: [], keys: [], ids: [], ts: [], cursor: 0 };

  constructor(horizonMs: number, snapshot?: DedupSnapshot) {
    this.#horizonMs = horizonMs;
    if (snapshot) this.#restore(snapshot);
  }

  get horizonMs(): number {
    return this.#horizonMs;
  }

  /**
   * Marks the start of the records of one append: `startOffsets` are the log's end offsets now, at or
   * before where its records will land. Non-integer ids accepted until the next call belong to it.
   */
  beginAppend(startOffsets: readonly number[]): void {
    this.#current = undefined;
    this.#currentStart = startOffsets;
  }

  /**
   * Decides on a valid tick and, when it is accepted, remembers it. `id` is the normalised id string or
   * undefined (ticks without an id are never duplicates, but their ts still moves the horizon).
   */
  check(source: string, symbol: string, ts: number, id: string | undefined): DedupVerdict {
    const key = this.#keyState(source, symbol);
    if (id !== undefined) {
      const exact = exactIdOf(id);
      if (exact >= 0) {
        if (!key.ranges.add(exact)) return 'duplicate';
        key.snapshot = undefined;
      } else {
        if (!key.isLive(ts, this.#horizonMs)) return 'too_old';
        const seenTs = key.recent.get(id);
        if (seenTs !== undefined && key.isLive(seenTs, this.#horizonMs)) return 'duplicate';
        key.recent.set(id, ts);
        this.#remember(key, id, ts);
      }
    }
    if (ts > key.maxTs) {
      key.maxTs = ts;
      key.snapshot = undefined;
      key.sweep(this.#horizonMs);
    }
    return 'accept';
  }

  /**
   * After a restart: an accepted tick read back from the log at or after `horizonFrom`, in log order.
   * Its id is remembered when it is not an integer and still inside the restored horizon.
   */
  replayAccepted(source: string, symbol: string, ts: number, id: string | undefined): void {
    if (id === undefined || exactIdOf(id) >= 0) return;
    const key = this.#keyState(source, symbol);
    if (!key.isLive(ts, this.#horizonMs)) return;
    key.recent.set(id, ts);
    this.#remember(key, id, ts);
  }

  /** Per partition, the log offsets a restart reads from to rebuild the horizon ids; undefined: nothing to read. */
  horizonFrom(): readonly number[] | undefined {
    while (this.#groupsHead < this.#groups.length) {
      const group = this.#groups[this.#groupsHead]!;
      while (
        group.cursor < group.ts.length &&
        !group.keys[group.cursor]!.isLive(group.ts[group.cursor]!, this.#horizonMs)
      ) {
        group.cursor++;
      }
      if (group.cursor < group.ts.length) return group.startOffsets;
      this.#groups[this.#groupsHead] = undefined as unknown as HorizonGroup;
      this.#groupsHead++;
      if (this.#current === group) this.#current = undefined;
    }
    this.#groups = [];
    this.#groupsHead = 0;
    this.#mark = 0;
    return undefined;
  }

  /**
   * The state to checkpoint: ids of appends before the previous checkpoint are written out (all of
   * them with `writeAll`, when the log behind should become deletable), newer ones are left to be read
   * back from `horizonFrom`. Keys that did not change reuse their snapshot.
   */
  checkpoint(writeAll = false): DedupSnapshot {
    if (writeAll) this.#mark = this.#groups.length;
    const written = this.#written;
    const kept: HorizonGroup = { startOffsets: [], keys: [], ids: [], ts: [], cursor: 0 };
    const keep = (group: HorizonGroup) => {
      for (let i = group.cursor; i < group.ts.length; i++) {
        if (!group.keys[i]!.isLive(group.ts[i]!, this.#horizonMs)) continue;
        kept.keys.push(group.keys[i]!);
        kept.ids.push(group.ids[i]!);
        kept.ts.push(group.ts[i]!);
      }
    };
    keep(written);
    for (; this.#groupsHead < this.#mark; this.#groupsHead++) {
      keep(this.#groups[this.#groupsHead]!);
      if (this.#current === this.#groups[this.#groupsHead]) this.#current = undefined;
      this.#groups[this.#groupsHead] = undefined as unknown as HorizonGroup;
    }
    this.#written = kept;
    this.#mark = this.#groups.length;
    const idsByKey = new Map<KeyState, (string | number)[]>();
    for (let i = 0; i < kept.ts.length; i++) {
      const key = kept.keys[i]!;
      const ids = idsByKey.get(key) ?? [];
      if (ids.length === 0) idsByKey.set(key, ids);
      ids.push(kept.ids[i]!, kept.ts[i]!);
    }
    const keys: DedupKeySnapshot[] = [];
    for (const key of this.#keys.values()) {
      key.snapshot ??= {
        source: key.source,
        symbol: key.symbol,
        maxTs: Number.isFinite(key.maxTs) ? key.maxTs : null,
        ranges: key.ranges.toFlat(),
        ids: [],
      };
      const ids = idsByKey.get(key);
      keys.push(ids === undefined ? key.snapshot : { ...key.snapshot, ids });
    }
    const from = this.horizonFrom();
    return { version: 2, keys, horizonFrom: from === undefined ? null : [...from] };
  }

  /** What the state holds, for memory accounting and tests. */
  sizes(): { keys: number; ranges: number; ids: number } {
    let ranges = 0;
    let ids = 0;
    for (const key of this.#keys.values()) {
      ranges += key.ranges.rangeCount;
      ids += key.recent.size;
    }
    return { keys: this.#keys.size, ranges, ids };
  }

  /** Files a live non-integer id under the current append. */
  #remember(key: KeyState, id: string, ts: number): void {
    if (this.#current === undefined) {
      this.#current = { startOffsets: this.#currentStart, keys: [], ids: [], ts: [], cursor: 0 };
      this.#groups.push(this.#current);
    }
    this.#current.keys.push(key);
    this.#current.ids.push(id);
    this.#current.ts.push(ts);
  }

  #keyState(source: string, symbol: string): KeyState {
    const name = `${source}\u0000${symbol}`;
    let key = this.#keys.get(name);
    if (key === undefined) {
      key = new KeyState(source, symbol, new IdRanges());
      this.#keys.set(name, key);
    }
    return key;
  }

  #restore(snapshot: DedupSnapshot): void {
    for (const saved of snapshot.keys) {
      const key = new KeyState(saved.source, saved.symbol, new IdRanges(saved.ranges));
      key.maxTs = typeof saved.maxTs === 'number' ? saved.maxTs : Number.NEGATIVE_INFINITY;
      this.#keys.set(`${saved.source}\u0000${saved.symbol}`, key);
      const ids = Array.isArray(saved.ids) ? saved.ids : [];
      for (let i = 0; i + 1 < ids.length; i += 2) {
        const id = String(ids[i]);
        const ts = Number(ids[i + 1]);
        key.recent.set(id, ts);
        this.#written.keys.push(key);
        this.#written.ids.push(id);
        this.#written.ts.push(ts);
      }
    }
    // The ids replayAccepted reads back belong to one group, starting where the reading starts.
    if (snapshot.horizonFrom !== null) this.#currentStart = snapshot.horizonFrom;
  }
}

/** True when `value` looks like a snapshot this version wrote. */
export function isDedupSnapshot(value: unknown): value is DedupSnapshot {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { version?: unknown }).version === 2 &&
    Array.isArray((value as { keys?: unknown }).keys)
  );
}
