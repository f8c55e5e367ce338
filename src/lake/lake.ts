/**
 * The lake beside an embedded (DuckDB) hot store: the reading decorator, the writer, and the loop
 * that runs the writer every `intervalMs`. The pipeline opens it after the store and closes it
 * before the store.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { sleepUnlessAborted } from '../core/abortable-sleep.ts';
import type { DuckDbStore } from '../store/duckdb/duckdb-store.ts';
import type { LakeConfig } from './lake-config.ts';
import { DuckDbLakeSource } from './lake-source.ts';
import { LakeStore } from './lake-store.ts';
import { emptyManifest, type LakeManifest, type LakePassResult, LakeWriter } from './lake-writer.ts';
import {
  checkReadOnlyQuery,
  createWarehouseViews,
  type QueryResult,
  type RunOptions,
  runQuery,
  type Warehouse,
} from './warehouse.ts';

export interface EmbeddedLakeOptions {
  config: LakeConfig;
  lakePath: string;
  latenessMs: number;
  /** Told about each pass that wrote something (for metrics and logs). */
  onPass?: (result: LakePassResult, manifest: LakeManifest) => void;
  /** Told about a pass that failed; the loop tries again at the next interval. */
  onError?: (error: unknown) => void;
  /** See LakeWriterOptions.afterRename (tests only). */
  afterRename?: () => void | Promise<void>;
}

export class EmbeddedLake implements Warehouse {
  /** The store to hand to readers: the hot store and the lake as one. */
  readonly store: LakeStore;
  readonly #hot: DuckDbStore;
  readonly #options: EmbeddedLakeOptions;
  #writer: LakeWriter | undefined;
  readonly #connections: DuckDBConnection[] = [];

  constructor(hot: DuckDbStore, options: EmbeddedLakeOptions) {
    this.#hot = hot;
    this.#options = options;
    this.store = new LakeStore(hot, {
      lakePath: options.lakePath,
      manifest: () => this.#writer?.manifest() ?? emptyManifest(),
      afterOpen: () => this.#open(),
      beforeClose: async () => this.#close(),
    });
  }

  /** Once the hot store is open (store.open() calls it): loads the manifest, cleans up a cut-short pass. */
  async #open(): Promise<void> {
    const writerConnection = await this.#hot.connect();
    const readerConnection = await this.#hot.connect();
    this.#connections.push(writerConnection, readerConnection);
    const writer = new LakeWriter({
      source: new DuckDbLakeSource(writerConnection),
      store: this.#hot,
      lakePath: this.#options.lakePath,
      latenessMs: this.#options.latenessMs,
      rowGroupRows: this.#options.config.rowGroupRows,
      afterRename: this.#options.afterRename,
    });
    await writer.open();
    this.#writer = writer;
    writer.onPass(() => void this.store.refresh());
    await this.store.refresh();
    this.store.attach(readerConnection);
  }

  /** The writer (for tests and tools that run a pass by hand). */
  writer(): LakeWriter {
    return this.#requireWriter();
  }

  /** The ts before which the lake holds every symbol-day: what retention may delete below. */
  holdBackBeforeMs(): number {
    return this.#writer?.holdBackBeforeMs() ?? 0;
  }

  /**
   * One read-only SELECT over the warehouse views, on a connection of its own (so a timeout
   * interrupts only it) with views made for it (so it sees the lake as it is now).
   */
  async query(sql: string, options: RunOptions): Promise<QueryResult> {
    const connection = await this.#hot.connect();
    try {
      await createWarehouseViews(connection, { lakePath: this.#options.lakePath, hot: true });
      await checkReadOnlyQuery(connection, sql);
      return await runQuery(connection, sql, options);
    } finally {
      connection.closeSync();
    }
  }

  /** Runs a pass every `intervalMs` until `signal` aborts, then waits for the pass in flight. */
  async run(signal: AbortSignal): Promise<void> {
    const writer = this.#requireWriter();
    while (!signal.aborted) {
      try {
        const result = await writer.pass();
        if (result.files > 0) this.#options.onPass?.(result, writer.manifest());
      } catch (error) {
        this.#options.onError?.(error);
      }
      await sleepUnlessAborted(this.#options.config.intervalMs, signal);
    }
  }

  /** Releases the lake's connections (store.close() calls it before closing the hot store). */
  #close(): void {
    for (const connection of this.#connections.splice(0)) connection.closeSync();
  }

  #requireWriter(): LakeWriter {
    if (this.#writer === undefined) throw new Error('EmbeddedLake.open() must be called first');
    return this.#writer;
  }
}
