/**
 * `streamlines import` on the real CLI: an NDJSON replay imported (and cut short by kill -9, then run
 * again) gives the same REST answers as streaming it with `run --replay`; Binance's daily dumps, plain
 * and zipped with their .CHECKSUM, land with ms timestamps (the 2025 µs files too) and taker sides; a
 * file whose checksum does not match is refused before anything is loaded; importing again adds nothing.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CLI, drainedDump, dumpApi, runCliOnce, startCli, stopCli } from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';

/** Copies of the FEEDS.md samples (made to Binance's columns, not downloaded). */
const FEEDS = join(import.meta.dirname, '../fixtures/binance');
const ROOT = join(import.meta.dirname, '../..');

async function sqlRows(dataDir: string, sql: string): Promise<Record<string, unknown>[]> {
  const result = await runCliOnce(['sql', sql, '--data-dir', dataDir, '--format', 'json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

describe('streamlines import', () => {
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-import-'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('an NDJSON import, interrupted and run again, answers like streaming the same file', {
    timeout: 300_000,
  }, async () => {
    const replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 60_000, seed: 11 });
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ feeds: [], alerts: { rules: [{ symbol: 'ETHUSDT', above: 200 }] } }),
    );

    const expected = await drainedDump([
      '--replay',
      replay,
      '--data-dir',
      join(dir, 'streamed'),
      '--config',
      config,
    ]);

    const importDir = join(dir, 'imported');
    const args = ['import', replay, '--data-dir', importDir, '--config', config];
    const first = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: 'ignore' });
    await sleep(1_500);
    first.kill('SIGKILL');
    await once(first, 'exit');
    const second = await runCliOnce(args);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^imported: /);
    const again = await runCliOnce(args);
    assert.equal(again.code, 0, again.stderr);

    const server = await startCli(['--data-dir', importDir, '--config', config]);
    const actual = await dumpApi(server.baseUrl);
    await stopCli(server);
    // `drained` speaks of the server's own bounded feeds, and this one runs none.
    (actual.counters as Record<string, unknown>).drained = true;
    assert.deepEqual(actual, expected);
  });

  it('loads Binance dumps, plain and zipped with their checksum, and refuses a bad checksum', {
    timeout: 120_000,
  }, async () => {
    const files = join(dir, 'binance');
    await mkdir(files, { recursive: true });
    const plain = join(files, 'BTCUSDT-aggTrades-2024-12-31.csv');
    await copyFile(join(FEEDS, 'binance-public-aggTrades-2024-12-31.csv'), plain);
    const inner = join(files, 'BTCUSDT-trades-2025-01-01.csv');
    await copyFile(join(FEEDS, 'binance-public-trades-2025-01-01.csv'), inner);
    const zip = join(files, 'BTCUSDT-trades-2025-01-01.zip');
    await promisify(execFile)('python3', [
      '-c',
      'import sys, zipfile; zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED).write(sys.argv[2], arcname=sys.argv[3])',
      zip,
      inner,
      'BTCUSDT-trades-2025-01-01.csv',
    ]);
    const sha = createHash('sha256')
      .update(await readFile(zip))
      .digest('hex');
    await writeFile(`${zip}.CHECKSUM`, `${sha}  BTCUSDT-trades-2025-01-01.zip\n`);

    const dataDir = join(dir, 'binance-data');
    const bad = join(files, 'ETHUSDT-aggTrades-2025-01-01.csv');
    await copyFile(join(FEEDS, 'binance-public-aggTrades-2025-01-01.csv'), bad);
    await writeFile(`${bad}.CHECKSUM`, `${'0'.repeat(64)}  ETHUSDT-aggTrades-2025-01-01.csv\n`);
    const refused = await runCliOnce(['import', plain, bad, '--data-dir', dataDir]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /does not match/);

    const result = await runCliOnce(['import', plain, zip, '--data-dir', dataDir]);
    assert.equal(result.code, 0, result.stderr);
    const csvLines = async (file: string) => (await readFile(file, 'utf8')).trim().split('\n');
    const aggLines = await csvLines(plain);
    const tradeLines = await csvLines(inner);
    const rows = await sqlRows(
      dataDir,
      'SELECT symbol, source, ts, price, size, id, side FROM ticks ORDER BY seq',
    );
    assert.equal(rows.length, aggLines.length + tradeLines.length);
    // First aggTrade: id, price, qty, first id, last id, time (ms), buyer maker → the taker sold.
    const [aggId, aggPrice, aggQty, , , aggTime, aggMaker] = aggLines[0]!.split(',');
    assert.deepEqual(rows[0], {
      symbol: 'BTCUSDT',
      source: 'binance',
      ts: Number(aggTime),
      price: Number(aggPrice),
      size: Number(aggQty),
      id: aggId,
      side: aggMaker === 'True' ? 'sell' : 'buy',
    });
    // First trade of 2025: id, price, qty, quoteQty, time (µs), buyer maker.
    const [tradeId, tradePrice, tradeQty, , tradeTime, tradeMaker] = tradeLines[0]!.split(',');
    assert.deepEqual(rows[aggLines.length], {
      symbol: 'BTCUSDT',
      source: 'binance',
      ts: Math.floor(Number(tradeTime) / 1000),
      price: Number(tradePrice),
      size: Number(tradeQty),
      id: tradeId,
      side: tradeMaker === 'True' ? 'sell' : 'buy',
    });
    assert.ok(
      rows.every((row) => String(row.ts).length === 13),
      'every ts is in ms',
    );

    const again = await runCliOnce(['import', plain, zip, '--data-dir', dataDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await sqlRows(dataDir, 'SELECT count(*) AS n FROM ticks'), [{ n: rows.length }]);
  });
});
