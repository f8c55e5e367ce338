/**
 * Prometheus metrics for the whole pipeline, on a registry of their own (never prom-client's
 * global one, so two pipelines in one process never collide). Hot paths only ever touch the
 * latency histograms, once per batch and for a sample of ticks; every counter the pipeline already
 * keeps (the processor's committed counters, the WebSocket hub's counters, the feeds' status) is
 * read at scrape time by `collect()` callbacks, so it costs nothing per tick and always equals
 * `GET /api/v1/stats`. Every metric is described in docs/metrics.md.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { HealthEntry } from '../../core/health.ts';
import {
  type FeedStatus,
  LIVE_FEED_STATES,
  type LiveListener,
  liveValue,
  type PipelineView,
  type SinkStatus,
  type Stats,
} from '../../core/pipeline-view.ts';
import { REJECT_REASONS } from '../../core/records.ts';
import type { BatchMetricsRecorder } from '../../process/batch-metrics.ts';
import { LIMIT_NAMES, type LimitCounters } from '../edge/limit-counters.ts';
import { WS_ERROR_CODES } from '../errors.ts';
import type { ConnectionBudget } from '../ws/connection-budget.ts';
import type { WsHub, WsHubStats } from '../ws/ws-hub.ts';

/**
 * Observe one tick in this many. prom-client's `observe` costs 230-630 ns on this (shared, noisy)
 * machine, so the two tick histograms on every tick would take 0.5-1.2 µs, 12-30 % of the 4 µs a
 * tick may take at 250k ticks/s. One in 32 brings that to about 1 % at worst, and still gives
 * thousands of samples a second at full speed and one or two a second on a 50 ticks/s feed.
 */
export const DEFAULT_LATENCY_SAMPLE_EVERY = 32;

/** Seconds; from 1 ms (ticks carry ms timestamps) to 10 s (a pipeline that far behind is broken). */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Seconds; one store transaction, from a memory store's 50 µs to a stalled disk's seconds. */
export const STORE_WRITE_BUCKETS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** Every state a feed can be in; `streamlines_feed_state` shows all of them, 1 for the current one. */
const FEED_STATES: readonly FeedStatus['state'][] = [
  'starting',
  'running',
  'ended',
  'stopped',
  'failed',
  ...LIVE_FEED_STATES,
];

export interface PipelineMetricsOptions {
  /** Observe the latency of one tick in this many (default 32); 1 observes every tick. */
  latencySampleEvery?: number;
  /** Node.js process metrics (CPU, memory, event loop lag, GC), shared by the process (default true). */
  processMetrics?: boolean;
}

/** What the metrics read at scrape time; the server binds them (`bind`). */
export interface MetricsSources {
  view: Pick<PipelineView, 'stats'>;
  hub: Pick<WsHub, 'stats'>;
  /** The server's protective limits: refusals by limit, and the WebSocket budget. */
  limits?: { counters: Pick<LimitCounters, 'snapshot'>; budget: Pick<ConnectionBudget, 'stats'> };
}

const LINT_FAILING_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** The shared process-metrics registry: prom-client's collectors start timers, so only one set per process. */
let processRegistry: Registry | undefined;

/** Node.js process metrics (CPU, memory, event loop, GC), one registry per process, made on first use. */
export function sharedProcessRegistry(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    const before = process.cpuUsage();
    collectDefaultMetrics({ register: processRegistry });
    // prom-client counts CPU from the moment its collector is made (here, at the first scrape of a
    // role's /metrics), not from the start of the process as Prometheus means: add what came before.
    for (const [name, micros] of [
      ['process_cpu_user_seconds_total', before.user],
      ['process_cpu_system_seconds_total', before.system],
      ['process_cpu_seconds_total', before.user + before.system],
    ] as const) {
      (processRegistry.getSingleMetric(name) as Counter | undefined)?.inc(micros / 1e6);
    }
    // Gauges named like counters, which promtool rejects; `nodejs_active_handles{type}` and the
    // like carry the same numbers per type (sum them for the total).
    for (const name of LINT_FAILING_DEFAULT_METRICS) processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}

/**
 * Mirrors a running total kept elsewhere onto a prom-client counter, so the counter stays
 * monotonic even when the total restarts from 0 (a feed stopped and started again counts its
 * messages from 0): a drop is taken as a restart and the new total is added on top.
 */
class MirroredTotals {
  readonly #last = new Map<string, number>();

  /** Adds the growth of `total` since the last call for the same `key` to `counter`. */
  update<T extends string>(
    counter: Counter<T>,
    key: string,
    labels: Partial<Record<T, string>>,
    total: number,
  ): void {
    if (!Number.isFinite(total) || total < 0) return;
    const last = this.#last.get(key) ?? 0;
    const growth = total >= last ? total - last : total;
    this.#last.set(key, total);
    if (growth > 0) counter.inc(labels, growth);
  }
}

/**
 * The process stage's metrics: tick latencies (sampled), store write time and store errors, on the
 * registry given. `run` and `streamlines process` expose the same names.
 */
export class BatchMetrics implements BatchMetricsRecorder {
  readonly #sampleEvery: number;
  /** Index, in the next batch, of the next tick to observe (sampling runs across batches). */
  #nextSample = 0;
  readonly #processedLatency: Histogram;
  readonly #storedLatency: Histogram;
  readonly #storeWrite: Histogram;
  readonly #writeErrors: Counter;
  readonly #checkpointConflicts: Counter;

  constructor(registry: Registry, latencySampleEvery: number) {
    this.#sampleEvery = latencySampleEvery;
    const registers = [registry];
    const sampled = latencySampleEvery === 1 ? '' : ` (one tick in ${latencySampleEvery} is observed)`;
    this.#processedLatency = new Histogram({
      name: 'streamlines_tick_processed_latency_seconds',
      help: `Wall-clock time from ingest receiving a tick to the processor having applied it${sampled}.`,
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.#storedLatency = new Histogram({
      name: 'streamlines_tick_stored_latency_seconds',
      help: `Wall-clock time from ingest receiving a tick to the store committing it${sampled}.`,
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.#storeWrite = new Histogram({
      name: 'streamlines_store_write_duration_seconds',
      help: 'Time of one store transaction (a processed batch with its checkpoint).',
      buckets: STORE_WRITE_BUCKETS_SECONDS,
      registers,
    });
    this.#writeErrors = new Counter({
      name: 'streamlines_store_write_errors_total',
      help: 'Store write attempts that failed (the processor rolls back and retries the batch); checkpoint conflicts not included.',
      registers,
    });
    this.#checkpointConflicts = new Counter({
      name: 'streamlines_store_checkpoint_conflicts_total',
      help: 'Commits the store refused because another processor had continued the partition (a partition handover, not an outage).',
      registers,
    });
  }

  recordBatch(
    ticks: readonly { receivedAt: number }[],
    processedAtMs: number,
    storedAtMs: number,
    storeWriteSeconds: number,
  ): void {
    this.#storeWrite.observe(storeWriteSeconds);
    const every = this.#sampleEvery;
    let index = this.#nextSample;
    for (; index < ticks.length; index += every) {
      const receivedAt = ticks[index]!.receivedAt;
      // Clamped: in distributed mode ingest's clock may run ahead of this machine's.
      this.#processedLatency.observe(Math.max(0, processedAtMs - receivedAt) / 1000);
      this.#storedLatency.observe(Math.max(0, storedAtMs - receivedAt) / 1000);
    }
    this.#nextSample = index - ticks.length;
  }

  recordWriteError(): void {
    this.#writeErrors.inc();
  }

  recordCheckpointConflict(): void {
    this.#checkpointConflicts.inc();
  }
}

/** Checks a latency sample rate: a positive integer. */
export function checkSampleEvery(every: number): number {
  if (!Number.isSafeInteger(every) || every < 1) {
    throw new RangeError(`latencySampleEvery must be a positive integer, got ${String(every)}`);
  }
  return every;
}

/** The pipeline's metrics registry, the hot-path recorders and the scrape. */
export class PipelineMetrics {
  /** This instance's own registry (process metrics included unless turned off). */
  readonly registry: Registry;
  /** The pipeline metrics alone; `registry` adds the shared process metrics to them. */
  readonly #own = new Registry();
  readonly #sampleEvery: number;
  #sources: MetricsSources | undefined;
  /** One stats snapshot per scrape, so related counters agree with each other. */
  #stats: Stats | undefined;
  #hubStats: WsHubStats | undefined;
  readonly #totals = new MirroredTotals();
  /** Tick messages until the next one the WebSocket histogram samples. */
  #liveCountdown = 1;

  /** The process stage's recorder (batch latencies, store write time and errors): pass it as `metrics`. */
  readonly batch: BatchMetrics;
  readonly #sentLatency: Histogram;

  constructor(options: PipelineMetricsOptions = {}) {
    const every = checkSampleEvery(options.latencySampleEvery ?? DEFAULT_LATENCY_SAMPLE_EVERY);
    this.#sampleEvery = every;
    const registers = [this.#own];
    const sampled = every === 1 ? '' : ` (one tick in ${every} is observed)`;

    this.batch = new BatchMetrics(this.#own, every);
    this.#sentLatency = new Histogram({
      name: 'streamlines_tick_ws_sent_latency_seconds',
      help: `Wall-clock time from ingest receiving a tick to the WebSocket hub sending it to at least one client${sampled}.`,
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });

    this.#registerPipelineCounters();
    this.#registerLogGauges();
    this.#registerWsMetrics();
    this.#registerFeedMetrics();

    this.registry =
      (options.processMetrics ?? true) ? Registry.merge([this.#own, sharedProcessRegistry()]) : this.#own;
  }

  /** The Content-Type of `render()`'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Points the scrape-time metrics at the running pipeline and the WebSocket hub. */
  bind(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<string> {
    this.#stats = this.#readStats();
    this.#hubStats = this.#sources?.hub.stats();
    try {
      return await this.registry.metrics();
    } finally {
      this.#stats = undefined;
      this.#hubStats = undefined;
    }
  }

  /**
   * Wraps the hub's `publish` so a sample of tick messages is timed from `receivedAt` to the
   * moment the hub handed them to the sockets. Only tick messages some client received count,
   * which the hub's `sent` counter tells; other messages pass through with one string check.
   */
  instrumentLive(hub: Pick<WsHub, 'publish' | 'stats'>): LiveListener {
    const publish = hub.publish;
    return (channel, data) => {
      if (!channel.startsWith('ticks:') || --this.#liveCountdown > 0) {
        publish(channel, data);
        return;
      }
      this.#liveCountdown = this.#sampleEvery;
      const sentBefore = hub.stats().sent;
      publish(channel, data);
      if (hub.stats().sent === sentBefore) return;
      const value = liveValue(data);
      const receivedAt =
        typeof value === 'object' && value !== null
          ? (value as { receivedAt?: unknown }).receivedAt
          : undefined;
      if (typeof receivedAt === 'number') {
        this.#sentLatency.observe(Math.max(0, Date.now() - receivedAt) / 1000);
      }
    };
  }

  #readStats(): Stats | undefined {
    try {
      return this.#sources?.view.stats();
    } catch {
      // A pipeline shutting down (its log closed) has no stats; the scrape still answers.
      return undefined;
    }
  }

  #currentStats(): Stats | undefined {
    return this.#stats ?? this.#readStats();
  }

  #currentHubStats(): WsHubStats | undefined {
    return this.#hubStats ?? this.#sources?.hub.stats();
  }

  /** Makes counters that follow the running totals `read()` returns, field by field; no stats, no change. */
  #mirroredCounters<K extends string>(
    read: () => Readonly<Record<K, number>> | undefined,
  ): (name: string, help: string, field: K) => Counter {
    const registers = [this.#own];
    const totals = this.#totals;
    return (name, help, field) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          const stats = read();
          if (stats) totals.update(this, name, {}, stats[field]);
        },
      });
  }

  /** A gauge set to `read()` at scrape time; it keeps its last value while that is undefined. */
  #scrapeGauge(name: string, help: string, read: () => number | undefined): void {
    new Gauge({
      name,
      help,
      registers: [this.#own],
      collect() {
        const value = read();
        if (value !== undefined) this.set(value);
      },
    });
  }

  /**
   * A counter by one label mirrored from the totals per label value `read()` returns; every value in
   * `known` has a series from the start, at 0.
   */
  #labelledCounter(
    name: string,
    help: string,
    label: string,
    known: readonly string[],
    read: () => Readonly<Record<string, number>> | undefined,
  ): void {
    const totals = this.#totals;
    const counter = new Counter({
      name,
      help,
      labelNames: [label],
      registers: [this.#own],
      collect() {
        for (const [value, count] of Object.entries(read() ?? {})) {
          totals.update(this, `${name}:${value}`, { [label]: value }, count);
        }
      },
    });
    for (const value of known) counter.inc({ [label]: value }, 0);
  }

  #registerPipelineCounters(): void {
    const fromStats = this.#mirroredCounters<
      'received' | 'accepted' | 'duplicates' | 'late' | 'candlesClosed' | 'alertsFired'
    >(() => this.#currentStats());
    fromStats(
      'streamlines_ingest_records_received_total',
      'Input records logged by ingest (accepted + rejected + duplicates), as committed by the processor; equals stats.received.',
      'received',
    );
    fromStats(
      'streamlines_ingest_ticks_accepted_total',
      'Valid, new ticks accepted into the log, as committed by the processor; equals stats.accepted.',
      'accepted',
    );
    fromStats(
      'streamlines_ingest_ticks_duplicate_total',
      'Ticks dropped because their (source, symbol, id) was already accepted; equals stats.duplicates.',
      'duplicates',
    );
    fromStats(
      'streamlines_process_ticks_late_total',
      'Ticks whose 1m bucket had already closed when they arrived (stored, in no candle); equals stats.late.',
      'late',
    );
    fromStats(
      'streamlines_process_candles_closed_total',
      'Candles that became final, all intervals; equals stats.candlesClosed.',
      'candlesClosed',
    );
    fromStats(
      'streamlines_process_alerts_fired_total',
      'Alerts fired (price rules, crosses, anomalies); equals stats.alertsFired.',
      'alertsFired',
    );
    this.#labelledCounter(
      'streamlines_ingest_records_rejected_total',
      'Input records rejected by ingest, by reason; the sum over reasons equals stats.rejected.',
      'reason',
      REJECT_REASONS,
      () => this.#currentStats()?.rejectedByReason,
    );
    this.#labelledCounter(
      'streamlines_retention_deleted_rows_total',
      'Rows store retention deleted, by table (dead letters by count, the rest by event time); equals stats.retention.deletedRows.',
      'table',
      RETENTION_TABLES,
      () => {
        const rows = this.#currentStats()?.retention?.deletedRows;
        if (rows === undefined) return undefined;
        const { ticks, candles, indicators, alerts, deadLetters } = rows;
        return { ticks, candles, indicators, alerts, dead_letters: deadLetters };
      },
    );
  }

  #registerLogGauges(): void {
    const fromStats = (name: string, help: string, read: (stats: Stats) => number) =>
      this.#scrapeGauge(name, help, () => {
        const stats = this.#currentStats();
        return stats && read(stats);
      });
    fromStats(
      'streamlines_log_end_offset',
      'Entries in the price-ticks log, all partitions (the offset the next entry gets).',
      (stats) => stats.logEndOffset,
    );
    fromStats(
      'streamlines_log_processed_offset',
      'Log entries the processor has committed to the store, all partitions.',
      (stats) => stats.processedOffset,
    );
    fromStats(
      'streamlines_log_lag_entries',
      'Log entries not yet committed by the processor: log end offset minus processed offset.',
      (stats) => Math.max(0, stats.logEndOffset - stats.processedOffset),
    );
    fromStats(
      'streamlines_pipeline_drained',
      '1 once every bounded feed (a replay) has ended and everything it produced is in the store, else 0.',
      (stats) => (stats.drained ? 1 : 0),
    );
  }

  #registerWsMetrics(): void {
    const gauge = (name: string, help: string, field: 'clients' | 'channels' | 'subscriptions') =>
      this.#scrapeGauge(name, help, () => this.#currentHubStats()?.[field]);
    gauge('streamlines_ws_clients', 'WebSocket clients connected.', 'clients');
    gauge('streamlines_ws_channels', 'Live channels with at least one WebSocket subscriber.', 'channels');
    gauge('streamlines_ws_subscriptions', 'WebSocket subscriptions, all clients.', 'subscriptions');
    const counter = this.#mirroredCounters<
      'published' | 'serialised' | 'sent' | 'dropped' | 'repliesDropped' | 'disconnected'
    >(() => this.#currentHubStats());
    counter(
      'streamlines_ws_messages_published_total',
      'Live messages the pipeline handed to the WebSocket hub, watched or not.',
      'published',
    );
    counter(
      'streamlines_ws_messages_serialised_total',
      'Live messages that had at least one subscriber (serialised once each).',
      'serialised',
    );
    counter(
      'streamlines_ws_messages_sent_total',
      'Live message deliveries to WebSocket clients (one per message and client).',
      'sent',
    );
    counter(
      'streamlines_ws_messages_dropped_total',
      'Live message deliveries dropped because the client had too many bytes queued (a slow client).',
      'dropped',
    );
    counter(
      'streamlines_ws_replies_dropped_total',
      'Control replies (subscribed, errors) dropped because the client had too many bytes queued.',
      'repliesDropped',
    );
    counter(
      'streamlines_ws_slow_clients_disconnected_total',
      'WebSocket clients closed with 1013 because they read too slowly (slowClient: disconnect).',
      'disconnected',
    );
    this.#labelledCounter(
      'streamlines_ws_errors_total',
      'Errors reported to WebSocket clients, by stable error code.',
      'code',
      WS_ERROR_CODES,
      () => this.#currentHubStats()?.errors,
    );
    this.#registerLimitMetrics();
  }

  #registerLimitMetrics(): void {
    const budgetGauge = (name: string, help: string, field: 'connections' | 'queuedBytes') =>
      this.#scrapeGauge(name, help, () => this.#sources?.limits?.budget.stats()[field]);
    budgetGauge(
      'streamlines_ws_connections',
      'Open WebSocket connections, /ws and /graphql together (server.ws.maxConnections).',
      'connections',
    );
    budgetGauge(
      'streamlines_ws_queued_bytes',
      'Bytes queued for all WebSocket clients together at the last check (server.ws.maxTotalQueuedBytes).',
      'queuedBytes',
    );
    this.#labelledCounter(
      'streamlines_serve_limit_refusals_total',
      'Requests, connections or frames refused, or clients shed, by a protective limit, by its config key under server.',
      'limit',
      LIMIT_NAMES,
      () => this.#sources?.limits?.counters.snapshot(),
    );
  }

  #registerFeedMetrics(): void {
    // Undefined when the pipeline has no stats (shutting down): the gauges keep their last values.
    registerFeedMetrics(this.#own, () => this.#currentStats()?.feeds);
    registerSinkMetrics(this.#own, () => this.#currentStats()?.sinks);
    registerHealthMetrics(this.#own, () => this.#currentStats()?.health);
  }
}

/**
 * `streamlines_dependency_degraded{dependency}`: 1 while the process reports the dependency degraded
 * (core/health.ts), 0 once it is ok; its cause and code are in `/ready` and the log.
 */
export function registerHealthMetrics(
  registry: Registry,
  entries: () => readonly HealthEntry[] | undefined,
): void {
  new Gauge({
    name: 'streamlines_dependency_degraded',
    help: 'A dependency (store, log, cache, retention, ...) this process reports degraded now: 1, or 0 once ok again; /ready and the log say why.',
    labelNames: ['dependency'],
    registers: [registry],
    collect() {
      const list = entries();
      if (!list) return;
      this.reset();
      for (const entry of list)
        this.set({ dependency: entry.dependency }, entry.status === 'degraded' ? 1 : 0);
    },
  });
}

/** The `table` label of streamlines_retention_deleted_rows_total: the store's table names. */
const RETENTION_TABLES = ['ticks', 'candles', 'indicators', 'alerts', 'dead_letters'] as const;

const SINK_STATES: readonly SinkStatus['state'][] = [
  'connecting',
  'live',
  'catching_up',
  'retrying',
  'stopped',
];

/** A feed or a sink: its series are labelled by its name and type. */
interface Member {
  name: string;
  type: string;
}

/**
 * Makers of metrics with one series per member (a feed or a sink), labelled `{[label]: name, type}`
 * and read from `members()` at scrape time. `undefined` members (a pipeline without stats, shutting
 * down) keep the last values; otherwise gauges are reset first, so a removed member's series goes away.
 */
function memberMetrics<M extends Member>(
  registry: Registry,
  label: 'feed' | 'sink',
  members: () => readonly M[] | undefined,
) {
  const registers = [registry];
  const totals = new MirroredTotals();
  const labels = (member: M): Record<string, string> => ({ [label]: member.name, type: member.type });
  /** A gauge set for each member to what `set` gives it (nothing for a member it gives `undefined`). */
  const gauge = (
    name: string,
    help: string,
    extraLabels: string[],
    set: (member: M) => { labels?: Record<string, string>; value: number }[] | undefined,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: [label, 'type', ...extraLabels],
      registers,
      collect() {
        const list = members();
        if (!list) return;
        this.reset();
        for (const member of list) {
          for (const one of set(member) ?? []) this.set({ ...labels(member), ...one.labels }, one.value);
        }
      },
    });
  return {
    /** One series per member, `value(member)`; a member whose value is `undefined` has none. */
    gauge: (name: string, help: string, value: (member: M) => number | undefined) =>
      gauge(name, help, [], (member) => {
        const one = value(member);
        return one === undefined ? undefined : [{ value: one }];
      }),
    /** One-hot: 1 for the state a member is in, 0 for each other of `states`. */
    state: (name: string, help: string, states: readonly string[], state: (member: M) => string) =>
      gauge(name, help, ['state'], (member) => {
        const current = state(member);
        const all = states.includes(current) ? states : [...states, current];
        return all.map((one) => ({ labels: { state: one }, value: one === current ? 1 : 0 }));
      }),
    /** 1 under the label value `kind(member)` gives, no series for a member it gives `undefined`. */
    kind: (name: string, help: string, kindLabel: string, kind: (member: M) => string | undefined) =>
      gauge(name, help, [kindLabel], (member) => {
        const one = kind(member);
        return one === undefined ? undefined : [{ labels: { [kindLabel]: one }, value: 1 }];
      }),
    /** A counter per member mirrored from its running total (members without one have no series). */
    counter: (name: string, help: string, total: (member: M) => number | undefined) =>
      new Counter({
        name,
        help,
        labelNames: [label, 'type'],
        registers,
        collect() {
          for (const member of members() ?? []) {
            const value = total(member);
            if (value !== undefined) totals.update(this, `${name}:${member.name}`, labels(member), value);
          }
        },
      }),
  };
}

/** Per-sink metrics (issue #15), read from the pipeline's stats at scrape time. */
export function registerSinkMetrics(
  registry: Registry,
  sinks: () => readonly SinkStatus[] | undefined,
): void {
  const { gauge, state, counter } = memberMetrics(registry, 'sink', sinks);
  state(
    'streamlines_sink_state',
    'Sink state: 1 for the state the sink is in, 0 for the others.',
    SINK_STATES,
    (sink) => sink.state,
  );
  gauge(
    'streamlines_sink_lag_entries',
    'Log entries the processor committed whose output the sink target does not hold yet.',
    (sink) => sink.lagEntries,
  );
  gauge('streamlines_sink_backlog_rows', 'Rows queued in memory for the sink.', (sink) => sink.backlogRows);
  counter(
    'streamlines_sink_rows_total',
    'Rows the sink target accepted (re-deliveries included).',
    (sink) => sink.rowsDelivered,
  );
  counter(
    'streamlines_sink_errors_total',
    'Failed sink writes, each retried with backoff.',
    (sink) => sink.errors,
  );
  counter(
    'streamlines_sink_overflows_total',
    'Times the backlog overflowed and the sink switched to catching up from the log.',
    (sink) => sink.overflows,
  );
}

/**
 * Registers the per-feed metrics (state, messages, reconnects, last message age) on `registry`,
 * read from `feeds()` at scrape time; `undefined` keeps the last values. `run` and
 * `streamlines ingest` expose them under the same names, so the feed alert rules fit both.
 */
export function registerFeedMetrics(
  registry: Registry,
  feeds: () => readonly FeedStatus[] | undefined,
): void {
  const { gauge, state, kind, counter } = memberMetrics(registry, 'feed', feeds);
  state(
    'streamlines_feed_state',
    'Feed state: 1 for the state the feed is in, 0 for the others (live feeds: connecting, connected, reconnecting, failing, fatal).',
    FEED_STATES,
    (feed) => feed.state,
  );
  counter(
    'streamlines_feed_messages_total',
    'Records read from the feed by this process (kept across stops and restarts of the feed).',
    (feed) => feed.messages,
  );
  counter(
    'streamlines_feed_reconnects_total',
    'Times the feed reconnected to its provider (feeds that never reconnect have no series).',
    // `reconnects` is optional: only connection-based feeds report it.
    (feed) => {
      const reconnects = (feed as FeedStatus & { reconnects?: unknown }).reconnects;
      return typeof reconnects === 'number' ? reconnects : undefined;
    },
  );
  gauge(
    'streamlines_feed_failed_attempts',
    'Connection attempts of a live feed that failed since it was last connected (0 while connected).',
    (feed) => feed.failedAttempts,
  );
  kind(
    'streamlines_feed_cause',
    'Why a live feed is not connected: 1 for the kind of its cause (dns, refused, tls, http, timeout, network, closed, stale, provider); no series while connected.',
    'cause',
    (feed) => (feed.connected ? undefined : feed.causeKind),
  );
  gauge(
    'streamlines_feed_last_message_age_seconds',
    'Seconds since the feed last delivered a record (no series until its first record).',
    (feed) => (feed.lastMessageAt === null ? undefined : Math.max(0, Date.now() - feed.lastMessageAt) / 1000),
  );
}
