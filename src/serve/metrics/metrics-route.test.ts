import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { parseExposition, type Samples, sampleValue } from '../../../test/support/parse-exposition.ts';
import { FakeView, type Json, seedStore } from '../../../test/support/serve.ts';
import { parseConfig } from '../../config/load.ts';
import { EmbeddedPipeline } from '../../pipeline/embedded-pipeline.ts';
import { buildServer } from '../server.ts';
import { PipelineMetrics } from './pipeline-metrics.ts';

/** A whole hour's start, so every interval's buckets line up with the minutes below. */
const T0 = 3_600_000 * 472_222;
const SECOND = 1_000;

/**
 * The replay, counted by hand (docs/design.md, Rules): 11 non-blank records.
 * - accepted (6): AAA at 0 s, 30 s, 70 s, 130 s and 20 s (late), BBB at 10 s;
 * - duplicate (1): AAA id a2 again;
 * - rejected (4): invalid_json, invalid_price, invalid_symbol, not_object;
 * - late (1): AAA at 20 s arrives when the watermark is 130 s - 10 s = 120 s >= 60 s, the end of its minute;
 * - alerts (1): price_above 105 at the 106 tick (previous 101 <= 105 < 106);
 * - candles closed when the replay ends: AAA minutes 0, 1, 2 and BBB minute 0 in 1m (4), and one
 *   AAA and one BBB candle in each of 5m, 15m, 1h and 1d (8): 12.
 */
const REPLAY_LINES = [
  { symbol: 'AAA', ts: T0, price: 100, size: 1, id: 'a1' },
  { symbol: 'AAA', ts: T0 + 30 * SECOND, price: 101, size: 1, id: 'a2' },
  { symbol: 'BBB', ts: T0 + 10 * SECOND, price: 50, size: 2, id: 'b1' },
  { symbol: 'AAA', ts: T0 + 30 * SECOND, price: 101, size: 1, id: 'a2' },
  'this is not json',
  { symbol: 'AAA', ts: T0 + 40 * SECOND, price: -1, size: 1 },
  { symbol: 'bad symbol!', ts: T0 + 40 * SECOND, price: 1, size: 1 },
  { symbol: 'AAA', ts: T0 + 70 * SECOND, price: 106, size: 1, id: 'a3' },
  { symbol: 'AAA', ts: T0 + 130 * SECOND, price: 104, size: 1, id: 'a4' },
  { symbol: 'AAA', ts: T0 + 20 * SECOND, price: 99, size: 1, id: 'a5' },
  [1, 2],
  '',
].map((line) => (typeof line === 'string' ? line : JSON.stringify(line)));

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await sleep(25);
  assert.ok(condition(), `timed out waiting for ${what}`);
}

async function scrape(app: FastifyInstance): Promise<{ text: string; samples: Samples }> {
  const response = await app.inject({ url: '/metrics' });
  assert.equal(response.statusCode, 200);
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return { text: response.body, samples: parseExposition(response.body) };
}

/** promtool's path, or undefined when it is not installed. */
function findPromtool(): string | undefined {
  const probe = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? 'promtool' : undefined;
}

const PROMTOOL = findPromtool();
const IN_CI = process.env.CI === 'true';
const PROMTOOL_SKIP =
  PROMTOOL === undefined && !IN_CI
    ? 'promtool not installed (Debian package "prometheus"); the /metrics lint check is SKIPPED'
    : false;
if (PROMTOOL_SKIP) process.stderr.write(`\n*** ${PROMTOOL_SKIP} ***\n\n`);

/** Runs `promtool check metrics` on the exposition: exit 0 and nothing printed means no lint problem. */
function assertPromtoolClean(text: string): void {
  assert.ok(PROMTOOL, 'promtool is required in CI: apt-get install prometheus');
  const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(result.error, undefined);
  const printed = `${result.stdout}${result.stderr}`.trim();
  assert.equal(printed, '', `promtool reported:\n${printed}`);
  assert.equal(result.status, 0);
}

describe('/metrics over an embedded pipeline after a replay', () => {
  let dir: string;
  let pipeline: EmbeddedPipeline;
  let app: FastifyInstance;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-metrics-'));
    const replay = join(dir, 'ticks.ndjson');
    await writeFile(replay, `${REPLAY_LINES.join('\n')}\n`);
    const config = parseConfig({
      feeds: [{ type: 'replay', path: replay }],
      alerts: { rules: [{ symbol: 'AAA', above: 105 }] },
      log: { type: 'memory' },
      store: { type: 'memory' },
    });
    // One tick in 2: the 6 ticks give ceil(6 / 2) = 3 observations however they are batched.
    const metrics = new PipelineMetrics({ latencySampleEvery: 2 });
    pipeline = new EmbeddedPipeline({ config, dataDir: dir, metrics: metrics.batch });
    await pipeline.start();
    app = await buildServer({ store: pipeline.store, view: pipeline, metrics });
    await until(() => pipeline.stats().drained, 'the replay to drain');
  });

  after(async () => {
    await app?.close();
    await pipeline?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('every pipeline counter equals /api/v1/stats, and both equal the hand count', async () => {
    const stats: Json = (await app.inject({ url: '/api/v1/stats' })).json();
    const { samples } = await scrape(app);
    const counter = (name: string) => sampleValue(samples, name);
    const pairs: [string, number, number][] = [
      ['streamlines_ingest_records_received_total', stats.received, 11],
      ['streamlines_ingest_ticks_accepted_total', stats.accepted, 6],
      ['streamlines_ingest_ticks_duplicate_total', stats.duplicates, 1],
      ['streamlines_process_ticks_late_total', stats.late, 1],
      ['streamlines_process_candles_closed_total', stats.candlesClosed, 12],
      ['streamlines_process_alerts_fired_total', stats.alertsFired, 1],
    ];
    for (const [name, fromStats, byHand] of pairs) {
      assert.equal(counter(name), fromStats, `${name} vs /api/v1/stats`);
      assert.equal(fromStats, byHand, `${name} vs the hand count`);
    }
    const rejected = (reason: string) =>
      sampleValue(samples, 'streamlines_ingest_records_rejected_total', { reason });
    for (const reason of ['invalid_json', 'invalid_price', 'invalid_symbol', 'not_object']) {
      assert.equal(rejected(reason), stats.rejectedByReason[reason], reason);
      assert.equal(rejected(reason), 1, reason);
    }
    assert.equal(rejected('invalid_ts'), 0);
    const rejectedSum = [...samples]
      .filter(([key]) => key.startsWith('streamlines_ingest_records_rejected_total{'))
      .reduce((sum, [, value]) => sum + value, 0);
    assert.equal(rejectedSum, stats.rejected);
    assert.equal(sampleValue(samples, 'streamlines_log_end_offset'), stats.logEndOffset);
    assert.equal(sampleValue(samples, 'streamlines_log_processed_offset'), stats.processedOffset);
    assert.equal(sampleValue(samples, 'streamlines_log_lag_entries'), 0);
    assert.equal(sampleValue(samples, 'streamlines_pipeline_drained'), 1);
    const feed = { feed: 'replay', type: 'replay' };
    assert.equal(sampleValue(samples, 'streamlines_feed_state', { ...feed, state: 'ended' }), 1);
    assert.equal(sampleValue(samples, 'streamlines_feed_state', { ...feed, state: 'running' }), 0);
    assert.equal(sampleValue(samples, 'streamlines_feed_messages_total', feed), 11);
  });

  test('tick latency and store write histograms got their observations', async () => {
    const { samples } = await scrape(app);
    assert.equal(sampleValue(samples, 'streamlines_tick_processed_latency_seconds_count'), 3);
    assert.equal(sampleValue(samples, 'streamlines_tick_stored_latency_seconds_count'), 3);
    // Stored comes after processed, tick by tick, so its sum cannot be smaller.
    assert.ok(
      sampleValue(samples, 'streamlines_tick_stored_latency_seconds_sum') >=
        sampleValue(samples, 'streamlines_tick_processed_latency_seconds_sum'),
    );
    assert.equal(
      sampleValue(samples, 'streamlines_tick_processed_latency_seconds_bucket', { le: '+Inf' }),
      3,
    );
    assert.ok(sampleValue(samples, 'streamlines_store_write_duration_seconds_count') >= 1);
  });

  test('GET /ready checks the store, the log and the feeds of the running pipeline', async () => {
    const response = await app.inject({ url: '/ready' });
    assert.equal(response.statusCode, 200);
    const body: Json = response.json();
    assert.equal(body.status, 'ready');
    for (const name of ['store', 'log', 'feeds']) {
      assert.equal(body.checks[name].ok, true, name);
      assert.equal(typeof body.checks[name].latencyMs, 'number', name);
    }
  });

  test('the exposition passes promtool check metrics without a lint warning', {
    skip: PROMTOOL_SKIP,
  }, async () => {
    const { text } = await scrape(app);
    assertPromtoolClean(text);
  });
});

describe('/metrics follows the WebSocket hub with a real client', () => {
  let app: FastifyInstance;
  let view: FakeView;
  let url: string;

  before(async () => {
    view = new FakeView();
    const metrics = new PipelineMetrics({ latencySampleEvery: 1 });
    app = await buildServer({ store: await seedStore(), view, metrics });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`;
  });

  after(async () => {
    await app?.close();
  });

  async function untilMetric(name: string, expected: number): Promise<Samples> {
    let samples: Samples = new Map();
    for (let i = 0; i < 200; i++) {
      samples = (await scrape(app)).samples;
      if (sampleValue(samples, name) === expected) return samples;
      await sleep(10);
    }
    assert.equal(sampleValue(samples, name), expected, name);
    return samples;
  }

  test('clients and subscriptions move, sent ticks are timed, and closing the socket counts down', async () => {
    assert.equal(sampleValue((await scrape(app)).samples, 'streamlines_ws_clients'), 0);
    const socket = new WebSocket(url);
    const messages: Json[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    try {
      await untilMetric('streamlines_ws_clients', 1);
      socket.send(JSON.stringify({ op: 'subscribe', channels: ['ticks:BTCUSDT'] }));
      await until(() => messages.some((message) => message.op === 'subscribed'), 'the subscription');
      const before = (await scrape(app)).samples;
      assert.equal(sampleValue(before, 'streamlines_ws_subscriptions'), 1);
      assert.equal(sampleValue(before, 'streamlines_tick_ws_sent_latency_seconds_count'), 0);

      const receivedAt = Date.now() - 50;
      view.emit('ticks:BTCUSDT', { symbol: 'BTCUSDT', ts: 1, price: 1, size: 1, receivedAt });
      // Nobody watches ETHUSDT: published, but neither sent nor timed.
      view.emit('ticks:ETHUSDT', { symbol: 'ETHUSDT', ts: 1, price: 1, size: 1, receivedAt });
      await until(() => messages.some((message) => message.channel === 'ticks:BTCUSDT'), 'the tick');
      const after = (await scrape(app)).samples;
      assert.equal(sampleValue(after, 'streamlines_ws_messages_published_total'), 2);
      assert.equal(sampleValue(after, 'streamlines_ws_messages_sent_total'), 1);
      assert.equal(sampleValue(after, 'streamlines_ws_messages_dropped_total'), 0);
      assert.equal(sampleValue(after, 'streamlines_tick_ws_sent_latency_seconds_count'), 1);
      // receivedAt was 50 ms before the send.
      const latency = sampleValue(after, 'streamlines_tick_ws_sent_latency_seconds_sum');
      assert.ok(latency >= 0.05 && latency < 5, `latency ${latency}`);

      socket.send('not json');
      await until(() => messages.some((message) => message.op === 'error'), 'the error reply');
      const errors = (await scrape(app)).samples;
      assert.equal(sampleValue(errors, 'streamlines_ws_errors_total', { code: 'invalid_json' }), 1);
    } finally {
      socket.close();
    }
    await untilMetric('streamlines_ws_clients', 0);
    assert.equal(sampleValue((await scrape(app)).samples, 'streamlines_ws_subscriptions'), 0);
  });

  test('the exposition with WebSocket traffic passes promtool', { skip: PROMTOOL_SKIP }, async () => {
    assertPromtoolClean((await scrape(app)).text);
  });
});
