/**
 * Prometheus metrics of the distributed roles that have no API server (`streamlines ingest` and
 * `streamlines process --port`), each on a registry of its own plus the shared process metrics.
 * The names they share with `run` (feeds, tick latencies, store writes) are the same metrics, made
 * by the same code in pipeline-metrics.ts, so dashboards and alert rules fit both modes. Everything
 * is read at scrape time except the batch recorders. Every metric is described in docs/metrics.md.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { HealthEntry } from '../../core/health.ts';
import type { FeedStatus } from '../../core/pipeline-view.ts';
import type { Counters } from '../../core/records.ts';
import {
  BatchMetrics,
  checkSampleEvery,
  DEFAULT_LATENCY_SAMPLE_EVERY,
  registerFeedMetrics,
  registerHealthMetrics,
  sharedProcessRegistry,
} from './pipeline-metrics.ts';

export interface RoleMetricsOptions {
  /** Node.js process metrics (CPU, memory, event loop lag, GC), shared by the process (default true). */
  processMetrics?: boolean;
}

/** The counters of the ingest disk buffer (a SpoolingLog's `stats()`). */
export interface SpoolCounters {
  spoolBytes: number;
  pendingAppends: number;
  spooledAppends: number;
  fullWaits: number;
}

/** What the ingest metrics read at scrape time. */
export interface IngestMetricsSources {
  feeds(): readonly FeedStatus[];
  spool(): SpoolCounters;
  /** The role's health registry entries (`streamlines_dependency_degraded`). */
  health?(): readonly HealthEntry[];
}

/** One owned partition as the process metrics read it (ProcessRole's `partitions()`). */
export interface PartitionCounters {
  partition: number;
  committedOffset: number;
  counters: Counters;
}

/** What the process metrics read at scrape time. */
export interface ProcessMetricsSources {
  partitions(): readonly PartitionCounters[];
  /** The role's health registry entries (`streamlines_dependency_degraded`). */
  health?(): readonly HealthEntry[];
}

/** A registry scraped as one: the role's own metrics, plus the process metrics when asked. */
abstract class RoleMetrics {
  /** The role's metrics alone. */
  protected readonly own = new Registry();
  readonly #processMetrics: boolean;
  #registry: Registry | undefined;

  constructor(options: RoleMetricsOptions) {
    this.#processMetrics = options.processMetrics ?? true;
  }

  /** The registry `render()` reads. */
  get registry(): Registry {
    // Merged on first use: a merge copies the metrics registered so far, so it must come after the
    // subclass constructor registered them all.
    this.#registry ??= this.#processMetrics ? Registry.merge([this.own, sharedProcessRegistry()]) : this.own;
    return this.#registry;
  }

  /** The Content-Type of `render()`'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Sets a counter that mirrors a total which only grows while this process runs. */
function setTotal(counter: Counter, total: number): void {
  counter.reset();
  counter.inc(total);
}

/** `streamlines ingest`: its feeds (same metrics as `run`) and its disk buffer. */
export class IngestMetrics extends RoleMetrics {
  constructor(sources: IngestMetricsSources, options: RoleMetricsOptions = {}) {
    super(options);
    const registers = [this.own];
    registerFeedMetrics(this.own, () => sources.feeds());
    registerHealthMetrics(this.own, () => sources.health?.());
    const gauge = (name: string, help: string, field: 'spoolBytes' | 'pendingAppends') =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(sources.spool()[field]);
        },
      });
    // Both are counts of this process's work (SpoolStats), so they restart at 0 with it.
    const counter = (name: string, help: string, field: 'spooledAppends' | 'fullWaits') =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          setTotal(this, sources.spool()[field]);
        },
      });
    gauge(
      'streamlines_ingest_spool_bytes',
      'Bytes of appends buffered on disk because Kafka was unreachable or slow, waiting to be sent.',
      'spoolBytes',
    );
    gauge(
      'streamlines_ingest_spool_pending_appends',
      'Appends buffered on disk, waiting to be sent to Kafka.',
      'pendingAppends',
    );
    counter(
      'streamlines_ingest_spooled_appends_total',
      'Appends this process wrote to the disk buffer instead of Kafka (Kafka failed or took too long).',
      'spooledAppends',
    );
    counter(
      'streamlines_ingest_spool_full_waits_total',
      'Appends that waited for room in a full disk buffer (ingest stopped reading its feeds meanwhile).',
      'fullWaits',
    );
  }
}

/** The committed counters each owned partition exposes, as `streamlines_partition_<name>_total`. */
const PARTITION_COUNTERS: readonly [
  name: string,
  field: Exclude<keyof Counters, 'rejectedByReason'>,
  help: string,
][] = [
  ['records_received', 'received', 'Input records of the partition: accepted + rejected + duplicates.'],
  ['ticks_accepted', 'accepted', 'Valid, new ticks of the partition.'],
  ['records_rejected', 'rejected', 'Input records of the partition rejected by ingest, all reasons.'],
  ['ticks_duplicate', 'duplicates', 'Ticks of the partition dropped as duplicates.'],
  ['ticks_late', 'late', 'Ticks of the partition whose 1m bucket had closed when they arrived.'],
  ['candles_closed', 'candlesClosed', 'Candles of the partition that became final, all intervals.'],
  ['alerts_fired', 'alertsFired', 'Alerts fired by the partition.'],
];

/**
 * `streamlines process`: batch latencies, store write time and errors (as in `run`), and the
 * partitions this process owns with their committed counters.
 */
export class ProcessMetrics extends RoleMetrics {
  /** The runners' recorder (batch latencies, store write time and errors): pass it as `metrics`. */
  readonly batch: BatchMetrics;
  #sources: ProcessMetricsSources | undefined;

  constructor(options: RoleMetricsOptions & { latencySampleEvery?: number } = {}) {
    super(options);
    this.batch = new BatchMetrics(
      this.own,
      checkSampleEvery(options.latencySampleEvery ?? DEFAULT_LATENCY_SAMPLE_EVERY),
    );
    const registers = [this.own];
    const partitions = () => this.#sources?.partitions();
    registerHealthMetrics(this.own, () => this.#sources?.health?.());
    // One series per partition owned now, reset on every scrape so a partition handed over stops
    // being reported here.
    const eachOwned = (
      metric: { reset(): void },
      report: (labels: { partition: string }, status: PartitionCounters) => void,
    ): void => {
      const owned = partitions();
      if (!owned) return;
      metric.reset();
      for (const status of owned) report({ partition: String(status.partition) }, status);
    };
    new Gauge({
      name: 'streamlines_partitions_owned',
      help: 'Partitions of price-ticks this processor owns now.',
      registers,
      collect() {
        const owned = partitions();
        if (owned) this.set(owned.length);
      },
    });
    new Gauge({
      name: 'streamlines_partition_committed_offset',
      help: 'Log offset of the partition committed to the store (series only for partitions owned now).',
      labelNames: ['partition'],
      registers,
      collect() {
        eachOwned(this, (labels, status) => this.set(labels, status.committedOffset));
      },
    });
    for (const [name, field, help] of PARTITION_COUNTERS) {
      new Counter({
        name: `streamlines_partition_${name}_total`,
        help: `${help} Lifetime total from the partition's checkpoint; the series moves with the partition.`,
        labelNames: ['partition'],
        registers,
        collect() {
          // The totals come from the partition's checkpoint: they continue on whichever processor
          // owns the partition and never go down, so they are exposed as they are.
          eachOwned(this, (labels, status) => this.inc(labels, status.counters[field]));
        },
      });
    }
  }

  /** Points the scrape-time metrics at the running role. */
  bind(sources: ProcessMetricsSources): void {
    this.#sources = sources;
  }
}
