import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { register as globalRegistry } from 'prom-client';
import { parseExposition, sampleValue } from '../../../test/support/parse-exposition.ts';
import type { Stats } from '../../core/pipeline-view.ts';
import type { WsHubStats } from '../ws/ws-hub.ts';
import { PipelineMetrics } from './pipeline-metrics.ts';
import { IngestMetrics, ProcessMetrics } from './role-metrics.ts';

function baseStats(): Stats {
  return {
    received: 10,
    accepted: 6,
    rejected: 3,
    rejectedByReason: { invalid_price: 2, invalid_json: 1 },
    duplicates: 1,
    late: 1,
    candlesClosed: 4,
    alertsFired: 2,
    drained: false,
    logEndOffset: 15,
    processedOffset: 11,
    feeds: [{ name: 'live', type: 'synthetic', state: 'running', messages: 5, lastMessageAt: null }],
  };
}

function hubStats(overrides: Partial<WsHubStats> = {}): WsHubStats {
  return {
    clients: 0,
    channels: 0,
    subscriptions: 0,
    published: 0,
    serialised: 0,
    sent: 0,
    dropped: 0,
    repliesDropped: 0,
    disconnected: 0,
    errors: {
      invalid_json: 0,
      invalid_message: 0,
      unknown_op: 0,
      invalid_channel: 0,
      too_many_subscriptions: 0,
      frame_too_large: 0,
      rate_limited: 0,
    },
    ...overrides,
  };
}

/** Metrics bound to stats and hub counters the test changes between scrapes. */
function boundMetrics(options: ConstructorParameters<typeof PipelineMetrics>[0] = {}) {
  const metrics = new PipelineMetrics({ processMetrics: false, ...options });
  const state = { stats: baseStats(), hub: hubStats() };
  metrics.bind({ view: { stats: () => state.stats }, hub: { stats: () => state.hub } });
  const scrape = async () => parseExposition(await metrics.render());
  return { metrics, state, scrape };
}

describe('PipelineMetrics', () => {
  test('pipeline counters, log gauges and WebSocket counters mirror the sources at scrape time', async () => {
    const { state, scrape } = boundMetrics();
    state.hub = hubStats({ clients: 3, subscriptions: 4, channels: 2, sent: 40, dropped: 7 });
    state.hub.errors.invalid_channel = 2;
    const samples = await scrape();
    assert.equal(sampleValue(samples, 'streamlines_ingest_records_received_total'), 10);
    assert.equal(sampleValue(samples, 'streamlines_ingest_ticks_accepted_total'), 6);
    assert.equal(
      sampleValue(samples, 'streamlines_ingest_records_rejected_total', { reason: 'invalid_price' }),
      2,
    );
    // Reasons that never happened are exposed at 0, so a rate() over them works from the start.
    assert.equal(
      sampleValue(samples, 'streamlines_ingest_records_rejected_total', { reason: 'invalid_ts' }),
      0,
    );
    assert.equal(sampleValue(samples, 'streamlines_process_candles_closed_total'), 4);
    assert.equal(sampleValue(samples, 'streamlines_process_alerts_fired_total'), 2);
    // No retention in the stats yet: every table is exposed, at 0.
    assert.equal(
      sampleValue(samples, 'streamlines_retention_deleted_rows_total', { table: 'dead_letters' }),
      0,
    );
    // 15 logged - 11 committed.
    assert.equal(sampleValue(samples, 'streamlines_log_lag_entries'), 4);
    assert.equal(sampleValue(samples, 'streamlines_pipeline_drained'), 0);
    assert.equal(sampleValue(samples, 'streamlines_ws_clients'), 3);
    assert.equal(sampleValue(samples, 'streamlines_ws_subscriptions'), 4);
    assert.equal(sampleValue(samples, 'streamlines_ws_messages_dropped_total'), 7);
    assert.equal(sampleValue(samples, 'streamlines_ws_errors_total', { code: 'invalid_channel' }), 2);

    state.stats = {
      ...state.stats,
      accepted: 9,
      processedOffset: 15,
      drained: true,
      retention: {
        deletedRows: { ticks: 100, candles: 5, indicators: 4, alerts: 1, deadLetters: 7 },
        longestStepMs: 3,
      },
    };
    state.hub = hubStats({ clients: 1, dropped: 9 });
    const later = await scrape();
    assert.equal(
      sampleValue(later, 'streamlines_retention_deleted_rows_total', { table: 'dead_letters' }),
      7,
    );
    assert.equal(sampleValue(later, 'streamlines_retention_deleted_rows_total', { table: 'ticks' }), 100);
    assert.equal(sampleValue(later, 'streamlines_ingest_ticks_accepted_total'), 9);
    assert.equal(sampleValue(later, 'streamlines_log_lag_entries'), 0);
    assert.equal(sampleValue(later, 'streamlines_pipeline_drained'), 1);
    assert.equal(sampleValue(later, 'streamlines_ws_clients'), 1);
    assert.equal(sampleValue(later, 'streamlines_ws_messages_dropped_total'), 9);
  });

  test('counters never go down: a feed restarted from 0 messages adds on top', async () => {
    const { state, scrape } = boundMetrics();
    const feed = { feed: 'live', type: 'synthetic' };
    assert.equal(sampleValue(await scrape(), 'streamlines_feed_messages_total', feed), 5);
    // The control panel stopped and started the feed: its status counts from 0 again.
    state.stats = { ...state.stats, feeds: [{ ...state.stats.feeds[0]!, messages: 3 }] };
    assert.equal(sampleValue(await scrape(), 'streamlines_feed_messages_total', feed), 8);
    state.stats = { ...state.stats, feeds: [{ ...state.stats.feeds[0]!, messages: 4 }] };
    assert.equal(sampleValue(await scrape(), 'streamlines_feed_messages_total', feed), 9);
  });

  test('feed state is one 0/1 series per state; reconnects and message age show when known', async () => {
    const { state, scrape } = boundMetrics();
    const lastMessageAt = Date.now() - 30_000;
    state.stats = {
      ...state.stats,
      feeds: [
        { name: 'live', type: 'synthetic', state: 'running', messages: 5, lastMessageAt },
        // A later FeedStatus carries reconnects; metrics read it when present.
        Object.assign(
          { name: 'bn', type: 'binance', state: 'failed' as const, messages: 0, lastMessageAt: null },
          { reconnects: 4 },
        ),
      ],
    };
    const samples = await scrape();
    const state1 = (feed: string, type: string, value: string) =>
      sampleValue(samples, 'streamlines_feed_state', { feed, type, state: value });
    assert.equal(state1('live', 'synthetic', 'running'), 1);
    assert.equal(state1('live', 'synthetic', 'failed'), 0);
    assert.equal(state1('bn', 'binance', 'failed'), 1);
    assert.equal(state1('bn', 'binance', 'running'), 0);
    assert.equal(
      sampleValue(samples, 'streamlines_feed_reconnects_total', { feed: 'bn', type: 'binance' }),
      4,
    );
    assert.equal(samples.has('streamlines_feed_reconnects_total{feed="live",type="synthetic"}'), false);
    const age = sampleValue(samples, 'streamlines_feed_last_message_age_seconds', {
      feed: 'live',
      type: 'synthetic',
    });
    assert.ok(age >= 30 && age < 40, `age ${age}`);
    assert.equal(samples.has('streamlines_feed_last_message_age_seconds{feed="bn",type="binance"}'), false);
  });

  test('a view that throws (shutting down) leaves the scrape answering with the last values', async () => {
    const metrics = new PipelineMetrics({ processMetrics: false });
    let closed = false;
    const view = {
      stats: () => {
        if (closed) throw new Error('the log is closed');
        return baseStats();
      },
    };
    metrics.bind({ view, hub: { stats: () => hubStats() } });
    await metrics.render();
    closed = true;
    const samples = parseExposition(await metrics.render());
    assert.equal(sampleValue(samples, 'streamlines_ingest_ticks_accepted_total'), 6);
  });

  test('tick latencies: exactly one tick in N is observed, however the ticks are split into batches', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 7 }),
        fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 12 }),
        async (every, batchSizes) => {
          const metrics = new PipelineMetrics({ processMetrics: false, latencySampleEvery: every });
          let total = 0;
          for (const size of batchSizes) {
            metrics.batch.recordBatch(
              Array.from({ length: size }, () => ({ receivedAt: 1_000 })),
              1_010,
              1_030,
              0.002,
            );
            total += size;
          }
          const processed = await histogram(metrics, 'streamlines_tick_processed_latency_seconds');
          // Ticks 0, every, 2*every... of the whole stream: ceil(total / every) of them.
          assert.equal(processed.count, Math.ceil(total / every));
          assert.equal(
            (await histogram(metrics, 'streamlines_store_write_duration_seconds')).count,
            batchSizes.length,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test('tick latencies are measured from receivedAt to processed and to stored, in seconds', async () => {
    const metrics = new PipelineMetrics({ processMetrics: false, latencySampleEvery: 1 });
    // Processed at 1 010 ms, stored at 1 030 ms: latencies 10 ms and 30 ms for the first tick,
    // 4 ms and 24 ms for the second; a receivedAt in the future (clock skew) counts as 0.
    metrics.batch.recordBatch(
      [{ receivedAt: 1_000 }, { receivedAt: 1_006 }, { receivedAt: 1_050 }],
      1_010,
      1_030,
      0.02,
    );
    const processed = await histogram(metrics, 'streamlines_tick_processed_latency_seconds');
    assert.equal(processed.count, 3);
    assert.ok(Math.abs(processed.sum - (0.01 + 0.004 + 0)) < 1e-12);
    // le=0.005 holds 0.004 and 0; le=0.01 adds the 0.01.
    assert.equal(processed.buckets.get(0.005), 2);
    assert.equal(processed.buckets.get(0.01), 3);
    const stored = await histogram(metrics, 'streamlines_tick_stored_latency_seconds');
    assert.ok(Math.abs(stored.sum - (0.03 + 0.024 + 0)) < 1e-12);
    const write = await histogram(metrics, 'streamlines_store_write_duration_seconds');
    assert.equal(write.count, 1);
    assert.equal(write.sum, 0.02);
  });

  test('instrumentLive times sampled tick messages the hub sent, and passes everything through', async () => {
    const metrics = new PipelineMetrics({ processMetrics: false, latencySampleEvery: 2 });
    const delivered: string[] = [];
    let sent = 0;
    const watched = new Set(['ticks:AAA', 'alerts']);
    const hub = {
      publish: (channel: string) => {
        delivered.push(channel);
        if (watched.has(channel)) sent++;
      },
      stats: () => hubStats({ sent }),
    };
    const listener = metrics.instrumentLive(hub);
    const receivedAt = Date.now() - 100;
    // Tick messages 1..6: 1, 3 and 5 are sampled (one in 2); 3 is on a channel nobody watches.
    const channels = ['ticks:AAA', 'ticks:AAA', 'ticks:BBB', 'ticks:AAA', 'ticks:AAA', 'ticks:AAA'];
    for (const channel of channels) {
      listener(channel, { receivedAt });
      listener('alerts', { receivedAt: 0 });
    }
    assert.equal(delivered.length, 12);
    const sentLatency = await histogram(metrics, 'streamlines_tick_ws_sent_latency_seconds');
    assert.equal(sentLatency.count, 2);
    assert.ok(sentLatency.sum >= 0.2 && sentLatency.sum < 2, `sum ${sentLatency.sum}`);
  });

  test('each instance has its own registry; the global one stays empty', async () => {
    const first = new PipelineMetrics();
    const second = new PipelineMetrics();
    first.batch.recordBatch([{ receivedAt: 0 }], 1, 2, 0.001);
    assert.equal((await histogram(second, 'streamlines_store_write_duration_seconds')).count, 0);
    assert.equal(
      globalRegistry.getMetricsAsArray().filter((metric) => metric.name.startsWith('streamlines_')).length,
      0,
    );
    // Process metrics are in both, without the gauges promtool rejects for their _total suffix.
    const text = await second.render();
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    assert.doesNotMatch(text, /nodejs_active_handles_total/);
  });

  test('process_cpu_seconds_total is the CPU of the whole process, not of the time since the first scrape', async () => {
    const spentBefore = process.cpuUsage();
    const text = await new PipelineMetrics().render();
    const seconds = sampleValue(parseExposition(text), 'process_cpu_seconds_total');
    // Loading this test file alone costs far more CPU than the 10 ms slack.
    assert.ok(
      seconds !== undefined && seconds >= (spentBefore.user + spentBefore.system) / 1e6 - 0.01,
      `${seconds}`,
    );
  });

  test('docs/metrics.md documents every streamlines_ metric of run, ingest and process, and only those', async () => {
    const ingest = new IngestMetrics(
      {
        feeds: () => [],
        spool: () => ({ spoolBytes: 0, pendingAppends: 0, spooledAppends: 0, fullWaits: 0 }),
      },
      { processMetrics: false },
    );
    const processMetrics = new ProcessMetrics({ processMetrics: false });
    processMetrics.bind({ partitions: () => [] });
    const text = (
      await Promise.all([boundMetrics().metrics.render(), ingest.render(), processMetrics.render()])
    ).join('\n');
    const exposed = new Set([...text.matchAll(/^# TYPE (streamlines_\w+) /gm)].map((match) => match[1]!));
    const docs = await readFile(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
    const documented = new Set([...docs.matchAll(/^\| `(streamlines_\w+)` \|/gm)].map((match) => match[1]!));
    assert.ok(exposed.size >= 25, `only ${exposed.size} metrics exposed`);
    assert.deepEqual([...exposed].sort(), [...documented].sort());
  });

  test('store write errors and checkpoint conflicts are counted apart, from 0', async () => {
    const { metrics, scrape } = boundMetrics();
    const before = await scrape();
    assert.equal(sampleValue(before, 'streamlines_store_write_errors_total'), 0);
    assert.equal(sampleValue(before, 'streamlines_store_checkpoint_conflicts_total'), 0);
    metrics.batch.recordWriteError();
    metrics.batch.recordWriteError();
    metrics.batch.recordCheckpointConflict();
    const after = await scrape();
    assert.equal(sampleValue(after, 'streamlines_store_write_errors_total'), 2);
    assert.equal(sampleValue(after, 'streamlines_store_checkpoint_conflicts_total'), 1);
  });

  test('latencySampleEvery must be a positive integer', () => {
    assert.throws(() => new PipelineMetrics({ latencySampleEvery: 0 }), RangeError);
    assert.throws(() => new PipelineMetrics({ latencySampleEvery: 1.5 }), RangeError);
  });
});

/** A histogram's count, sum and cumulative buckets, read from the registry. */
async function histogram(
  metrics: PipelineMetrics,
  name: string,
): Promise<{ count: number; sum: number; buckets: Map<number, number> }> {
  const metric = metrics.registry.getSingleMetric(name);
  assert.ok(metric, `no metric ${name}`);
  const { values } = (await metric.get()) as unknown as {
    values: { metricName?: string; labels: { le?: number | string }; value: number }[];
  };
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const value of values) {
    if (value.metricName === `${name}_count`) count = value.value;
    else if (value.metricName === `${name}_sum`) sum = value.value;
    else if (value.metricName === `${name}_bucket` && typeof value.labels.le === 'number') {
      buckets.set(value.labels.le, value.value);
    }
  }
  return { count, sum, buckets };
}
