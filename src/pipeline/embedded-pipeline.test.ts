import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
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
