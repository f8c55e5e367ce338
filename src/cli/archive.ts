/**
 * `streamlines archive`: the distributed mode's lake writer (docs/warehouse.md, "The distributed
 * mode"): moves final symbol-days from PostgreSQL to the lake, every `lake.intervalMs`, or once.
 */
import path from 'node:path';
import { loadConfig } from '../config/load.ts';
import { PostgresArchive } from '../lake/archive.ts';
import { parseCommandLine } from './args.ts';

export const ARCHIVE_USAGE = `Usage: streamlines archive --config FILE [options]

Distributed: moves every final symbol-day of ticks, candles, indicators and alerts from PostgreSQL
to the Parquet lake (lake.path, default DATA/lake), exactly once; PostgreSQL's retention deletes
them only once they are there. The config must set store.type "postgres". One archive works at a
time: a second one waits for the first to stop (or, with --once, exits).

Options:
  --config FILE     YAML or JSON config (the one the other roles run with)
  --data-dir DIR    where the lake is when the config names no lake.path (default ./data)
  --once            one pass, then exit (for a cron job); exit code 3 when another archive runs
`;

export class ArchiveUsageError extends Error {
  override readonly name = 'ArchiveUsageError';
}

/** Runs `archive …` (argv after `archive`); resolves once stopped (or after the pass, with --once). */
export async function runArchiveCommand(argv: string[]): Promise<void> {
  const { values } = parseCommandLine('streamlines archive', argv, {
    config: { type: 'string' },
    'data-dir': { type: 'string' },
    once: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(ARCHIVE_USAGE);
    return;
  }
  const config = await loadConfig(values.config as string | undefined);
  if (config.store.type !== 'postgres') {
    throw new ArchiveUsageError(
      `"archive" moves days from PostgreSQL: set store.type to "postgres" (the ${config.store.type} store writes its lake itself, in "streamlines run")`,
    );
  }
  if (!config.lake.enabled) throw new ArchiveUsageError('"archive" writes the lake: lake.enabled is false');
  const dataDir = path.resolve((values['data-dir'] as string | undefined) ?? './data');
  const lakePath = path.resolve(config.lake.path ?? path.join(dataDir, 'lake'));
  const archive = new PostgresArchive({
    url: config.store.url,
    schema: config.store.schema,
    lakePath,
    latenessMs: config.lateness,
    rowGroupRows: config.lake.rowGroupRows,
  });
  const abort = new AbortController();
  const stop = (signal: string) => {
    process.stderr.write(`${signal}: stopping after the pass in flight\n`);
    abort.abort();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    if (!(await archive.open({ wait: values.once !== true, signal: abort.signal }))) {
      process.stderr.write('streamlines archive: another archive is running on this store; nothing done\n');
      process.exitCode = 3;
      return;
    }
    if (abort.signal.aborted) return;
    process.stdout.write(`Streamlines archive started (lake: ${lakePath})\n`);
    const describe = (rows: Record<string, number>, files: number) =>
      `${files} parts: ${Object.entries(rows)
        .map(([kind, count]) => `${count} ${kind}`)
        .join(', ')}`;
    if (values.once === true) {
      const result = await archive.pass();
      process.stdout.write(`archive: ${describe(result.rows, result.files)}\n`);
      return;
    }
    await archive.run(config.lake.intervalMs, abort.signal, {
      onPass: (result) => process.stderr.write(`archive: ${describe(result.rows, result.files)}\n`),
      onError: (error) =>
        process.stderr.write(
          `archive: pass failed (retried): ${error instanceof Error ? error.message : String(error)}\n`,
        ),
    });
  } finally {
    await archive.close();
  }
}
