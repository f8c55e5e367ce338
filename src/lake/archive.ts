/**
 * `streamlines archive` (docs/warehouse.md, "The distributed mode"): moves final symbol-days from
 * the PostgreSQL store to the lake with the embedded lake's writer, layout and guarantees. The
 * manifest is the store's `lake` checkpoint, in PostgreSQL beside the processors' checkpoints, so
 * `serve` and the processors' retention read what the lake holds from the database they share.
 * One archive works at a time: a session advisory lock in PostgreSQL, released when its
 * connection ends (a killed archive's lock goes with it), keeps a second one waiting.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { sleepUnlessAborted } from '../core/abortable-sleep.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import type { Store } from '../store/store.ts';
import {
  holdBackBeforeMs,
  LAKE_CHECKPOINT,
  type LakePassResult,
  LakeWriter,
  parseManifest,
} from './lake-writer.ts';
import { PostgresLakeSource } from './postgres-source.ts';

export interface PostgresArchiveOptions {
  url: string;
  schema: string;
  lakePath: string;
  latenessMs: number;
  rowGroupRows: number;
  /** See LakeWriterOptions.afterRename (tests only). */
  afterRename?: () => void | Promise<void>;
}

/** The archive role: `open()`, then `pass()` or `run()`, then `close()`. */
export class PostgresArchive {
  readonly #options: PostgresArchiveOptions;
  readonly #store: PostgresStore;
  #pool: pg.Pool | undefined;
  #lockClient: pg.PoolClient | undefined;
  #duckdb: DuckDBInstance | undefined;
  #writer: LakeWriter | undefined;

  constructor(options: PostgresArchiveOptions) {
    this.#options = options;
    // Its own store never runs the wall-clock retention job: deleting is the processors' retention's.
    this.#store = new PostgresStore({ url: options.url, schema: options.schema, retentionEveryMs: 0 });
  }

  /** The store the manifest is recorded in. */
  get store(): Store {
    return this.#store;
  }

  /**
   * Connects, then takes the archive lock: at once, or (`wait`) once the archive holding it stops.
   * Resolves false when `wait` is off and another archive holds it.
   */
  async open(options: { wait: boolean; signal?: AbortSignal }): Promise<boolean> {
    await this.#store.open();
    const schema = this.#options.schema;
    this.#pool = new pg.Pool({
      connectionString: this.#options.url,
      max: 3,
      application_name: 'streamlines-archive',
      onConnect: async (client) => {
        client.on('error', () => undefined);
        await client.query(`SET search_path TO "${schema.replaceAll('"', '""')}", public`);
      },
    });
    this.#pool.on('error', () => undefined);
    this.#lockClient = await this.#pool.connect();
    const key = `streamlines:archive:${schema}`;
    for (;;) {
      const { rows } = await this.#lockClient.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
        [key],
      );
      if (rows[0]?.locked) break;
      if (!options.wait || options.signal?.aborted) return false;
      await sleepUnlessAborted(1_000, options.signal ?? new AbortController().signal);
    }
    this.#duckdb = await DuckDBInstance.create(':memory:');
    this.#writer = new LakeWriter({
      source: new PostgresLakeSource({ pool: this.#pool, connection: await this.#duckdb.connect() }),
      store: this.#store,
      lakePath: this.#options.lakePath,
      latenessMs: this.#options.latenessMs,
      rowGroupRows: this.#options.rowGroupRows,
      afterRename: this.#options.afterRename,
    });
    await this.#writer.open();
    return true;
  }

  /** One pass: every symbol-day that became final, and late rows, moved to the lake. */
  pass(): Promise<LakePassResult> {
    if (this.#writer === undefined) throw new Error('PostgresArchive.open() must succeed first');
    return this.#writer.pass();
  }

  /** Passes every `intervalMs` until `signal` aborts; a failed pass is reported and tried again. */
  async run(
    intervalMs: number,
    signal: AbortSignal,
    report: { onPass?: (result: LakePassResult) => void; onError?: (error: unknown) => void },
  ): Promise<void> {
    while (!signal.aborted) {
      try {
        const result = await this.pass();
        if (result.files > 0) report.onPass?.(result);
      } catch (error) {
        report.onError?.(error);
      }
      await sleepUnlessAborted(intervalMs, signal);
    }
  }

  async close(): Promise<void> {
    this.#duckdb?.closeSync();
    this.#lockClient?.release();
    await this.#pool?.end();
    await this.#store.close();
  }
}

/**
 * What the processors' retention may delete below in the distributed mode: the ts before which
 * the lake holds every symbol-day of every symbol the named processor checkpoints know (0 until
 * the archive has written each of them). Read from the store, where the archive records its passes.
 */
export async function archivedBeforeMs(
  store: Pick<Store, 'checkpoint'>,
  processorCheckpoints: readonly string[],
): Promise<number> {
  const manifest = parseManifest((await store.checkpoint(LAKE_CHECKPOINT))?.state);
  const symbols: string[] = [];
  for (const name of processorCheckpoints) {
    const state = (await store.checkpoint(name))?.state as { symbols?: { symbol?: unknown }[] } | undefined;
    for (const entry of state?.symbols ?? [])
      if (typeof entry.symbol === 'string') symbols.push(entry.symbol);
  }
  return holdBackBeforeMs(manifest, symbols);
}
