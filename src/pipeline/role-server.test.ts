import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { parseExposition, sampleValue } from '../../test/support/parse-exposition.ts';
import { waitUntil } from '../../test/support/wait.ts';
import { HealthRegistry } from '../core/health.ts';
import type { FeedStatus } from '../core/pipeline-view.ts';
import { type Counters, type IngestEntry, TOPIC_TICKS } from '../core/records.ts';
import { MemoryLog } from '../log/memory/memory-log.ts';
import { DEFAULT_ANOMALY } from '../process/processor.ts';
import { IngestMetrics, ProcessMetrics, type SpoolCounters } from '../serve/metrics/role-metrics.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import type { StoreBatch } from '../store/store.ts';
import { ProcessRole, partitionCheckpoint, SoleLeases } from './process-role.ts';
import {
  buildRoleServer,
  checkKafka,
  IngestReadiness,
  KAFKA_SILENT_MS,
  listenRoleServer,
  ProcessReadiness,
  type RoleCheck,
  reportChecks,
} from './role-server.ts';

const HAS_PROMTOOL = spawnSync('promtool', ['--version']).error === undefined;
const IN_CI = process.env.CI === 'true';
if (!HAS_PROMTOOL && IN_CI) throw new Error('promtool is required in CI: apt-get install prometheus');
const PROMTOOL_SKIP = HAS_PROMTOOL ? false : 'promtool not installed (Debian package "prometheus")';
if (PROMTOOL_SKIP)
  process.stderr.write(`\n*** ${PROMTOOL_SKIP}: the role /metrics lint check is SKIPPED ***\n\n`);

/** `promtool check metrics`: exit 0 and nothing printed means no lint problem. */
function assertPromtoolClean(text: string): void {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const printed = `${result.stdout}${result.stderr}`.trim();
  assert.equal(printed, '', `promtool reported:\n${printed}`);
  assert.equal(result.status, 0);
}

interface SpoolState extends SpoolCounters {
  drainedAppends: number;
  discardedAppends: number;
  lastError: string | null;
}

/** What an IngestRole shows, changed by the tests between requests. */
class FakeIngest {
  feeds: FeedStatus[] = [
    { name: 'bn', type: 'binance', state: 'running', messages: 40, lastMessageAt: Date.now() - 5_000 },
  ];
  spool: SpoolState = {
    spoolBytes: 0,
    pendingAppends: 0,
    spooledAppends: 0,
    fullWaits: 0,
    drainedAppends: 0,
    discardedAppends: 0,
    lastError: null,
  };
  readonly log = { stats: () => ({ ...this.spool }) };
  feedStatuses(): FeedStatus[] {
    return this.feeds;
  }
}

async function get(app: FastifyInstance, url: string) {
  const response = await app.inject({ method: 'GET', url });
  return { status: response.statusCode, json: () => response.json(), text: response.body, response };
}

describe('ingest role server', () => {
  let ingest: FakeIngest;
  let now: number;
  let readiness: IngestReadiness;
  let app: FastifyInstance;

  before(async () => {
    ingest = new FakeIngest();
    now = 1_000_000;
    readiness = new IngestReadiness(ingest, { spoolStallMs: 30_000, now: () => now });
    const metrics = new IngestMetrics({ feeds: () => ingest.feedStatuses(), spool: () => ingest.spool });
    app = await buildRoleServer({ metrics, readiness });
  });

  after(async () => {
    await app?.close();
  });

  it('answers /health at once and /ready only after start', async () => {
    assert.deepEqual((await get(app, '/health')).json(), { status: 'ok' });
    const starting = await get(app, '/ready');
    assert.equal(starting.status, 503);
    assert.equal(starting.json().error.code, 'not_ready');
    assert.match(starting.json().error.message, /^started: /);
    readiness.markStarted();
    const ready = await get(app, '/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.json(), {
      status: 'ready',
      checks: { started: { ok: true }, log: { ok: true }, feeds: { ok: true } },
    });
  });

  it('/metrics has the same feed metrics as run, and the disk buffer', async () => {
    ingest.spool = { ...ingest.spool, spoolBytes: 4_096, pendingAppends: 3, spooledAppends: 5, fullWaits: 2 };
    const { response } = await get(app, '/metrics');
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const samples = parseExposition(response.body);
    const feed = { feed: 'bn', type: 'binance' };
    assert.equal(sampleValue(samples, 'streamlines_feed_state', { ...feed, state: 'running' }), 1);
    assert.equal(sampleValue(samples, 'streamlines_feed_state', { ...feed, state: 'failed' }), 0);
    assert.equal(sampleValue(samples, 'streamlines_feed_messages_total', feed), 40);
    const age = sampleValue(samples, 'streamlines_feed_last_message_age_seconds', feed);
    assert.ok(age >= 5 && age < 15, `age ${age}`);
    assert.equal(sampleValue(samples, 'streamlines_ingest_spool_bytes'), 4_096);
    assert.equal(sampleValue(samples, 'streamlines_ingest_spool_pending_appends'), 3);
    assert.equal(sampleValue(samples, 'streamlines_ingest_spooled_appends_total'), 5);
    assert.equal(sampleValue(samples, 'streamlines_ingest_spool_full_waits_total'), 2);
    // Process metrics are there; the processor's and the server's are not (ingest has none).
    assert.ok(samples.has('process_cpu_seconds_total'));
    assert.equal(samples.has('streamlines_log_lag_entries'), false);
    assert.equal(samples.has('streamlines_ws_clients'), false);

    ingest.spool = { ...ingest.spool, spooledAppends: 9 };
    const later = parseExposition((await get(app, '/metrics')).text);
    assert.equal(sampleValue(later, 'streamlines_ingest_spooled_appends_total'), 9);
  });

  it('is not ready when the disk buffer sends nothing for spoolStallMs, and ready again once it drains', async () => {
    readiness.markStarted();
    ingest.spool = { ...ingest.spool, pendingAppends: 3, spoolBytes: 4_096, lastError: 'broker down' };
    assert.equal((await get(app, '/ready')).status, 200, 'buffering is fine at first');
    now += 30_000;
    assert.equal((await get(app, '/ready')).status, 200, 'exactly spoolStallMs is still fine');
    now += 1_000;
    const stalled = await get(app, '/ready');
    assert.equal(stalled.status, 503);
    assert.equal(
      (stalled.json().checks.log as RoleCheck).error,
      '3 appends (4096 bytes) buffered on disk and none sent to Kafka for 31 s: broker down',
    );
    // Kafka takes one append: progress, ready again though the buffer is not empty yet.
    ingest.spool = { ...ingest.spool, pendingAppends: 2, drainedAppends: 1 };
    now += 1_000;
    assert.equal((await get(app, '/ready')).status, 200);
    now += 31_000;
    assert.equal((await get(app, '/ready')).status, 503, 'stalled again');
    ingest.spool = { ...ingest.spool, pendingAppends: 0, spoolBytes: 0 };
    assert.equal((await get(app, '/ready')).status, 200, 'an empty buffer is never stalled');
  });

  it('is not ready when a feed failed, naming it', async () => {
    ingest.feeds = [
      ...ingest.feeds,
      { name: 'ib', type: 'ib', state: 'failed', messages: 0, lastMessageAt: null, error: 'no entitlement' },
    ];
    const failed = await get(app, '/ready');
    assert.equal(failed.status, 503);
    assert.equal(failed.json().error.message, 'feeds: ib failed: no entitlement');
    ingest.feeds = ingest.feeds.slice(0, 1);
  });

  it('/metrics passes promtool check metrics', { skip: PROMTOOL_SKIP }, async () => {
    assertPromtoolClean((await get(app, '/metrics')).text);
  });
});

/** A MemoryStore whose writes fail while `failing` is set, as a database outage would. */
class SwitchableStore extends MemoryStore {
  failing = false;
  override async write(batch: StoreBatch): Promise<void> {
    if (this.failing) throw new Error('connection refused');
    return super.write(batch);
  }
}

const SYMBOLS = ['AAA', 'BBB', 'CCC', 'DDD'];

async function appendTicks(log: MemoryLog, count: number): Promise<void> {
  const records = [];
  for (let seq = 0; seq < count; seq++) {
    const symbol = SYMBOLS[seq % SYMBOLS.length]!;
    const value: IngestEntry = {
      kind: 'tick',
      source: 't',
      symbol,
      ts: 1_700_000_000_000 + seq * 1_000,
      price: 100 + Math.sin(seq),
      size: 1,
      id: String(seq),
      receivedAt: Date.now(),
      seq,
    };
    records.push({ key: symbol, value });
  }
  await log.append(TOPIC_TICKS, records);
}

describe('process role server over a real ProcessRole', () => {
  let log: MemoryLog;
  let store: SwitchableStore;
  let role: ProcessRole;
  let readiness: ProcessReadiness;
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    log = new MemoryLog({ partitions: 2 });
    store = new SwitchableStore();
    const metrics = new ProcessMetrics({ latencySampleEvery: 1 });
    role = new ProcessRole({
      log,
      store,
      leases: new SoleLeases(),
      config: { latenessMs: 10_000, priceRules: [], anomaly: { ...DEFAULT_ANOMALY, enabled: false } },
      metrics: metrics.batch,
      rebalanceMs: 30,
    });
    metrics.bind(role);
    readiness = new ProcessReadiness(role);
    app = await buildRoleServer({ metrics, readiness });
    url = await listenRoleServer(app, '127.0.0.1', 0);
    await role.start();
    readiness.markStarted();
  });

  after(async () => {
    await app?.close();
    await role?.stop();
  });

  async function scrape() {
    const response = await fetch(`${url}/metrics`);
    assert.equal(response.status, 200);
    return parseExposition(await response.text());
  }

  it('listens on the address given and reports the partitions it owns with their committed counters', async () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    await appendTicks(log, 400);
    await waitUntil(() => role.committedOffset() === 400, 'both partitions to commit');
    const samples = await scrape();
    assert.equal(sampleValue(samples, 'streamlines_partitions_owned'), 2);
    let accepted = 0;
    for (const partition of [0, 1]) {
      const label = { partition: String(partition) };
      const checkpoint = await store.checkpoint(partitionCheckpoint(partition));
      assert.ok(checkpoint, `partition ${partition} has a checkpoint`);
      const counters = (checkpoint.state as { counters: Counters }).counters;
      assert.ok(counters.accepted > 0, `partition ${partition} got ticks`);
      // What the metrics say is what the partition's checkpoint in the store says.
      assert.equal(
        sampleValue(samples, 'streamlines_partition_ticks_accepted_total', label),
        counters.accepted,
      );
      assert.equal(
        sampleValue(samples, 'streamlines_partition_records_received_total', label),
        counters.received,
      );
      assert.equal(
        sampleValue(samples, 'streamlines_partition_committed_offset', label),
        checkpoint.offsets[partition],
      );
      accepted += counters.accepted;
    }
    assert.equal(accepted, 400, 'every tick is valid and new');
    // One tick in 1 is observed: 400 processed-latency samples over the batches.
    assert.equal(sampleValue(samples, 'streamlines_tick_processed_latency_seconds_count'), 400);
    assert.ok(sampleValue(samples, 'streamlines_store_write_duration_seconds_count') >= 2);
    assert.equal(sampleValue(samples, 'streamlines_store_write_errors_total'), 0);
    assert.equal(sampleValue(samples, 'streamlines_store_checkpoint_conflicts_total'), 0);
    assert.equal((await fetch(`${url}/ready`)).status, 200);
  });

  it('counts failing store writes and is not ready until they succeed again', async () => {
    store.failing = true;
    await appendTicks(log, 40);
    await waitUntil(async () => (await fetch(`${url}/ready`)).status === 503, 'the write to fail');
    const body = (await (await fetch(`${url}/ready`)).json()) as { checks: Record<string, RoleCheck> };
    assert.match(body.checks.store?.error ?? '', /^partition \d write failing: connection refused/);
    assert.equal(body.checks.store?.code, 'store_write_failed');
    assert.ok(sampleValue(await scrape(), 'streamlines_store_write_errors_total') >= 1);
    store.failing = false;
    await waitUntil(() => role.committedOffset() === 440, 'the retry to commit');
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    const errors = sampleValue(await scrape(), 'streamlines_store_write_errors_total');
    assert.equal(
      sampleValue(await scrape(), 'streamlines_store_write_errors_total'),
      errors,
      'no more errors',
    );
  });

  it('is not ready while the partition leases are lost', async () => {
    role.leasesLost(new Error('terminating connection due to administrator command'));
    const lost = await app.inject({ method: 'GET', url: '/ready' });
    assert.equal(lost.statusCode, 503);
    assert.equal(
      lost.json().error.message,
      'store: partition leases lost: terminating connection due to administrator command',
    );
    // SoleLeases reopen at once: the next round renews them and takes the partitions back.
    await waitUntil(
      async () => (await app.inject({ method: 'GET', url: '/ready' })).statusCode === 200,
      'renewal',
    );
    await waitUntil(() => role.owned().length === 2, 'the partitions to be taken back');
  });

  it('/metrics passes promtool check metrics', { skip: PROMTOOL_SKIP }, async () => {
    assertPromtoolClean(await (await fetch(`${url}/metrics`)).text());
  });
});

describe('ProcessReadiness', () => {
  it('a checkpoint conflict (a handover) is not a failing store; owning nothing is ready', () => {
    const conflict = Object.assign(new Error('checkpoint moved'), { name: 'CheckpointConflictError' });
    let partitions = [{ partition: 3, writeError: conflict as unknown }];
    const readiness = new ProcessReadiness({ partitions: () => partitions, leasesError: () => undefined });
    readiness.markStarted();
    assert.deepEqual(readiness.checks(), {
      started: { ok: true },
      store: { ok: true },
    });
    partitions = [];
    assert.equal(
      Object.values(readiness.checks()).every((check) => check.ok),
      true,
    );
  });
});

describe('the dependency checks of the distributed roles', () => {
  it('calls Kafka unavailable once its brokers have not answered for 3 s, not before, not before opening', () => {
    const answeredAt = 1_000_000;
    assert.deepEqual(checkKafka({ answeredAt: 0, error: undefined }, answeredAt), { ok: true });
    assert.deepEqual(checkKafka({ answeredAt, error: undefined }, answeredAt + KAFKA_SILENT_MS), {
      ok: true,
    });
    assert.deepEqual(
      checkKafka({ answeredAt, error: new Error('connect ECONNREFUSED 127.0.0.1:9092') }, answeredAt + 7_400),
      {
        ok: false,
        code: 'log_unavailable',
        error: 'Kafka has not answered for 7 s: connect ECONNREFUSED 127.0.0.1:9092',
      },
    );
  });

  it('ingest names Kafka in its `log` check before the disk buffer stalls', async () => {
    const ingest = new FakeIngest();
    let now = 5_000_000;
    const reach = { answeredAt: now, error: undefined as unknown };
    const readiness = new IngestReadiness(Object.assign(ingest, { kafka: () => reach }), {
      spoolStallMs: 60_000,
      now: () => now,
    });
    readiness.markStarted();
    now += 4_000;
    reach.error = new Error('broker down');
    const app = await buildRoleServer({
      metrics: new IngestMetrics({ feeds: () => [], spool: () => ingest.spool }, { processMetrics: false }),
      readiness,
    });
    try {
      const ready = await get(app, '/ready');
      assert.equal(ready.status, 503);
      assert.deepEqual(ready.json().checks.log, {
        ok: false,
        code: 'log_unavailable',
        error: 'Kafka has not answered for 4 s: broker down',
      });
    } finally {
      await app.close();
    }
  });

  it('Redis down leaves a processor degraded (200), not unavailable', async () => {
    let problem: string | undefined = '2 of 3 connections down (connect ECONNREFUSED 127.0.0.1:6379)';
    const readiness = new ProcessReadiness({
      partitions: () => [],
      leasesError: () => undefined,
      cacheProblem: () => problem,
    });
    readiness.markStarted();
    const app = await buildRoleServer({ metrics: new ProcessMetrics({ processMetrics: false }), readiness });
    try {
      const degraded = await get(app, '/ready');
      assert.equal(degraded.status, 200);
      assert.equal(degraded.json().status, 'degraded');
      assert.deepEqual(degraded.json().checks.cache, {
        ok: false,
        required: false,
        code: 'cache_unavailable',
        error:
          'Redis unreachable, live updates paused (the store still gets everything): 2 of 3 connections down (connect ECONNREFUSED 127.0.0.1:6379)',
      });
      problem = undefined;
      assert.equal((await get(app, '/ready')).json().status, 'ready');
    } finally {
      await app.close();
    }
  });

  it('a lost lease and failing writes are one `store` fault, logged once at each end by the watch', async () => {
    let lost: unknown;
    let partitions: { partition: number; writeError: unknown }[] = [];
    const readiness = new ProcessReadiness({ partitions: () => partitions, leasesError: () => lost });
    const lines: string[] = [];
    const health = new HealthRegistry({ log: (event) => lines.push(`${event.kind}: ${event.message}`) });
    const look = () => reportChecks(readiness, health);
    look();
    partitions = [{ partition: 1, writeError: new Error('connection refused') }];
    look();
    // The leases go and the partitions with them: still the same fault, with another cause.
    lost = new Error('terminating connection');
    partitions = [];
    look();
    assert.equal(health.degradedEntries()[0]?.code, 'store_unavailable');
    look();
    lost = undefined;
    look();
    look();
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.equal(lines[0], 'degraded: store degraded: partition 1 write failing: connection refused');
    assert.match(
      lines[1]!,
      /^recovered: store ok again after \d+ ms \(\d+ reports; last: partition leases lost: terminating connection\)$/,
    );
  });
});
