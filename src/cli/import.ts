/**
 * `streamlines import FILE…`: loads history files through the whole pipeline on the data dir, then
 * writes their final days to the lake (src/lake/history-import.ts says what it reads and how).
 */

import path from 'node:path';
import { loadConfig } from '../config/load.ts';
import {
  describeFile,
  HistoryImportFeed,
  IMPORT_FORMATS,
  type ImportFile,
  type ImportFormat,
  verifyChecksum,
} from '../lake/history-import.ts';
import { EmbeddedPipeline } from '../pipeline/embedded-pipeline.ts';
import { parseCommandLine } from './args.ts';
import { ProgressLine } from './progress.ts';

export const IMPORT_USAGE = `Usage: streamlines import FILE… [options]

  Loads history through the same validation, dedup and processing as live data, into the store
  and the lake of the data dir. Give the files in time order (a shell glob of Binance's daily
  files is). Stop the server on the data dir first.

Options:
  --format F        ndjson, binance-trades or binance-aggtrades (default: from each file's name,
                    e.g. BTCUSDT-aggTrades-2025-01-01.zip; *.ndjson is ndjson)
  --symbol SYM      the symbol of Binance files whose name does not say it
  --data-dir DIR    the data dir (default ./data)
  --config FILE     the config (lateness, alert rules, store, lake)

A .zip is read as the CSV inside; FILE.CHECKSUM beside a file is verified first. Safe to stop and
run again: it resumes where it stopped, and a file imported twice adds nothing.
`;

export class ImportUsageError extends Error {
  override readonly name = 'ImportUsageError';
}

export async function runImportCommand(argv: string[]): Promise<void> {
  const { positionals, values } = parseCommandLine(
    'streamlines import',
    argv,
    {
      format: { type: 'string' },
      symbol: { type: 'string' },
      'data-dir': { type: 'string' },
      config: { type: 'string' },
    },
    true,
  );
  if (values.help || positionals.length === 0) {
    process.stdout.write(IMPORT_USAGE);
    return;
  }
  if (values.format !== undefined && !(IMPORT_FORMATS as readonly string[]).includes(values.format)) {
    throw new ImportUsageError(
      `--format must be one of ${IMPORT_FORMATS.join(', ')}, got "${values.format}"`,
    );
  }
  const files: ImportFile[] = positionals.map((file) => {
    const described = describeFile(file);
    const format = (values.format as ImportFormat | undefined) ?? described?.format;
    if (format === undefined) {
      throw new ImportUsageError(`${file}: cannot tell its format from its name; give --format`);
    }
    const symbol = values.symbol?.trim().toUpperCase() ?? described?.symbol;
    if (format !== 'ndjson' && symbol === undefined) {
      throw new ImportUsageError(`${file}: its name does not say the symbol; give --symbol`);
    }
    return symbol === undefined
      ? { path: path.resolve(file), format }
      : { path: path.resolve(file), format, symbol };
  });
  // Every checksum before anything is loaded: a bad download should not leave half an import.
  for (const file of files) await verifyChecksum(file.path);

  const config = await loadConfig(values.config);
  const dataDir = path.resolve(values['data-dir'] ?? './data');
  const feed = new HistoryImportFeed(files);
  const pipeline = new EmbeddedPipeline({
    config,
    dataDir,
    feeds: [feed],
    onFeedError: (_feed, error) => {
      process.stderr.write(`import failed: ${error instanceof Error ? error.message : String(error)}\n`);
    },
  });
  await pipeline.start();
  const startedAt = Date.now();
  const progress = new ProgressLine({
    read: () => {
      const stats = pipeline.stats();
      const { done, total } = feed.progress();
      const seconds = Math.max(0.001, (Date.now() - startedAt) / 1000);
      return {
        done,
        total,
        text: `${stats.accepted.toLocaleString()} accepted, ${Math.round(stats.processedOffset / seconds).toLocaleString()} entries/s`,
      };
    },
  });
  let interrupted = false;
  const stop = () => {
    interrupted = true;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let stats = pipeline.stats();
  try {
    while (!interrupted) {
      const stats = pipeline.stats();
      const state = stats.feeds.find((status) => status.name === feed.name)?.state;
      if (state === 'failed') break;
      if (stats.drained) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // The input has ended, so every day is final: one pass puts them all in the lake.
    if (!interrupted && pipeline.stats().drained) await pipeline.lake?.writer().pass();
    stats = pipeline.stats();
  } finally {
    progress.finish();
    await pipeline.stop();
  }
  const status = stats.feeds.find((entry) => entry.name === feed.name);
  if (status?.state === 'failed') throw new ImportUsageError(status.error ?? 'import failed');
  process.stdout.write(
    `${interrupted ? 'interrupted (run the same command again to resume)' : 'imported'}: ` +
      `received ${stats.received}, accepted ${stats.accepted}, rejected ${stats.rejected}, ` +
      `duplicates ${stats.duplicates}, late ${stats.late}\n`,
  );
}
