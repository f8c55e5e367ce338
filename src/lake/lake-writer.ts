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
 * Each pass reads one snapshot of the hot store and writes, per day it touches, one part file per
 * kind: the rows of the symbol-days that became final, plus late rows (ticks and alerts stored
 * after their day was written, found by their seq). Parts are written under `_tmp/`, renamed into
 * place, and only then recorded in the `lake` checkpoint of the store (the manifest). A pass cut
 * short by a crash is not recorded: the next start removes its parts (their numbers are at or past
 * the manifest's `nextPart`) and does the same pass again, so every row lands exactly once.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Store } from '../store/store.ts';
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

/** What the lake holds, recorded in the store with each pass. */
export interface LakeManifest {
  version: 1;
  /** The number of the next pass's part files; parts at or past it were never recorded. */
  nextPart: number;
  /** Ticks with seq up to this were in the hot store when the last pass read it (-1: none). */
  tickSeq: number;
  /** Likewise for alerts. */
  alertSeq: number;
  /** Per symbol, the day start before which every row of every kind is in the lake. */
  writtenUntil: Record<string, number>;
  /** Rows written per kind, over every pass. */
  rows: Record<LakeKind, number>;
}

export function emptyManifest(): LakeManifest {
  return {
    version: 1,
    nextPart: 0,
    tickSeq: -1,
    alertSeq: -1,
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
  /** A connection to the DuckDB database holding the hot tables (main.ticks, main.candles...). */
  connection: DuckDBConnection;
  /** The store the manifest is recorded in (the same database, through its writer). */
  store: Store;
  lakePath: string;
  /** The allowed lateness the processor runs with: a symbol's watermark is its largest ts minus it. */
  latenessMs: number;
  rowGroupRows: number;
  /** Checkpoints whose name starts with this hold processor state (one per partition when distributed). */
  processorCheckpointPrefix?: string;
}

/** The rows a kind keeps, in the hot store's column order; `seq` marks kinds with late rows. */
const KIND_SQL: Record<LakeKind, { table: string; lateBySeq: boolean; order: string }> = {
  ticks: { table: 'ticks', lateBySeq: true, order: 'symbol, ts, seq' },
  candles: { table: 'candles', lateBySeq: false, order: 'symbol, "interval", ts' },
  indicators: { table: 'indicators', lateBySeq: false, order: 'symbol, "interval", ts' },
  alerts: { table: 'alerts', lateBySeq: true, order: 'symbol, ts, seq' },
};

/** A symbol's part of a pass: rows in [from, until) are final now; rows below `from` may be late. */
interface SymbolRange {
  symbol: string;
  from: number;
  until: number;
}

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Writes final symbol-days to the lake; call `open()` once, then `pass()` as often as wanted. */
export class LakeWriter {
  readonly #connection: DuckDBConnection;
  readonly #store: Store;
  readonly #lakePath: string;
  readonly #latenessMs: number;
  readonly #rowGroupRows: number;
  readonly #prefix: string;
  #manifest: LakeManifest = emptyManifest();
  #running: Promise<LakePassResult> | undefined;
  /** The first day with rows of symbols not yet in the lake. */
  readonly #firstDays = new Map<string, number>();
  /** Every symbol the processor checkpoints named at the last pass. */
  #symbols: string[] = [];
  readonly #listeners = new Set<(manifest: LakeManifest) => void>();

  constructor(options: LakeWriterOptions) {
    this.#connection = options.connection;
    this.#store = options.store;
    this.#lakePath = path.resolve(options.lakePath);
    this.#latenessMs = options.latenessMs;
    this.#rowGroupRows = options.rowGroupRows;
    this.#prefix = options.processorCheckpointPrefix ?? 'processor';
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
    let min = Number.POSITIVE_INFINITY;
    for (const symbol of this.#symbols) min = Math.min(min, this.#manifest.writtenUntil[symbol] ?? 0);
    return min === Number.POSITIVE_INFINITY ? 0 : min;
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
    const connection = this.#connection;
    const manifest = this.#manifest;
    const part = manifest.nextPart;
    const result: LakePassResult = {
      files: 0,
      rows: { ticks: 0, candles: 0, indicators: 0, alerts: 0 },
      symbolDays: 0,
    };
    const tmpDir = path.join(this.#lakePath, TMP_DIR, partFileName(part).replace('.parquet', ''));
    const written: { tmp: string; final: string }[] = [];
    let tickSeq = manifest.tickSeq;
    let alertSeq = manifest.alertSeq;
    const writtenUntil = { ...manifest.writtenUntil };
    let ranges: SymbolRange[] = [];
    // One snapshot: the processor checkpoints and the rows they describe were committed together.
    await connection.run('BEGIN TRANSACTION');
    try {
      ranges = await this.#finalRanges(manifest);
      tickSeq = await this.#maxSeq('ticks', manifest.tickSeq);
      alertSeq = await this.#maxSeq('alerts', manifest.alertSeq);
      const lateTicks = tickSeq > manifest.tickSeq;
      const lateAlerts = alertSeq > manifest.alertSeq;
      if (ranges.length === 0 && !lateTicks && !lateAlerts) {
        await connection.run('COMMIT');
        return result;
      }
      await connection.run('CREATE OR REPLACE TEMP TABLE lake_ranges (symbol VARCHAR, lo BIGINT, hi BIGINT)');
      const rangeRows = Object.entries(manifest.writtenUntil)
        .filter(([symbol]) => !ranges.some((range) => range.symbol === symbol))
        .map(([symbol, until]) => ({ symbol, from: until, until }))
        .concat(ranges);
      if (rangeRows.length > 0) {
        await connection.run(
          `INSERT INTO lake_ranges VALUES ${rangeRows
            .map((range) => `(${sqlString(range.symbol)}, ${range.from}, ${range.until})`)
            .join(', ')}`,
        );
      }
      for (const range of ranges) {
        for (let day = range.from; day < range.until; day += DAY_MS) result.symbolDays++;
      }
      await mkdir(tmpDir, { recursive: true });
      for (const kind of LAKE_KINDS) {
        const lateAbove =
          kind === 'ticks' ? manifest.tickSeq : kind === 'alerts' ? manifest.alertSeq : undefined;
        const hasLate = kind === 'ticks' ? lateTicks : kind === 'alerts' ? lateAlerts : false;
        const files = await this.#stageKind(kind, ranges, hasLate ? lateAbove : undefined, tickSeq, alertSeq);
        for (const { dayMs, rows } of files) {
          const tmp = path.join(tmpDir, `${kind}-${dayMs}.parquet`);
          await connection.run(
            `COPY (SELECT * EXCLUDE (lake_day) FROM lake_stage WHERE lake_day = ${dayMs}
                   ORDER BY ${KIND_SQL[kind].order})
             TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${this.#rowGroupRows})`,
          );
          written.push({ tmp, final: partPath(this.#lakePath, kind, dayMs, part) });
          result.rows[kind] += rows;
        }
      }
      await connection.run('DROP TABLE IF EXISTS lake_stage');
      await connection.run('COMMIT');
    } catch (error) {
      await connection.run('ROLLBACK').catch(() => undefined);
      await rm(tmpDir, { recursive: true, force: true });
      throw error;
    }
    for (const { tmp, final } of written) {
      await mkdir(path.dirname(final), { recursive: true });
      await rename(tmp, final);
    }
    await rm(tmpDir, { recursive: true, force: true });
    // Fault injection for the crash test (test/e2e/lake.test.ts): die where a crash hurts most.
    if (written.length > 0 && process.env.STREAMLINES_LAKE_FAULT === 'after-rename')
      process.kill(process.pid, 'SIGKILL');
    result.files = written.length;
    // Recorded last: until this commits, the parts above count as never written (see open()).
    for (const range of ranges) writtenUntil[range.symbol] = range.until;
    const next: LakeManifest = {
      version: 1,
      nextPart: written.length > 0 ? part + 1 : part,
      tickSeq,
      alertSeq,
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
   * Per symbol, the days that became final since the last pass: from its `writtenUntil` (or its
   * first day) up to the day its watermark is in, or past its last tick once the input has ended.
   */
  async #finalRanges(manifest: LakeManifest): Promise<SymbolRange[]> {
    const rows = (
      await this.#connection.runAndReadAll(
        `SELECT state FROM main.checkpoints WHERE starts_with(name, ${sqlString(this.#prefix)})`,
      )
    ).getRows();
    const ranges: SymbolRange[] = [];
    const symbols: string[] = [];
    for (const [stateJson] of rows) {
      const state = parseProcessorState(JSON.parse(stateJson as string));
      if (state === undefined) continue;
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
        const from = manifest.writtenUntil[symbol];
        if (from === undefined) {
          ranges.push({ symbol, from: 0, until });
        } else if (until > from) {
          ranges.push({ symbol, from, until });
        }
      }
    }
    this.#symbols = symbols;
    // A symbol new to the lake starts at its first day with rows, so writtenUntil stays meaningful.
    // Looked up once per symbol: until its first day is final every pass would scan the table again.
    // (A late tick older than that first day is found by its seq once the day is written.)
    const unknown = ranges.filter((range) => range.from === 0 && !this.#firstDays.has(range.symbol));
    if (unknown.length > 0) {
      const firstDays = (
        await this.#connection.runAndReadAll(
          `SELECT symbol, min(ts) FROM main.ticks WHERE symbol IN (${unknown.map((r) => sqlString(r.symbol)).join(', ')})
           GROUP BY symbol`,
        )
      ).getRows();
      for (const [symbol, ts] of firstDays) this.#firstDays.set(symbol as string, dayStartMs(Number(ts)));
    }
    for (const range of ranges) {
      if (range.from === 0) range.from = this.#firstDays.get(range.symbol) ?? range.until;
    }
    return ranges.filter((range) => range.until > range.from);
  }

  async #maxSeq(table: 'ticks' | 'alerts', previous: number): Promise<number> {
    const rows = (await this.#connection.runAndReadAll(`SELECT max(seq) FROM main.${table}`)).getRows();
    const max = rows[0]?.[0];
    return max === null || max === undefined ? previous : Math.max(previous, Number(max));
  }

  /**
   * Stages a kind's rows of this pass in `lake_stage` with their day, and returns the days and
   * their row counts: rows of the final ranges, plus rows with seq above `lateAbove` (and at or
   * below the snapshot's max) whose symbol-day was already written.
   */
  async #stageKind(
    kind: LakeKind,
    ranges: readonly SymbolRange[],
    lateAbove: number | undefined,
    tickSeq: number,
    alertSeq: number,
  ): Promise<{ dayMs: number; rows: number }[]> {
    const { table } = KIND_SQL[kind];
    const selects: string[] = [];
    if (ranges.length > 0) {
      const lo = Math.min(...ranges.map((range) => range.from));
      const hi = Math.max(...ranges.map((range) => range.until));
      // The outer bounds let DuckDB skip row groups by their ts statistics before the join.
      selects.push(
        `SELECT t.* FROM main.${table} t JOIN lake_ranges r ON t.symbol = r.symbol
         WHERE t.ts >= ${lo} AND t.ts < ${hi} AND t.ts >= r.lo AND t.ts < r.hi`,
      );
    }
    if (lateAbove !== undefined) {
      const upTo = kind === 'ticks' ? tickSeq : alertSeq;
      selects.push(
        `SELECT t.* FROM main.${table} t JOIN lake_ranges r ON t.symbol = r.symbol
         WHERE t.seq > ${lateAbove} AND t.seq <= ${upTo} AND t.ts < r.lo`,
      );
    }
    if (selects.length === 0) return [];
    await this.#connection.run(
      `CREATE OR REPLACE TEMP TABLE lake_stage AS
       SELECT *, ts - ts % ${DAY_MS} AS lake_day FROM (${selects.join(' UNION ALL ')})`,
    );
    const days = (
      await this.#connection.runAndReadAll(
        'SELECT lake_day, count(*) FROM lake_stage GROUP BY lake_day ORDER BY lake_day',
      )
    ).getRows();
    return days.map(([day, count]) => ({ dayMs: Number(day), rows: Number(count) }));
  }

  #notify(): void {
    for (const listener of this.#listeners) listener(this.#manifest);
  }
}

/** The parts of a processor checkpoint the lake needs (the process stage's ProcessorSnapshot). */
interface ProcessorFinality {
  ended: boolean;
  clockFloorMs: number | null;
  symbols: { symbol: string; maxTs: number | null }[];
}

function parseProcessorState(state: unknown): ProcessorFinality | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  const candidate = state as Partial<ProcessorFinality>;
  if (!Array.isArray(candidate.symbols) || typeof candidate.ended !== 'boolean') return undefined;
  return {
    ended: candidate.ended,
    clockFloorMs: typeof candidate.clockFloorMs === 'number' ? candidate.clockFloorMs : null,
    symbols: candidate.symbols.filter(
      (entry): entry is { symbol: string; maxTs: number | null } => typeof entry?.symbol === 'string',
    ),
  };
}

/** The manifest a checkpoint holds, or an empty one. */
export function parseManifest(state: unknown): LakeManifest {
  if (typeof state !== 'object' || state === null || (state as { version?: unknown }).version !== 1)
    return emptyManifest();
  const manifest = state as LakeManifest;
  return { ...emptyManifest(), ...manifest, rows: { ...emptyManifest().rows, ...manifest.rows } };
}
