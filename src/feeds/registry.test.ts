/**
 * `@stoqey/ib` brings rxjs and dotenv, and its client reads `./.env` into the process environment: a run
 * without an IB feed must not load it. node --test runs this file in a process of its own, so a module
 * resolve hook registered before the dynamic imports below sees every module the pipeline loads.
 */
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { describe, it } from 'node:test';
import { waitUntil } from '../../test/support/wait.ts';

const resolved: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    resolved.push(result.url);
    return result;
  },
});

const loadedIb = (): string[] => resolved.filter((url) => url.includes('/@stoqey/ib/'));

describe('feed registry', () => {
  it('loads @stoqey/ib only when an IB feed runs', async () => {
    // Everything `streamlines run` and the distributed roles import, and every other feed type built.
    await import('../pipeline/embedded-pipeline.ts');
    await import('../pipeline/distributed.ts');
    const { configSchema } = await import('../config/schema.ts');
    const { createFeed } = await import('./registry.ts');
    const config = configSchema.parse({
      symbols: ['BTCUSDT'],
      feeds: [
        { type: 'synthetic' },
        { type: 'replay', path: 'ticks.ndjson' },
        { type: 'binance' },
        { type: 'coinbase', symbols: ['BTC-USD'] },
        { type: 'kraken', symbols: ['BTC/USD'] },
        { type: 'backfill', provider: 'binance', symbols: ['BTCUSDT'], from: 1, to: 2 },
        { type: 'coingecko', symbols: ['bitcoin'] },
        { type: 'ib', symbols: ['AAPL'], url: 'tcp://127.0.0.1:1' },
      ],
    });
    const feeds = config.feeds.map((feed) => createFeed(feed, config.symbols));
    assert.ok(resolved.some((url) => url.endsWith('/src/feeds/ib/ib-feed.ts')));
    assert.deepEqual(loadedIb(), [], 'constructing the feeds (an IB one included) loads no @stoqey/ib');

    // The positive control: running the IB feed is what loads the library.
    const ib = feeds.find((feed) => feed.type === 'ib')!;
    const controller = new AbortController();
    const iterator = ib.run(undefined, controller.signal)[Symbol.asyncIterator]();
    const next = iterator.next();
    await waitUntil(() => loadedIb().length > 0, 'the ib feed to load');
    controller.abort();
    await next.catch(() => undefined);
    await iterator.return?.(undefined);
    assert.ok(loadedIb().length > 0);
  });
});
