import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateLines } from '../../test/support/generate-ticks.ts';
import { parseConfig } from '../config/load.ts';
import { ControlError } from '../core/pipeline-view.ts';
import { EmbeddedPipeline } from './embedded-pipeline.ts';

function memoryPipeline(): EmbeddedPipeline {
  const config = parseConfig({
    symbols: ['AAA'],
    feeds: [{ type: 'synthetic', ticksPerSecond: 400 }],
    log: { type: 'memory' },
    store: { type: 'memory' },
  });
  return new EmbeddedPipeline({ config, dataDir: '/nonexistent' });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(25);
  assert.ok(condition(), `timed out waiting for ${what}`);
}

describe('EmbeddedPipeline control', () => {
  it('stops and restarts a feed, and adds and removes symbols while it runs', async () => {
    const pipeline = memoryPipeline();
    await pipeline.start();
    try {
      await until(() => pipeline.stats().accepted > 0, 'first ticks');
      await pipeline.stopFeed('synthetic');
      assert.equal(pipeline.stats().feeds[0]?.state, 'stopped');
      await sleep(100);
      const stoppedAt = pipeline.stats().logEndOffset;
      await sleep(200);
      assert.equal(pipeline.stats().logEndOffset, stoppedAt, 'a stopped feed appends nothing');

      await pipeline.addSymbol('synthetic', ' bbb ');
      assert.deepEqual(pipeline.feedSymbols('synthetic'), ['AAA', 'BBB']);
      await pipeline.startFeed('synthetic');
      await until(() => pipeline.formingCandles('BBB', '1m').length > 0, 'ticks of the added symbol');
      await pipeline.removeSymbol('synthetic', 'AAA');
      assert.deepEqual(pipeline.feedSymbols('synthetic'), ['BBB']);
    } finally {
      await pipeline.stop();
    }
  });

  it('refuses what cannot be done with a stable code', async () => {
    const pipeline = memoryPipeline();
    await pipeline.start();
    try {
      const code = async (action: Promise<unknown>) => {
        try {
          await action;
        } catch (error) {
          return error instanceof ControlError ? error.code : String(error);
        }
        return 'ok';
      };
      assert.equal(await code(pipeline.stopFeed('nope')), 'unknown_feed');
      assert.equal(await code(pipeline.startFeed('synthetic')), 'conflict');
      assert.equal(await code(pipeline.addSymbol('synthetic', 'bad symbol!')), 'invalid_symbol');
      assert.equal(await code(pipeline.removeSymbol('synthetic', 'ZZZ')), 'conflict');
    } finally {
      await pipeline.stop();
    }
  });
});

/** Runs a replay file through a memory pipeline and returns everything the store and stats say. */
async function replayResults(file: string, symbols: readonly string[]): Promise<unknown> {
  const config = parseConfig({
    feeds: [{ type: 'replay', path: file, speed: 'max' }],
    log: { type: 'memory' },
    store: { type: 'memory' },
    lake: { enabled: false },
  });
  const pipeline = new EmbeddedPipeline({ config, dataDir: '/nonexistent' });
  await pipeline.start();
  try {
    await until(() => pipeline.stats().drained, 'the replay to drain');
    const { accepted, rejected, duplicates, late, candlesClosed } = pipeline.stats();
    const perSymbol: Record<string, unknown> = {};
    for (const symbol of symbols) {
      perSymbol[symbol] = {
        ticks: await pipeline.store.ticks(symbol, { limit: 10_000 }),
        candles: await pipeline.store.candles(symbol, '1m', { limit: 10_000 }),
      };
    }
    return { accepted, rejected, duplicates, late, candlesClosed, perSymbol };
  } finally {
    await pipeline.stop();
  }
}

describe('EmbeddedPipeline replay input', () => {
  it('gives the same results whatever the field order, spacing and line endings of the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'streamlines-replay-format-'));
    try {
      const symbols = ['AAA', 'BBB', 'CCC'];
      const lines = [...generateLines({ count: 3_000, seed: 3, symbols, hostile: false })];
      const canonical = path.join(dir, 'canonical.ndjson');
      await writeFile(canonical, `${lines.join('\n')}\n`);
      // The same records as another producer might write them: keys reversed, spaces around every
      // token, CRLF line ends, blank lines between, numbers in exponent form where that is exact.
      const reformatted = path.join(dir, 'reformatted.ndjson');
      const rewritten = lines.map((line) => {
        const record = JSON.parse(line) as Record<string, unknown>;
        const reversed = Object.fromEntries(Object.entries(record).reverse());
        const text = JSON.stringify(reversed, null, 1).replaceAll('\n', ' ');
        return text.replace(/"ts": (\d+)(\d{3})\b/, (_, head: string, tail: string) =>
          tail === '000' ? `"ts": ${head}e3` : `"ts": ${head}${tail}`,
        );
      });
      assert.notEqual(rewritten[0], lines[0]);
      await writeFile(reformatted, `  ${rewritten.join('\r\n\r\n')}\r\n`);
      const expected = await replayResults(canonical, symbols);
      assert.ok((expected as { accepted: number }).accepted > 2_500);
      assert.deepEqual(await replayResults(reformatted, symbols), expected);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('EmbeddedPipeline retention', () => {
  it('keeps only the newest retention.deadLetters dead letters, and counts what it deleted', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'streamlines-dead-letters-'));
    try {
      const file = path.join(dir, 'bad.ndjson');
      const good = [...generateLines({ count: 200, seed: 5, symbols: ['AAA'], hostile: false })];
      // 30 bad lines between good ones: dead letters with seqs that skip, as in a real feed.
      const lines = good.flatMap((line, i) =>
        i < 30 ? [line, `{"symbol":"AAA","price":"bad ${i}"}`] : [line],
      );
      await writeFile(file, `${lines.join('\n')}\n`);
      const config = parseConfig({
        feeds: [{ type: 'replay', path: file, speed: 'max' }],
        log: { type: 'memory' },
        store: { type: 'memory' },
        lake: { enabled: false },
        retention: { ticks: 0, candles: 0, deadLetters: 8 },
      });
      const pipeline = new EmbeddedPipeline({ config, dataDir: dir, retentionDeadLetterCheckMs: 0 });
      await pipeline.start();
      try {
        await until(() => pipeline.stats().drained, 'the replay to drain');
        assert.equal(pipeline.stats().rejected, 30);
        await until(
          () => pipeline.stats().retention?.deletedRows.deadLetters === 22,
          'retention of dead letters',
        );
        const kept = await pipeline.store.deadLetters(100);
        assert.deepEqual(
          kept.map((letter) => letter.raw.match(/bad \d+/)?.[0]),
          Array.from({ length: 8 }, (_, i) => `bad ${22 + i}`),
        );
      } finally {
        await pipeline.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
