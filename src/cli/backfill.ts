/**
 * `streamlines backfill --feed binance --symbol BTCUSDT --from ISO|ms --to ISO|ms [--data-dir] [--config]
 * [--rest-url URL]`: loads a provider's trade history through the normal pipeline (a bounded `backfill` feed →
 * ingest → log → process → store), then stops once everything is in the store. Rate limits are the feed's
 * business (Binance weight header, Retry-After on 429).
 */
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../config/load.ts';
import type { BackfillFeed, BackfillFeedConfig } from '../feeds/backfill/backfill-feed.ts';
import { EmbeddedPipeline } from '../pipeline/embedded-pipeline.ts';
import { parseCommandLine } from './args.ts';
import { ProgressLine } from './progress.ts';

export const BACKFILL_USAGE = `Usage: streamlines backfill --feed binance|coinbase|kraken --symbol SYMBOL --from TIME --to TIME
       [--data-dir DIR] [--config FILE] [--rest-url URL]

Loads the trades of [--from, --to] from the provider's REST history through the normal pipeline
into the data dir's store, shows progress on a terminal, and exits once they are stored. Re-running
the same range loads nothing twice.

TIME is ISO 8601 (2026-11-20T15:00:00Z) or ms since the epoch. SYMBOL as the provider writes it
(BTCUSDT, BTC-USD, BTC/USD); --symbol may be repeated. --rest-url points at a testnet or a proxy.
Stop a running server on the same data dir first (one process per data dir).
`;

/** A mistake in the command line: main prints it with the usage. */
export class BackfillUsageError extends Error {
  override readonly name = 'BackfillUsageError';
}

const PROVIDERS = ['binance', 'coinbase', 'kraken'] as const;

/** Runs the backfill; resolves with the number of trades loaded. */
export async function runBackfill(argv: string[]): Promise<number> {
  const { values } = parseCommandLine('streamlines backfill', argv, {
    feed: { type: 'string' },
    symbol: { type: 'string', multiple: true },
    from: { type: 'string' },
    to: { type: 'string' },
    'data-dir': { type: 'string' },
    config: { type: 'string' },
    'rest-url': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(BACKFILL_USAGE);
    return 0;
  }
  const provider = values.feed as BackfillFeedConfig['provider'] | undefined;
  if (!provider || !PROVIDERS.includes(provider)) {
    throw new BackfillUsageError(`--feed must be one of ${PROVIDERS.join(', ')}\n\n${BACKFILL_USAGE}`);
  }
  if (!values.symbol || values.symbol.length === 0)
    throw new BackfillUsageError(`--symbol is required\n\n${BACKFILL_USAGE}`);
  const from = parseTime('--from', values.from);
  const to = parseTime('--to', values.to);
  if (to < from) throw new BackfillUsageError('--to is before --from');
  const config = await loadConfig(values.config);
  const feed: BackfillFeedConfig = {
    type: 'backfill',
    // The range is in the name: re-running the same range is a no-op, a new range loads.
    name: `backfill:${provider}:${values.symbol.join(',')}:${from}-${to}`,
    provider,
    symbols: values.symbol,
    from,
    to,
  };
  if (values['rest-url']) feed.restUrl = values['rest-url'];
  config.feeds = [feed];
  let failure: unknown;
  const pipeline = new EmbeddedPipeline({
    config,
    dataDir: resolve(values['data-dir'] ?? './data'),
    onFeedError: (_feed, error) => {
      failure = error;
    },
  });
  await pipeline.start();
  const backfill = pipeline.feeds[0] as BackfillFeed;
  const progress = new ProgressLine({
    read: () => {
      const { done, total } = backfill.progress();
      return { done, total, text: `${backfill.loaded().toLocaleString()} trades` };
    },
  });
  let stats = pipeline.stats();
  try {
    while (failure === undefined && !stats.drained) {
      await sleep(50);
      stats = pipeline.stats();
    }
  } finally {
    progress.finish();
    await pipeline.stop();
  }
  if (failure !== undefined) throw failure;
  process.stderr.write(
    `backfill: ${backfill.loaded()} trades fetched, ${stats.accepted} accepted, ${stats.duplicates} duplicates\n`,
  );
  return backfill.loaded();
}

function parseTime(flag: string, value: string | undefined): number {
  if (value === undefined) throw new BackfillUsageError(`${flag} is required\n\n${BACKFILL_USAGE}`);
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms) || ms <= 0)
    throw new BackfillUsageError(`${flag}: not an ISO time or ms: "${value}"`);
  return ms;
}
