/**
 * End to end for live feeds and backfill: the real CLI runs a binance feed against a fake Binance on
 * 127.0.0.1 and fills the store; feeds that cannot connect show their true state and cause in
 * /api/v1/stats, /metrics and the log; `streamlines backfill` loads REST history through the pipeline.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { closedPort } from '../../src/feeds/conformance.ts';
import { aggTrade, FakeBinance } from '../fakes/fake-binance-server.ts';
import { getJson, type RunningCli, runCliOnce, startCli, stopCli } from '../support/cli.ts';
import { parseExposition, sampleValue } from '../support/parse-exposition.ts';
import { waitUntil } from '../support/wait.ts';

interface FeedJson {
  name: string;
  state: string;
  connected?: boolean;
  cause?: string;
  causeKind?: string;
  failedAttempts?: number;
  lastConnectedAt?: number | null;
  startedAt?: number;
}

describe('live feeds end to end', () => {
  let dir: string;
  let fake: FakeBinance;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-live-'));
    fake = await FakeBinance.start();
  });
  after(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('`run` with a binance feed pointed at a fake server fills the store', async () => {
    const config = join(dir, 'run.yaml');
    await writeFile(
      config,
      JSON.stringify({
        feeds: [{ type: 'binance', symbols: ['btcusdt'], url: fake.url, restUrl: fake.restUrl }],
        log: { type: 'memory' },
        store: { type: 'memory' },
      }),
    );
    let cli: RunningCli | undefined;
    try {
      cli = await startCli(['--config', config, '--data-dir', join(dir, 'run-data')]);
      await waitUntil(() => fake.subscribers('btcusdt@aggTrade').length === 1, 'subscription', 15_000);
      const t0 = Date.now() - 1_000;
      for (let id = 1; id <= 5; id++)
        fake.publish(aggTrade('BTCUSDT', id, t0 + id, `${100 + id}.5`, '0.25', id % 2 === 0));
      let ticks: { id: string; price: number; size: number }[] = [];
      for (let i = 0; i < 100 && ticks.length < 5; i++) {
        await sleep(100);
        const answer = await getJson<{ ticks?: typeof ticks }>(
          cli.baseUrl,
          `/api/v1/ticks/BTCUSDT?from=${t0}`,
        );
        ticks = answer.body.ticks ?? [];
      }
      assert.deepEqual(
        ticks.map((tick) => [tick.id, tick.price, tick.size]),
        [1, 2, 3, 4, 5].map((id) => [String(id), 100 + id + 0.5, 0.25]),
      );
      const { body: stats } = await getJson<{ feeds: { name: string; connected?: boolean }[] }>(
        cli.baseUrl,
        '/api/v1/stats',
      );
      assert.equal(stats.feeds.find((feed) => feed.name === 'binance')?.connected, true);
    } finally {
      if (cli) await stopCli(cli);
    }
  });

  it('a feed at a host that does not resolve and one at a closed port say so in stats, metrics and the log', async () => {
    const port = await closedPort();
    const config = join(dir, 'unreachable.yaml');
    await writeFile(
      config,
      JSON.stringify({
        feeds: [
          { type: 'binance', name: 'nodns', symbols: ['btcusdt'], url: 'wss://stream.nowhere.invalid:9443' },
          { type: 'binance', name: 'closed', symbols: ['ethusdt'], url: `ws://127.0.0.1:${port}` },
        ],
        log: { type: 'memory' },
        store: { type: 'memory' },
      }),
    );
    // The CLI resolves `.invalid` names offline (test/fakes/offline-dns.ts): tests talk to 127.0.0.1 only.
    const nodeOptions = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `${nodeOptions ?? ''} --import=${join(import.meta.dirname, '../fakes/offline-dns.ts')}`;
    let cli: RunningCli | undefined;
    try {
      cli = await startCli(['--config', config, '--data-dir', join(dir, 'unreachable-data')]);
      const baseUrl = cli.baseUrl;
      let feeds: FeedJson[] = [];
      for (let i = 0; i < 200; i++) {
        feeds = (await getJson<{ feeds: FeedJson[] }>(baseUrl, '/api/v1/stats')).body.feeds;
        if (feeds.length === 2 && feeds.every((feed) => (feed.failedAttempts ?? 0) >= 2)) break;
        await sleep(100);
      }
      const byName = Object.fromEntries(feeds.map((feed) => [feed.name, feed]));
      assert.deepEqual(
        { ...byName.nodns, failedAttempts: undefined },
        {
          name: 'nodns',
          type: 'binance',
          state: 'failing',
          connected: false,
          cause: 'DNS lookup failed for stream.nowhere.invalid (ENOTFOUND: the host does not resolve)',
          causeKind: 'dns',
          failedAttempts: undefined,
          lastConnectedAt: null,
          reconnects: 0,
          backfilled: 0,
          messages: 0,
          lastMessageAt: null,
          startedAt: byName.nodns?.startedAt,
        },
      );
      assert.equal(byName.closed?.state, 'failing');
      assert.equal(byName.closed?.causeKind, 'refused');
      assert.equal(byName.closed?.cause, `connection refused by 127.0.0.1:${port} (nothing listens there)`);

      const metrics = parseExposition(await (await fetch(`${baseUrl}/metrics`)).text());
      for (const [feed, cause] of [
        ['nodns', 'dns'],
        ['closed', 'refused'],
      ] as const) {
        const labels = { feed, type: 'binance' };
        assert.equal(sampleValue(metrics, 'streamlines_feed_state', { ...labels, state: 'failing' }), 1);
        assert.equal(sampleValue(metrics, 'streamlines_feed_state', { ...labels, state: 'connected' }), 0);
        assert.equal(sampleValue(metrics, 'streamlines_feed_cause', { ...labels, cause }), 1);
        assert.ok(sampleValue(metrics, 'streamlines_feed_failed_attempts', labels) >= 2);
      }

      const log = cli.stderr();
      assert.match(
        log,
        /\[nodns\] cannot connect to wss:\/\/stream\.nowhere\.invalid:9443\/ws: DNS lookup failed/,
      );
      assert.match(
        log,
        new RegExp(`\\[closed\\] cannot connect to ws://127\\.0\\.0\\.1:${port}/ws: connection refused`),
      );
      assert.doesNotMatch(log, /connection lost/, 'a connection that never opened is never "lost"');
    } finally {
      if (nodeOptions === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = nodeOptions;
      if (cli) await stopCli(cli);
    }
  });

  it('`backfill` pages aggTrades through the pipeline, honouring a 429 Retry-After', async () => {
    // 2500 trades, one every 3 s from T0: three pages of 1000 by id after the first time window.
    const t0 = Date.UTC(2026, 0, 1);
    for (let id = 1; id <= 2500; id++)
      fake.publish(aggTrade('ETHUSDT', id, t0 + id * 3_000, '3000.5', '1', false));
    fake.rateLimitNext = 1;
    const config = join(dir, 'backfill.yaml');
    await writeFile(config, JSON.stringify({ log: { type: 'memory' }, store: { type: 'memory' } }));
    const from = t0 + 3_000; // trade 1
    const to = t0 + 2_000 * 3_000; // trade 2000
    const result = await runCliOnce([
      'backfill',
      '--feed',
      'binance',
      '--symbol',
      'ETHUSDT',
      '--from',
      new Date(from).toISOString(),
      '--to',
      String(to),
      '--config',
      config,
      '--data-dir',
      join(dir, 'backfill-data'),
      '--rest-url',
      fake.restUrl,
    ]);
    assert.equal(result.code, 0, result.stderr);
    // Trades 1..2000 lie in [from, to]: 2000 fetched and accepted.
    assert.match(result.stderr, /2000 trades fetched, 2000 accepted, 0 duplicates/);
    const calls = fake.exchange.httpRequests.filter((path) => path.includes('symbol=ETHUSDT'));
    assert.match(calls[0] ?? '', /startTime=/, 'the first page is found by time');
    assert.ok(
      calls.some((path) => path.includes('fromId=')),
      'later pages go by id',
    );
    assert.equal(fake.rateLimitNext, 0, 'the 429 was served and the request retried after it');
  });

  it('`backfill` explains a bad command line', async () => {
    const result = await runCliOnce([
      'backfill',
      '--feed',
      'nope',
      '--symbol',
      'X',
      '--from',
      '1',
      '--to',
      '2',
    ]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--feed must be one of binance, coinbase, kraken/);
  });
});
