/**
 * The lake writer (docs/design.md, Retention and history): moves every final symbol-day of ticks, candles, indicators and
 * alerts from the hot store into Parquet, once.
 *
 * A symbol's UTC day is final when the symbol's watermark has passed the day's end: the committed
 * processor checkpoint holds each symbol's largest ts and the processor-wide floor (raised by the
 * wall clock for quiet symbols of live feeds, and to +Infinity when a bounded input ends), so a
 * quiet symbol never holds another back. The checkpoint is committed with the rows it produced, so
 * reading both in one snapshot gives rows and finality that agree.
 *
 * Parquet format version 2 (delta-encoded integers, byte-stream-split doubles): 7 % smaller than
 * version 1 and a quarter less CPU to scan (docs/benchmarks.md, "Lake and warehouse").
 *
 * Each pass reads one snapshot of the hot store and writes, per day it touches, one part file per
 * kind: the rows of the symbol-days that became final, plus late rows (ticks and alerts stored
 * after their day was written, found by their symbol's seq horizon). Parts are written under `_tmp/`, renamed into
 * place, and only then recorded in the `lake` checkpoint of the store (the manifest). A pass cut
 * short by a crash is not recorded: the next start removes its parts (their numbers are at or past
 * the manifest's `nextPart`) and does the same pass again, so every row lands exactly once.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Store } from '../store/store.ts';
import { type LakeSource, lakeSelectList, sqlString } from './lake-source.ts';
import {
  DAY_MS,
  dayStartMs,
  LAKE_KINDS,
  type LakeKind,
  partFileName,
  partPath,
  removeUnrecordedParts,
  TMP_DIR,
} from './layout.ts';

/** The name of the store checkpoint holding the lake's manifest. */
export const LAKE_CHECKPOINT = 'lake';

/** Per symbol, the largest seq of its ticks and of its alerts in the lake (-1: none). */
export interface SeqHorizon {
  ticks: number;
  alerts: number;
}

/** What the lake holds, recorded in the store with each pass. */
export interface LakeManifest {
  version: 2;
  /** The number of the next pass's part files; parts at or past it were never recorded. */
  nextPart: number;
  /**
   * The processors' count of late ticks when the last pass read them (null: unknown). Rows for a
   * day already written are always late ticks and their alerts, so while it stands still no pass
   * needs to look for them.
   */
  lateCount: number | null;
  /**
   * Per symbol, the seq of its newest tick and alert in the lake. A symbol's rows are committed in
   * seq order (its partition's order), so its hot rows below `writtenUntil` with a larger seq are
   * exactly the ones the lake lacks: its late rows.
   */
  horizons: Record<string, SeqHorizon>;
  /** Per symbol, the day start before which every row of every kind is in the lake. */
  writtenUntil: Record<string, number>;
  /** Rows written per kind, over every pass. */
  rows: Record<LakeKind, number>;
}

export function emptyManifest(): LakeManifest {
  return {
    version: 2,
    nextPart: 0,
    lateCount: null,
    horizons: {},
    writtenUntil: {},
    rows: { ticks: 0, candles: 0, indicators: 0, alerts: 0 },
  };
}

/** What one pass did. */
export interface LakePassResult {
  /** Parts written (0 when nothing was final or late). */
  files: number;
  rows: Record<LakeKind, number>;
  /** Symbol-days that became final in this pass. */
  symbolDays: number;
}

export interface LakeWriterOptions {
  /** The hot store's rows and checkpoints, and the DuckDB connection the writer works in. */
  source: LakeSource;
  /** The store the manifest is recorded in (the hot store, through its writer). */
  store: Store;
  lakePath: string;
  /** The allowed lateness the processor runs with: a symbol's watermark is its largest ts minus it. */
  latenessMs: number;
  rowGroupRows: number;
  /** Checkpoints whose name starts with this hold processor state (one per partition when distributed). */
  processorCheckpointPrefix?: string;
  /**
   * Runs after a pass renamed its parts into place and before it records them: the moment a crash
   * hurts most. Tests make it fail to check that the next start cleans up; nothing else sets it.
   */
  afterRename?: () => void | Promise<void>;
}

/** The order rows of a kind are sorted in, within a day's part. */
const KIND_ORDER: Record<LakeKind, string> = {
  ticks: 'symbol, ts, seq',
  candles: 'symbol, "interval", ts',
  indicators: 'symbol, "interval", ts',
  alerts: 'symbol, ts, seq',
};

/** A symbol's part of a pass: rows in [from, until) became final; rows below `writtenUntil` with a seq past `horizon` are late. */
interface SymbolRange {
  symbol: string;
  from: number;
  until: number;
}

/** Writes final symbol-days to the lake; call `open()` once, then `pass()` as often as wanted. */
export class LakeWriter {
  readonly #source: LakeSource;
  readonly #store: Store;
  readonly #lakePath: string;
  readonly #latenessMs: number;
  readonly #rowGroupRows: number;
  readonly #prefix: string;
  readonly #afterRename: (() => void | Promise<void>) | undefined;
  #manifest: LakeManifest = emptyManifest();
  #running: Promise<LakePassResult> | undefined;
  /** Every symbol the processor checkpoints named at the last pass. */
  #symbols: string[] = [];
  readonly #listeners = new Set<(manifest: LakeManifest) => void>();

  constructor(options: LakeWriterOptions) {
    this.#source = options.source;
    this.#store = options.store;
    this.#lakePath = path.resolve(options.lakePath);
    this.#latenessMs = options.latenessMs;
    this.#rowGroupRows = options.rowGroupRows;
    this.#prefix = options.processorCheckpointPrefix ?? 'processor';
    this.#afterRename = options.afterRename;
  }

  /** Loads the manifest and removes the parts of a pass that was cut short. */
  async open(): Promise<void> {
    const checkpoint = await this.#store.checkpoint(LAKE_CHECKPOINT);
    this.#manifest = parseManifest(checkpoint?.state);
    await mkdir(this.#lakePath, { recursive: true });
    await removeUnrecordedParts(this.#lakePath, this.#manifest.nextPart);
    this.#notify();
  }

  /** The manifest of the last recorded pass. */
  manifest(): LakeManifest {
    return this.#manifest;
  }

  /**
   * The ts before which every symbol-day of every kind is in the lake: what retention may delete
   * from the hot store. A symbol not yet in the lake holds it at 0.
   */
  holdBackBeforeMs(): number {
    return holdBackBeforeMs(this.#manifest, this.#symbols);
  }

  /** Called after every recorded pass with the new manifest. */
  onPass(listener: (manifest: LakeManifest) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** One pass; concurrent calls share the running one. */
  pass(): Promise<LakePassResult> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(): Promise<LakePassResult> {
    const connection = this.#source.connection;
    const manifest = this.#manifest;
    const part = manifest.nextPart;
    const result: LakePassResult = {
      files: 0,
      rows: { ticks: 0, candles: 0, indicators: 0, alerts: 0 },
      symbolDays: 0,
    };
    const tmpDir = path.join(this.#lakePath, TMP_DIR, partFileName(part).replace('.parquet', ''));
    const written: { tmp: string; final: string }[] = [];
    const writtenUntil = { ...manifest.writtenUntil };
    const horizons = { ...manifest.horizons };
    let ranges: SymbolRange[] = [];
    let lateCount: number | null = null;
    try {
      // One snapshot: the processor checkpoints and the rows they describe were committed together.
      const idle = await this.#source.snapshot(async (snapshot) => {
        const finality = this.#finality(await snapshot.processorStates(this.#prefix), manifest);
        ranges = finality.ranges;
        lateCount = finality.lateCount;
        const lookForLate = lateCount === null || lateCount !== manifest.lateCount;
        if (ranges.length === 0 && !lookForLate) return true;
        const rangeRows = this.#rangeRows(ranges, manifest);
        if (rangeRows.length === 0) return true;
        await mkdir(tmpDir, { recursive: true });
        for (const kind of LAKE_KINDS) {
          const select = stageSelect(kind, rangeRows, ranges, lookForLate);
          if (select === undefined) continue;
          await snapshot.stage(kind, select, tmpDir);
          if (kind === 'ticks') result.symbolDays = await countNewSymbolDays(connection, manifest);
          if (kind === 'ticks' || kind === 'alerts') await raiseHorizons(connection, kind, horizons);
          const days = (
            await connection.runAndReadAll(
              'SELECT lake_day, count(*) FROM lake_stage GROUP BY lake_day ORDER BY lake_day',
            )
          ).getRows();
          for (const [day, count] of days) {
            const dayMs = Number(day);
            const tmp = path.join(tmpDir, `${kind}-${dayMs}.parquet`);
            await connection.run(
              `COPY (SELECT * EXCLUDE (lake_day) FROM lake_stage WHERE lake_day = ${dayMs}
                     ORDER BY ${KIND_ORDER[kind]})
               TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION V2,
                    ROW_GROUP_SIZE ${this.#rowGroupRows})`,
            );
            written.push({ tmp, final: partPath(this.#lakePath, kind, dayMs, part) });
            result.rows[kind] += Number(count);
          }
        }
        await connection.run('DROP TABLE IF EXISTS lake_stage');
        return false;
      });
      if (idle && lateCount === manifest.lateCount) return result;
      for (const { tmp, final } of written) {
        await mkdir(path.dirname(final), { recursive: true });
        await rename(tmp, final);
      }
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
    }
    if (written.length > 0) await this.#afterRename?.();
    result.files = written.length;
    // Recorded last: until this commits, the parts above count as never written (see open()).
    for (const range of ranges) writtenUntil[range.symbol] = range.until;
    const next: LakeManifest = {
      version: 2,
      nextPart: written.length > 0 ? part + 1 : part,
      lateCount,
      horizons,
      writtenUntil,
      rows: {
        ticks: manifest.rows.ticks + result.rows.ticks,
        candles: manifest.rows.candles + result.rows.candles,
        indicators: manifest.rows.indicators + result.rows.indicators,
        alerts: manifest.rows.alerts + result.rows.alerts,
      },
    };
    await this.#store.write({
      ticks: [],
      candles: [],
      indicators: [],
      alerts: [],
      deadLetters: [],
      checkpoint: { name: LAKE_CHECKPOINT, offsets: {}, state: next },
    });
    this.#manifest = next;
    this.#notify();
    return result;
  }

  /**
   * Per symbol, the days that became final since the last pass: from its `writtenUntil` (or from
   * the beginning, for a symbol new to the lake) up to the day its watermark is in, or past its
   * last tick once the input has ended. Also the processors' count of late ticks.
   */
  #finality(states: unknown[], manifest: LakeManifest): { ranges: SymbolRange[]; lateCount: number | null } {
    const ranges: SymbolRange[] = [];
    const symbols: string[] = [];
    let lateCount: number | null = 0;
    for (const raw of states) {
      const state = parseProcessorState(raw);
      if (state === undefined) continue;
      lateCount = state.late === null || lateCount === null ? null : lateCount + state.late;
      for (const { symbol, maxTs } of state.symbols) {
        symbols.push(symbol);
        if (maxTs === null) continue;
        const watermark = state.ended
          ? Number.POSITIVE_INFINITY
          : Math.max(maxTs - this.#latenessMs, state.clockFloorMs ?? Number.NEGATIVE_INFINITY);
        // A day is final once the watermark reaches its end; the day after the last tick has no rows.
        const until = Math.min(
          dayStartMs(Math.min(watermark, Number.MAX_SAFE_INTEGER)),
          dayStartMs(maxTs) + DAY_MS,
        );
        const from = manifest.writtenUntil[symbol] ?? Number.NEGATIVE_INFINITY;
        if (until > from) ranges.push({ symbol, from, until });
      }
    }
    this.#symbols = symbols;
    // A symbol's first pass takes every row below `until`, however old: no scan for its first day.
    return { ranges: ranges.filter((range) => range.until > 0), lateCount };
  }

  /** One row per symbol the pass reads: its final range, where its written days end, its horizons. */
  #rangeRows(ranges: readonly SymbolRange[], manifest: LakeManifest): string[] {
    const bySymbol = new Map(ranges.map((range) => [range.symbol, range]));
    const symbols = new Set([...Object.keys(manifest.writtenUntil), ...bySymbol.keys()]);
    return [...symbols].map((symbol) => {
      const range = bySymbol.get(symbol);
      const written = manifest.writtenUntil[symbol] ?? 0;
      const lo = range === undefined ? written : Number.isFinite(range.from) ? range.from : 0;
      const hi = range === undefined ? written : range.until;
      const horizon = manifest.horizons[symbol] ?? { ticks: -1, alerts: -1 };
      return `(${sqlString(symbol)}, ${lo}, ${hi}, ${written}, ${horizon.ticks}, ${horizon.alerts})`;
    });
  }

  #notify(): void {
    for (const listener of this.#listeners) listener(this.#manifest);
  }
}

/**
 * The SELECT staging a kind's rows of a pass: rows of the final ranges, plus (when late rows may
 * have come) rows below a symbol's written days with a seq past its horizon. Candles and
 * indicators are made for final windows only, so they have no late rows.
 */
function stageSelect(
  kind: LakeKind,
  rangeRows: readonly string[],
  ranges: readonly SymbolRange[],
  lookForLate: boolean,
): string | undefined {
  const ranged = `(VALUES ${rangeRows.join(', ')}) AS r(symbol, lo, hi, written, tick_seq, alert_seq)`;
  const columns = lakeSelectList(kind);
  const selects: string[] = [];
  if (ranges.length > 0) {
    const lo = Math.min(...ranges.map((range) => (Number.isFinite(range.from) ? range.from : 0)));
    const hi = Math.max(...ranges.map((range) => range.until));
    // The outer bounds let the engine skip row groups (or partitions) by ts before the join.
    selects.push(
      `SELECT ${columns} FROM ${kind} t JOIN ${ranged} ON t.symbol = r.symbol
       WHERE t.ts >= ${lo} AND t.ts < ${hi} AND t.ts >= r.lo AND t.ts < r.hi`,
    );
  }
  if (lookForLate && (kind === 'ticks' || kind === 'alerts')) {
    const horizon = kind === 'ticks' ? 'r.tick_seq' : 'r.alert_seq';
    selects.push(
      `SELECT ${columns} FROM ${kind} t JOIN ${ranged} ON t.symbol = r.symbol
       WHERE t.ts < r.written AND t.seq > ${horizon}${kind === 'ticks' ? ' AND t.late' : ''}`,
    );
  }
  return selects.length === 0 ? undefined : selects.join(' UNION ALL ');
}

/** Symbol-days among the staged ticks that were not in the lake before (late rows excluded). */
async function countNewSymbolDays(connection: DuckDBConnection, manifest: LakeManifest): Promise<number> {
  const rows = (
    await connection.runAndReadAll('SELECT symbol, lake_day FROM lake_stage GROUP BY ALL')
  ).getRows();
  return rows.filter(([symbol, day]) => Number(day) >= (manifest.writtenUntil[symbol as string] ?? 0)).length;
}

/** Raises each symbol's horizon of `kind` to the largest staged seq. */
async function raiseHorizons(
  connection: DuckDBConnection,
  kind: 'ticks' | 'alerts',
  horizons: Record<string, SeqHorizon>,
): Promise<void> {
  const rows = (
    await connection.runAndReadAll('SELECT symbol, max(seq) FROM lake_stage GROUP BY symbol')
  ).getRows();
  for (const [symbol, seq] of rows) {
    const previous = horizons[symbol as string] ?? { ticks: -1, alerts: -1 };
    horizons[symbol as string] = { ...previous, [kind]: Math.max(previous[kind], Number(seq)) };
  }
}

/** The ts before which the lake holds every symbol-day of `symbols` (0 while one has none). */
export function holdBackBeforeMs(manifest: LakeManifest, symbols: readonly string[]): number {
  let min = Number.POSITIVE_INFINITY;
  for (const symbol of symbols) min = Math.min(min, manifest.writtenUntil[symbol] ?? 0);
  return min === Number.POSITIVE_INFINITY ? 0 : min;
}

/** The parts of a processor checkpoint the lake needs (the process stage's ProcessorSnapshot). */
interface ProcessorFinality {
  ended: boolean;
  clockFloorMs: number | null;
  /** Its count of late ticks (null when the state has no counters). */
  late: number | null;
  symbols: { symbol: string; maxTs: number | null }[];
}

function parseProcessorState(state: unknown): ProcessorFinality | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  const candidate = state as Partial<ProcessorFinality> & { counters?: { late?: unknown } };
  if (!Array.isArray(candidate.symbols) || typeof candidate.ended !== 'boolean') return undefined;
  const late = candidate.counters?.late;
  return {
    ended: candidate.ended,
    clockFloorMs: typeof candidate.clockFloorMs === 'number' ? candidate.clockFloorMs : null,
    late: typeof late === 'number' ? late : null,
    symbols: candidate.symbols.filter(
      (entry): entry is { symbol: string; maxTs: number | null } => typeof entry?.symbol === 'string',
    ),
  };
}

/**
 * The manifest a checkpoint holds, or an empty one. A version 1 manifest (the embedded lake's
 * first) kept one seq horizon for all symbols: valid for each, since one processor committed all.
 */
export function parseManifest(state: unknown): LakeManifest {
  if (typeof state !== 'object' || state === null) return emptyManifest();
  const version = (state as { version?: unknown }).version;
  if (version === 1) {
    const old = state as { tickSeq: number; alertSeq: number; writtenUntil: Record<string, number> };
    const horizons: Record<string, SeqHorizon> = {};
    for (const symbol of Object.keys(old.writtenUntil ?? {}))
      horizons[symbol] = { ticks: old.tickSeq, alerts: old.alertSeq };
    return { ...parseManifest({ ...state, version: 2 }), lateCount: null, horizons };
  }
  if (version !== 2) return emptyManifest();
  const manifest = state as LakeManifest;
  return { ...emptyManifest(), ...manifest, rows: { ...emptyManifest().rows, ...manifest.rows } };
}
