/**
 * The roles of the distributed mode (docs/design.md, Modes): `ingest` (feeds → Kafka), `process` (Kafka →
 * PostgreSQL, several processes sharing the partitions) and `serve` (PostgreSQL + Redis → clients).
 * Each role builds the same stage implementations the embedded pipeline uses, from the same config.
 */
import path from 'node:path';
import { createLivePublisher } from '../cache/live-publisher.ts';
import { closeCache, createCache, openCache } from '../cache/registry.ts';
import { RemotePipelineView, type StatsSnapshot, type StatsSource } from '../cache/remote-pipeline-view.ts';
import type { Config } from '../config/schema.ts';
import { type HealthEvent, HealthRegistry, type HealthReporter } from '../core/health.ts';
import type { FeedStatus } from '../core/pipeline-view.ts';
import { type Counters, emptyCounters, TOPIC_TICKS } from '../core/records.ts';
import type { Feed } from '../feeds/feed.ts';
import { createFeed } from '../feeds/registry.ts';
import { Ingest } from '../ingest/ingest.ts';
import { archivedBeforeMs } from '../lake/archive.ts';
import { withLakeReads } from '../lake/lake-store.ts';
import { KafkaLog } from '../log/kafka/kafka-log.ts';
import { type KafkaLogConfig, kafkaLogOptions } from '../log/kafka/kafka-log-config.ts';
import { kafkaOffsetOf } from '../log/kafka/packed-records.ts';
import type { Log } from '../log/log.ts';
import { createLog } from '../log/registry.ts';
import { SpoolingLog } from '../log/spool/spooling-log.ts';
import type { BatchMetricsRecorder } from '../process/batch-metrics.ts';
import { PostgresPartitionLeases } from '../store/postgres/partition-leases.ts';
import { createStore } from '../store/registry.ts';
import { StoreRetention } from '../store/retention.ts';
import type { Store } from '../store/store.ts';
import { lockDataDir } from './data-dir-lock.ts';
import { watchPauses } from './pause-watch.ts';
import { ProcessRole, partitionCheckpoint } from './process-role.ts';
import { retentionHealth } from './retention-health.ts';
import {
  checkCache,
  checkKafka,
  type KafkaReachability,
  type ProcessHealthSource,
  type RoleCheck,
  watchRoleHealth,
} from './role-server.ts';

export type Role = 'ingest' | 'process' | 'serve';

/** A config that cannot run the role; the message says what to set. */
export class RoleConfigError extends Error {
  override readonly name = 'RoleConfigError';
}

/**
 * Checks that the config names engines several processes can share: Kafka for every role, and a
 * store other processes can reach for `process` and `serve`.
 */
export function checkRoleConfig(config: Config, role: Role): KafkaLogConfig {
  if (config.log.type !== 'kafka') {
    throw new RoleConfigError(
      `"${role}" needs a log that processes share: set log.type to "kafka" (the ${config.log.type} log lives inside one process; "streamlines run" runs every stage on it)`,
    );
  }
  if (role !== 'ingest' && config.store.type !== 'postgres') {
    throw new RoleConfigError(
      `"${role}" needs a store that processes share: set store.type to "postgres" (the ${config.store.type} store is opened by one process only)`,
    );
  }
  return config.log;
}

/**
 * The Kafka consumer group the processors report their committed offsets to, so Kafka's lag tools
 * see them. Ownership of partitions is not Kafka's to decide here: see process-role.ts.
 */
export function processGroupId(log: KafkaLogConfig): string {
  return `${log.topicPrefix}${log.clientId}-process`;
}

/** Kafka transactional ids are cluster-wide: the topic prefix keeps deployments apart. */
function transactionalId(log: KafkaLogConfig, name: string): string {
  return `${log.topicPrefix}${log.clientId}-${name}`;
}

/** Feeds → ingest → Kafka, with a bounded disk buffer while the brokers are unreachable. */
export class IngestRole {
  readonly feeds: Feed[];
  readonly log: SpoolingLog;
  readonly #kafka: Log;
  readonly #ingest: Ingest;
  readonly #dataDir: string;
  readonly #abort = new AbortController();
  readonly #runs: Promise<void>[] = [];
  readonly #onFeedError: ((feed: Feed, error: unknown) => void) | undefined;
  readonly #onProgress: ((message: string) => void) | undefined;
  #unlock: (() => Promise<void>) | undefined;

  constructor(options: {
    config: Config;
    dataDir: string;
    onFeedError?: (feed: Feed, error: unknown) => void;
    /** Hears about slow steps (a disk buffer to send before starting). */
    onProgress?: (message: string) => void;
  }) {
    const { config, dataDir } = options;
    const kafka = checkRoleConfig(config, 'ingest');
    this.#dataDir = dataDir;
    this.#onFeedError = options.onFeedError;
    this.#onProgress = options.onProgress;
    const inner = createLog(
      { ...kafka, transactionalId: kafka.transactionalId ?? transactionalId(kafka, 'ingest') },
      dataDir,
    );
    this.#kafka = inner;
    this.log = new SpoolingLog({ inner, dir: path.join(dataDir, 'spool'), maxBytes: kafka.spoolMaxBytes });
    this.feeds = config.feeds.map((feed) => createFeed(feed, config.symbols));
    this.#ingest = new Ingest(this.log, { stampSeq: true, dedupHorizonMs: config.dedupHorizon });
  }

  /** Locks the data dir (the spool lives there), opens the log and starts every feed. */
  async start(): Promise<void> {
    this.#unlock = await lockDataDir(this.#dataDir);
    await this.log.open();
    // Appends left in the disk buffer by the last run go to Kafka first, so ingest starts from the
    // feed positions and dedup state Kafka's producer state holds (the spool's newest, once sent).
    if (this.log.stats().pendingAppends > 0) {
      this.#onProgress?.(`sending ${this.log.stats().pendingAppends} buffered appends to Kafka first`);
      await this.log.drained();
    }
    await this.#ingest.open();
    for (const feed of this.feeds) {
      this.#runs.push(
        this.#ingest
          .runFeed(feed, this.#abort.signal)
          .catch((error: unknown) => this.#onFeedError?.(feed, error)),
      );
    }
  }

  feedStatuses(): FeedStatus[] {
    return this.#ingest.feedStatuses();
  }

  /** Whether Kafka's brokers answer (the disk buffer hides an outage from the feeds). */
  kafka(): KafkaReachability {
    return this.#kafka instanceof KafkaLog ? this.#kafka.reachability() : { answeredAt: 0, error: undefined };
  }

  /** True once every feed is bounded and has ended (its end entry is appended or spooled). */
  ended(): boolean {
    return (
      this.feeds.length > 0 && this.feeds.every((feed) => feed.bounded && this.#ingest.hasEnded(feed.name))
    );
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#runs);
    await this.log.close();
    await this.#unlock?.();
  }
}

/** A processor of the partitions it wins, publishing live data to the cache's bus. */
export function createProcessRole(options: {
  config: Config;
  dataDir: string;
  onEvent?: (message: string) => void;
  /** Hears every committed batch and store write error (`streamlines process --port` serves them). */
  metrics?: BatchMetricsRecorder;
  /** Where faults the role sees itself go (store retention failing); else `onEvent` hears them. */
  health?: HealthReporter;
}): {
  role: ProcessRole;
  /** What its `/ready` checks: the store, the leases, Kafka and Redis. */
  health: ProcessHealthSource;
  start: () => Promise<void>;
  stop: () => Promise<void>;
} {
  const { config, dataDir } = options;
  const kafka = checkRoleConfig(config, 'process');
  const store = createStore(config.store, dataDir);
  // Connection errors are not logged one by one: the `cache` health check logs an outage once.
  const cache = createCache(config.cache);
  const publisher = createLivePublisher(cache);
  let role: ProcessRole | undefined;
  // checkRoleConfig made sure the store is PostgreSQL, which also arbitrates the partitions.
  const postgres = config.store as Extract<Config['store'], { type: 'postgres' }>;
  const leases = new PostgresPartitionLeases({
    url: postgres.url,
    scope: `${postgres.schema}:${kafka.topicPrefix}${TOPIC_TICKS}`,
    onLost: (error) => role?.leasesLost(error),
  });
  const log = new KafkaLog({ ...kafkaLogOptions(kafka), transactionalId: transactionalId(kafka, 'process') });
  role = new ProcessRole({
    log,
    store,
    leases,
    config: {
      latenessMs: config.lateness,
      priceRules: config.alerts.rules,
      maCross: config.alerts.maCross,
      anomaly: config.alerts.anomaly,
    },
    alertsLog: (partition) =>
      new KafkaLog({
        ...kafkaLogOptions(kafka),
        transactionalId: transactionalId(kafka, `alerts-p${partition}`),
      }),
    publish: publisher.publish,
    metrics: options.metrics,
    onEvent: options.onEvent,
    reportOffsets: (offsets) => log.commitGroupOffsets(processGroupId(kafka), TOPIC_TICKS, offsets),
  });
  const processRole = role;
  // Every processor runs it: a DELETE of rows another one deleted already deletes nothing.
  const retention = new StoreRetention({
    store,
    ticksMs: config.retention.ticks,
    candlesMs: config.retention.candles,
    deadLetters: config.retention.deadLetters,
    // Rows leave PostgreSQL only once `streamlines archive` has them in the lake (docs/warehouse.md).
    holdBackBeforeMs: config.lake.enabled
      ? () =>
          archivedBeforeMs(
            store,
            Array.from({ length: log.partitions(TOPIC_TICKS) }, (_, partition) =>
              partitionCheckpoint(partition),
            ),
          )
      : undefined,
    ...(options.health
      ? retentionHealth(options.health)
      : {
          onError: (error: unknown) =>
            options.onEvent?.(`retention: ${error instanceof Error ? error.message : String(error)}`),
        }),
  });
  return {
    role: processRole,
    health: {
      partitions: () => processRole.partitions(),
      leasesError: () => processRole.leasesError(),
      kafka: () => log.reachability(),
      cacheProblem: () => cache.problem(),
    },
    start: async () => {
      await openCache(cache);
      await processRole.start();
      retention.start();
    },
    stop: async () => {
      await retention.stop();
      await processRole.stop();
      await publisher.flushed();
      await closeCache(cache);
    },
  };
}

/**
 * The counters of every partition's checkpoint, summed: they are exactly what the store holds.
 * `drained` once every partition's processor has committed the end of the bounded input (ingest
 * appends an `end` entry to every partition, behind everything before it).
 */
export class PartitionedStatsSource implements StatsSource {
  readonly #store: Pick<Store, 'checkpoint'>;
  readonly #log: Log;

  constructor(options: { store: Pick<Store, 'checkpoint'>; log: Log }) {
    this.#store = options.store;
    this.#log = options.log;
  }

  async read(): Promise<StatsSnapshot> {
    const partitions = this.#log.partitions(TOPIC_TICKS);
    const checkpoints = await Promise.all(
      Array.from({ length: partitions }, (_, partition) =>
        this.#store.checkpoint(partitionCheckpoint(partition)),
      ),
    );
    const totals = emptyCounters();
    let processedOffset = 0;
    let logEndOffset = 0;
    let ended = partitions > 0;
    checkpoints.forEach((checkpoint, partition) => {
      const state = (checkpoint?.state ?? {}) as { counters?: Counters; ended?: boolean };
      if (state.counters) addCounters(totals, state.counters);
      // In Kafka records (each holds an append's entries of a partition), as Kafka's lag tools count.
      processedOffset += kafkaOffsetOf(checkpoint?.offsets[partition] ?? 0);
      logEndOffset += kafkaOffsetOf(this.#log.endOffset(TOPIC_TICKS, partition));
      ended &&= state.ended === true;
    });
    // Kafka's offsets skip (transaction markers), so the offsets only measure lag; `ended` decides.
    return {
      ...totals,
      drained: ended,
      logEndOffset: Math.max(logEndOffset, processedOffset),
      processedOffset,
    };
  }
}

function addCounters(into: Counters, from: Counters): void {
  into.received += from.received;
  into.accepted += from.accepted;
  into.rejected += from.rejected;
  into.duplicates += from.duplicates;
  into.late += from.late;
  into.candlesClosed += from.candlesClosed;
  into.alertsFired += from.alertsFired;
  for (const [reason, count] of Object.entries(from.rejectedByReason)) {
    into.rejectedByReason[reason] = (into.rejectedByReason[reason] ?? 0) + count;
  }
}

/** What a `serve` process reads: the shared store, the log's offsets, and the live bus. */
export async function openServeRole(options: {
  config: Config;
  dataDir: string;
  /** Each fault of the store, Kafka or Redis, once when it begins and once when it ends (core/health.ts). */
  onHealthEvent?: (event: HealthEvent) => void;
}): Promise<{ store: Store; view: RemotePipelineView; close: () => Promise<void> }> {
  const { config, dataDir } = options;
  const kafka = checkRoleConfig(config, 'serve');
  const hot = createStore(config.store, dataDir);
  // History spans PostgreSQL and the lake `streamlines archive` writes (docs/warehouse.md).
  const store = config.lake.enabled
    ? withLakeReads(hot, config.lake.path ?? path.join(dataDir, 'lake'))
    : hot;
  // Reads only: the producer (and its transactional id) is created at the first append, never here.
  const log = new KafkaLog({ ...kafkaLogOptions(kafka), transactionalId: transactionalId(kafka, 'serve') });
  // Errors are not logged one by one: the health checks below log each outage once.
  const cache = createCache(config.cache);
  const health = new HealthRegistry({ log: options.onHealthEvent });
  await store.open();
  await log.open();
  await openCache(cache);
  const view = new RemotePipelineView({
    bus: cache.bus,
    stats: new PartitionedStatsSource({ store, log }),
    health: () => health.entries(),
  });
  await view.open();
  const stopWatch = watchRoleHealth({ dependencyChecks: () => serveChecks(view, log, cache) }, health);
  const stopPauseWatch = watchPauses(health);
  return {
    store,
    view,
    close: async () => {
      stopWatch();
      stopPauseWatch();
      await view.close();
      await closeCache(cache);
      await log.close();
      await store.close();
    },
  };
}

/**
 * What a `serve` process depends on besides the store it reads per request (`/ready` probes that):
 * the store for its counters, Kafka for the log's end (the lag), Redis for the live stream. Only
 * the store is required: without Kafka or Redis it still answers every read.
 */
function serveChecks(
  view: RemotePipelineView,
  log: KafkaLog,
  cache: { problem(): string | undefined },
): Record<string, RoleCheck> {
  const refreshError = view.refreshError();
  const kafka = checkKafka(log.reachability(), Date.now());
  return {
    store:
      refreshError === undefined
        ? { ok: true }
        : {
            ok: false,
            code: 'store_unavailable',
            error: `reading the counters failed: ${refreshError instanceof Error ? refreshError.message : String(refreshError)}`,
          },
    log: kafka.ok ? kafka : { ...kafka, required: false },
    cache: checkCache(cache.problem()),
  };
}
