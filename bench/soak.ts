/**
 * The soak benchmark (issue #11): does Streamlines run unattended? It replays a long market
 * through the real CLI (`streamlines run --replay FILE --speed max`) with `retention.ticks: 1d`
 * and a 256 MiB log cap, samples the process's RSS and the data dir's size (the lake aside) every
 * second, and reports whether memory stays flat and disk stays bounded.
 *
 *   npm run soak [-- --ticks N] [-- --symbols N] [-- --days N] [-- --live-seconds N] [-- --no-lake] [-- --json]
 *
 * Defaults: 20 000 000 ticks over 100 symbols spanning 4 days of event time, then one minute of
 * `streamlines run` on a synthetic market at 1 000 ticks/s over 100 symbols (`--live-seconds 0`
 * skips it). `--json`: progress on stderr, the LAST line of stdout is one JSON object.
 * Run it alone, under `nice`: at ~50 000 ticks/s 20 M ticks take about 7 minutes on 2 cores.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { lstat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConfig } from '../src/config/load.ts';
import { SeededRandom } from '../src/core/random.ts';
import { getJson, replayArgs, startCli, stopCli } from '../test/support/cli.ts';
import { duBytes, type MemoryBreakdown, machineInfo, memoryBreakdown, rssMb } from './util.ts';

const DAY_MS = 86_400_000;
const MIB = 1024 * 1024;
const LOG_CAP_BYTES = 256 * MIB;
const MARKET_START_MS = Date.UTC(2026, 0, 5);

interface Args {
  ticks: number;
  symbols: number;
  days: number;
  liveSeconds: number;
  json: boolean;
  /** `--no-lake`: run without the batch lane, to tell its share of memory and disk from the rest. */
  lake: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { ticks: 20_000_000, symbols: 100, days: 4, liveSeconds: 60, json: false, lake: true };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const number = Number(argv[++i]);
      if (!Number.isFinite(number) || number < 0) throw new Error(`${flag} needs a number`);
      return number;
    };
    if (flag === '--ticks') args.ticks = Math.floor(value());
    else if (flag === '--symbols') args.symbols = Math.max(1, Math.floor(value()));
    else if (flag === '--days') args.days = value();
    else if (flag === '--live-seconds') args.liveSeconds = Math.floor(value());
    else if (flag === '--json') args.json = true;
    else if (flag === '--no-lake') args.lake = false;
    else throw new Error(`unknown flag ${flag}`);
  }
  return args;
}

/** One sample a second: wall time, RSS, data dir bytes (lake aside), log bytes, processed ticks. */
interface Sample {
  atMs: number;
  rssMb: number;
  memory: MemoryBreakdown;
  diskBytes: number;
  logBytes: number;
  processed: number;
  logEnd: number;
  /**
   * How far store retention trails its cutoff, hours of event time: the newest tick processed
   * (the market is evenly spread) minus 1 day minus where retention has deleted up to.
   */
  retentionLagH: number | undefined;
}

/**
 * A market of `ticks` trades over `symbols` symbols, evenly spread over `days` of event time, in
 * time order, with increasing integer ids per symbol (the cheap case of dedup, as real exchanges).
 */
async function writeMarket(path: string, args: Args): Promise<void> {
  const random = new SeededRandom(11);
  const out = createWriteStream(path);
  const prices = Array.from({ length: args.symbols }, (_, i) => 50 + i);
  const ids = new Array<number>(args.symbols).fill(0);
  const names = Array.from({ length: args.symbols }, (_, i) => `SYM${String(i).padStart(3, '0')}`);
  const start = MARKET_START_MS;
  const stepMs = (args.days * DAY_MS) / Math.max(1, args.ticks);
  let buffer = '';
  for (let n = 0; n < args.ticks; n++) {
    const index = Math.floor(random.next() * args.symbols);
    const price = prices[index]! * (1 + 0.0005 * random.normal());
    prices[index] = price;
    const ts = start + Math.floor(n * stepMs);
    buffer += `{"symbol":"${names[index]}","ts":${ts},"price":${price.toFixed(4)},"size":${(random.next() * 3).toFixed(5)},"id":${++ids[index]!}}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
}

/** The sample closest to `share` of the work done (by processed ticks). */
function atShare(samples: readonly Sample[], total: number, share: number): Sample {
  return samples.reduce((best, sample) =>
    Math.abs(sample.processed - share * total) < Math.abs(best.processed - share * total) ? sample : best,
  );
}

/** Rows of the ticks table, and its bytes estimated from the storage blocks it occupies. */
async function measureStore(file: string): Promise<{
  ticks: number;
  ticksBytes: number;
  fileBytes: number;
  rows: Record<string, number>;
  totalBlocks: number;
  freeBlocks: number;
}> {
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const connection = await instance.connect();
  try {
    const count = Number((await connection.runAndReadAll('SELECT count(*) FROM tick_rows')).getRows()[0]![0]);
    const blockSize = Number(
      (await connection.runAndReadAll('SELECT block_size FROM pragma_database_size()')).getRows()[0]![0],
    );
    const blocks = Number(
      (
        await connection.runAndReadAll(
          "SELECT count(DISTINCT block_id) FROM pragma_storage_info('tick_rows') WHERE block_id >= 0",
        )
      ).getRows()[0]![0],
    );
    const fileBytes = (await lstat(file)).size;
    // What else the file holds, and how much of it is free for reuse (blocks freed by deletes).
    const rows: Record<string, number> = {};
    for (const table of ['candles', 'indicators', 'alerts', 'dead_letters', 'checkpoints']) {
      rows[table] = Number(
        (await connection.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRows()[0]![0],
      );
    }
    const [totalBlocks, freeBlocks] = (
      await connection.runAndReadAll('SELECT total_blocks, free_blocks FROM pragma_database_size()')
    ).getRows()[0]!;
    return {
      ticks: count,
      ticksBytes: blocks * blockSize,
      fileBytes,
      rows,
      totalBlocks: Number(totalBlocks),
      freeBlocks: Number(freeBlocks),
    };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** One minute (or `seconds`) of `streamlines run` on a synthetic market: RSS at the end and the peak. */
async function liveRun(dir: string, seconds: number, symbols: number, log: (line: string) => void) {
  const config = join(dir, 'live.json');
  const names = Array.from({ length: symbols }, (_, i) => `SYM${String(i).padStart(3, '0')}`);
  await writeFile(
    config,
    JSON.stringify({ feeds: [{ type: 'synthetic', ticksPerSecond: 1_000, symbols: names }] }),
  );
  const cli = await startCli(['--data-dir', join(dir, 'live-data'), '--config', config]);
  const pid = cli.child.pid!;
  let peak = 0;
  let last = 0;
  try {
    for (let second = 0; second < seconds; second++) {
      await sleep(1_000);
      last = await rssMb(pid);
      peak = Math.max(peak, last);
      if (second % 10 === 9) log(`live ${second + 1} s: RSS ${last.toFixed(0)} MB`);
    }
    const stats = (await getJson<{ accepted: number }>(cli.baseUrl, '/api/v1/stats')).body;
    return { rssEndMb: last, rssPeakMb: peak, accepted: stats.accepted };
  } finally {
    await stopCli(cli);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string) => (args.json ? process.stderr : process.stdout).write(`${line}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'streamlines-soak-'));
  try {
    const replay = join(dir, 'market.ndjson');
    log(`writing ${args.ticks} ticks over ${args.symbols} symbols and ${args.days} days...`);
    await writeMarket(replay, args);

    // The log cap is the other half of #11 (log.retentionBytes): used when this build knows it.
    const wanted = { retention: { ticks: '1d' }, log: { type: 'embedded', retentionBytes: LOG_CAP_BYTES } };
    let logCapApplied = true;
    try {
      parseConfig(wanted);
    } catch {
      logCapApplied = false;
      log('this build has no log.retentionBytes: the log is not capped (disk numbers include the whole log)');
    }
    const config = join(dir, 'soak.json');
    await writeFile(
      config,
      JSON.stringify({
        ...(logCapApplied ? wanted : { retention: wanted.retention }),
        ...(args.lake ? {} : { lake: { enabled: false } }),
      }),
    );
    const dataDir = join(dir, 'data');
    const cli = await startCli(replayArgs(replay, dataDir, config));
    const pid = cli.child.pid!;
    const samples: Sample[] = [];
    const started = performance.now();
    let drainedAt: number | undefined;
    try {
      for (;;) {
        await sleep(1_000);
        const stats = (
          await getJson<{
            drained: boolean;
            processedOffset: number;
            logEndOffset: number;
            retention?: { ticksDeletedBeforeMs?: number };
          }>(cli.baseUrl, '/api/v1/stats')
        ).body;
        const memory = await memoryBreakdown(pid, cli.baseUrl);
        const sample: Sample = {
          atMs: performance.now() - started,
          rssMb: memory.rssMb,
          memory,
          diskBytes: await duBytes(dataDir, ['lake']),
          logBytes: await duBytes(join(dataDir, 'log')),
          processed: stats.processedOffset,
          logEnd: stats.logEndOffset,
          retentionLagH: retentionLagHours(
            stats.processedOffset,
            stats.retention?.ticksDeletedBeforeMs,
            args,
          ),
        };
        samples.push(sample);
        if (samples.length % 15 === 0) {
          log(
            `${(sample.atMs / 1000).toFixed(0)} s: ${sample.processed} ticks, RSS ${sample.rssMb.toFixed(0)} MB, ` +
              `disk ${(sample.diskBytes / MIB).toFixed(0)} MB (log ${(sample.logBytes / MIB).toFixed(0)} MB); ` +
              `heap ${memory.heapUsedMb}/${memory.heapTotalMb} MB, native ${memory.nativeMb} MB, files ${memory.fileMb} MB; ` +
              `retention ${sample.retentionLagH ?? '-'} h behind`,
          );
        }
        if (stats.drained && drainedAt === undefined) drainedAt = sample.atMs;
        // After the replay, retention catches up in the background: give it 10 s.
        if (drainedAt !== undefined && sample.atMs - drainedAt >= 10_000) break;
      }
    } finally {
      await stopCli(cli);
    }
    const total = samples.at(-1)!.processed;
    const during = samples.filter((sample) => drainedAt === undefined || sample.atMs <= drainedAt);
    const at25 = atShare(during, total, 0.25);
    const at40 = atShare(during, total, 0.4);
    const lastQuarter = during.filter((sample) => sample.processed >= 0.75 * total);
    // Bytes per log entry where the log still held everything appended (below its cap).
    const uncapped = samples.filter((sample) => sample.logBytes < 0.75 * LOG_CAP_BYTES && sample.logEnd > 0);
    const logSample = (uncapped.length > 0 ? uncapped : samples).at(-1)!;
    const store = await measureStore(join(dataDir, 'streamlines.duckdb'));
    const result: Record<string, unknown> = {
      ticks: total,
      symbols: args.symbols,
      days: args.days,
      logCapApplied,
      lake: args.lake,
      rssAt25PctMb: round(at25.rssMb),
      rssMaxLastQuarterMb: round(Math.max(...lastQuarter.map((sample) => sample.rssMb))),
      diskAt40PctMb: round(at40.diskBytes / MIB),
      diskEndMb: round(samples.at(-1)!.diskBytes / MIB),
      bytesPerTickLog: round(logSample.logBytes / logSample.logEnd),
      bytesPerTickStore: round(store.ticksBytes / Math.max(1, store.ticks)),
      storeFileMb: round(store.fileBytes / MIB),
      storeTicks: store.ticks,
      storeRows: store.rows,
      storeBlocks: { total: store.totalBlocks, free: store.freeBlocks },
      logEndMb: round(samples.at(-1)!.logBytes / MIB),
      ticksPerSec: Math.round(total / ((drainedAt ?? samples.at(-1)!.atMs) / 1000)),
      rssTimelineColumns: [
        's',
        'ticks',
        'rssMb',
        'diskMb',
        'heapUsedMb',
        'heapTotalMb',
        'nativeMb',
        'retentionLagH',
      ],
      rssTimeline: samples
        .filter((_, i) => i % Math.max(1, Math.floor(samples.length / 20)) === 0)
        .map((sample) => [
          Math.round(sample.atMs / 1000),
          sample.processed,
          round(sample.rssMb),
          round(sample.diskBytes / MIB),
          sample.memory.heapUsedMb,
          sample.memory.heapTotalMb,
          sample.memory.nativeMb,
          sample.retentionLagH ?? null,
        ]),
    };
    result.rssFlat = (result.rssMaxLastQuarterMb as number) <= 1.25 * (result.rssAt25PctMb as number) + 64;
    result.diskBounded = (result.diskEndMb as number) <= 1.5 * (result.diskAt40PctMb as number) + 100;
    await rm(replay, { force: true });
    if (args.liveSeconds > 0) {
      log(`live: ${args.liveSeconds} s of streamlines run at 1 000 ticks/s over ${args.symbols} symbols...`);
      const live = await liveRun(dir, args.liveSeconds, args.symbols, log);
      result.liveSeconds = args.liveSeconds;
      result.liveRssEndMb = round(live.rssEndMb);
      result.liveRssPeakMb = round(live.rssPeakMb);
      result.liveAccepted = live.accepted;
    }
    result.machine = machineInfo();
    if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else for (const [key, value] of Object.entries(result)) log(`${key}: ${JSON.stringify(value)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** See Sample.retentionLagH; undefined until retention has deleted something. */
function retentionLagHours(
  processed: number,
  deletedBeforeMs: number | undefined,
  args: Args,
): number | undefined {
  if (deletedBeforeMs === undefined) return undefined;
  const newest = MARKET_START_MS + processed * ((args.days * DAY_MS) / Math.max(1, args.ticks));
  return round((newest - DAY_MS - deletedBeforeMs) / 3_600_000);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

await main();
