/**
 * The operations endpoint of the distributed roles without an API server (`streamlines ingest
 * --port N`, `streamlines process --port N`): `GET /health` (the process answers), `GET /ready`
 * (the role does its job: 503 with the failing checks otherwise) and `GET /metrics` (Prometheus).
 * A small Fastify app of its own: no API keys, no rate limit, nothing but these three routes.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { HealthReporter } from '../core/health.ts';
import type { FeedStatus } from '../core/pipeline-view.ts';
import { errorBody } from '../serve/errors.ts';
import type { PartitionStatus } from './process-role.ts';

/** One readiness check as `/ready` reports it. */
export interface RoleCheck {
  ok: boolean;
  error?: string;
  /** The fault's stable code while not ok (docs/operations.md, Faults), e.g. `log_unavailable`. */
  code?: string;
  /**
   * Default true: a failing required check makes `/ready` 503; a failing optional one (the live
   * fan-out) leaves it 200 with `status: "degraded"`.
   */
  required?: boolean;
}

/** Runs the role's checks; called on every `/ready`. */
export interface RoleReadiness {
  checks(): Record<string, RoleCheck>;
}

export interface RoleServerOptions {
  /** What `/metrics` renders (IngestMetrics, ProcessMetrics). */
  metrics: { render(): Promise<string>; readonly contentType: string };
  readiness: RoleReadiness;
}

/** The Fastify app serving `/health`, `/ready` and `/metrics`; not listening yet. */
export async function buildRoleServer(options: RoleServerOptions): Promise<FastifyInstance> {
  const { metrics, readiness } = options;
  // No request log: the only callers are probes and Prometheus, every few seconds.
  const app = Fastify({ logger: false });
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    const checks = readiness.checks();
    const failed = Object.entries(checks).filter(([, check]) => !check.ok && check.required !== false);
    if (failed.length === 0) {
      const degraded = Object.values(checks).some((check) => !check.ok);
      return { status: degraded ? 'degraded' : 'ready', checks };
    }
    const message = failed.map(([name, check]) => `${name}: ${check.error ?? 'not ok'}`).join('; ');
    return reply.code(503).send({ status: 'unavailable', ...errorBody('not_ready', message), checks });
  });
  app.get('/metrics', async (_request, reply) => {
    const body = await metrics.render();
    return reply.type(metrics.contentType).send(body);
  });
  await app.ready();
  return app;
}

/** Listens on `host:port` (0: a free port) and returns the URL, e.g. `http://[::1]:9101`. */
export async function listenRoleServer(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
}

/** Not ready until the role has started (opened its log and store, sent the old disk buffer). */
abstract class StartedReadiness implements RoleReadiness {
  #started = false;

  /** The role's `start()` resolved. */
  markStarted(): void {
    this.#started = true;
  }

  checks(): Record<string, RoleCheck> {
    return {
      started: this.#started ? { ok: true } : { ok: false, error: 'the role is still starting' },
      ...this.dependencyChecks(),
    };
  }

  /** The checks of what the role depends on (Kafka, the store, Redis, its feeds), named after each. */
  abstract dependencyChecks(): Record<string, RoleCheck>;
}

/** When a KafkaLog's brokers last answered its background refresh (`KafkaLog.reachability()`). */
export interface KafkaReachability {
  /** ms since the epoch; 0 before the log opened. */
  answeredAt: number;
  /** The error of the refreshes since, if any. */
  error: unknown;
}

/** Kafka counts as unreachable once its brokers have not answered for this long (they are asked every 500 ms). */
export const KAFKA_SILENT_MS = 3_000;

/** The `log` check: the brokers answer. Not yet opened counts as fine (the `started` check says so). */
export function checkKafka(reach: KafkaReachability, now: number, silentMs = KAFKA_SILENT_MS): RoleCheck {
  const silentFor = now - reach.answeredAt;
  if (reach.answeredAt === 0 || silentFor <= silentMs) return { ok: true };
  return {
    ok: false,
    code: 'log_unavailable',
    error: `Kafka has not answered for ${Math.round(silentFor / 1000)} s: ${reach.error === undefined ? 'no answer' : text(reach.error)}`,
  };
}

/**
 * The `cache` check: every Redis connection is up. Optional: without Redis the live fan-out and
 * the latest-price cache pause, while the store still gets everything.
 */
export function checkCache(problem: string | undefined): RoleCheck {
  if (problem === undefined) return { ok: true };
  return {
    ok: false,
    required: false,
    code: 'cache_unavailable',
    error: `Redis unreachable, live updates paused (the store still gets everything): ${problem}`,
  };
}

/**
 * Reports a role's dependency checks to its health registry every `everyMs`, so the log has one
 * line when a fault begins and one when it ends (core/health.ts). Returns the function that stops it.
 */
export function watchRoleHealth(
  readiness: Pick<StartedReadiness, 'dependencyChecks'>,
  health: HealthReporter,
  everyMs = 500,
): () => void {
  const timer = setInterval(() => reportChecks(readiness, health), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** One look of `watchRoleHealth`: each dependency check, as it is now, to the registry. */
export function reportChecks(
  readiness: Pick<StartedReadiness, 'dependencyChecks'>,
  health: HealthReporter,
): void {
  for (const [dependency, check] of Object.entries(readiness.dependencyChecks())) {
    if (check.ok) health.ok(dependency);
    else health.degraded(dependency, check.error ?? 'not ok', check.code, check.required !== false);
  }
}

/** What the ingest checks read (an IngestRole). */
export interface IngestHealthSource {
  feedStatuses(): readonly FeedStatus[];
  /** Whether Kafka's brokers answer, when the log is Kafka. */
  kafka?(): KafkaReachability;
  log: {
    stats(): {
      pendingAppends: number;
      spoolBytes: number;
      drainedAppends: number;
      discardedAppends: number;
      lastError: string | null;
    };
  };
}

/**
 * How long the disk buffer may hold appends without sending any before ingest is not ready: a
 * Kafka outage shows on `/ready` within seconds (it stayed 200 through a 20 s outage at 30 s).
 */
export const DEFAULT_SPOOL_STALL_MS = 5_000;

/**
 * Ingest is ready while no feed has failed and its disk buffer drains: a buffer that holds appends
 * is fine while Kafka takes them (catching up after an outage), not when none went out for
 * `spoolStallMs`.
 */
export class IngestReadiness extends StartedReadiness {
  readonly #source: IngestHealthSource;
  readonly #stallMs: number;
  readonly #now: () => number;
  /** Spooled appends sent (or found sent) when last looked, and when that last changed. */
  #sent = 0;
  #progressAt: number;

  constructor(source: IngestHealthSource, options: { spoolStallMs?: number; now?: () => number } = {}) {
    super();
    this.#source = source;
    this.#stallMs = options.spoolStallMs ?? DEFAULT_SPOOL_STALL_MS;
    this.#now = options.now ?? Date.now;
    this.#progressAt = this.#now();
  }

  dependencyChecks(): Record<string, RoleCheck> {
    const kafka = this.#source.kafka ? checkKafka(this.#source.kafka(), this.#now()) : { ok: true };
    const spool = this.#checkSpool();
    // One fault, one name: brokers that do not answer, or appends that do not get through to them.
    return { log: kafka.ok ? spool : kafka, feeds: checkFeeds(this.#source.feedStatuses()) };
  }

  #checkSpool(): RoleCheck {
    const stats = this.#source.log.stats();
    const now = this.#now();
    const sent = stats.drainedAppends + stats.discardedAppends;
    if (stats.pendingAppends === 0 || sent !== this.#sent) this.#progressAt = now;
    this.#sent = sent;
    const stalledMs = now - this.#progressAt;
    if (stalledMs <= this.#stallMs) return { ok: true };
    return {
      ok: false,
      code: 'log_unavailable',
      error:
        `${stats.pendingAppends} appends (${stats.spoolBytes} bytes) buffered on disk and none sent to Kafka ` +
        `for ${Math.round(stalledMs / 1000)} s: ${stats.lastError ?? 'no error reported'}`,
    };
  }
}

function checkFeeds(feeds: readonly FeedStatus[]): RoleCheck {
  const failed = feeds.filter((feed) => feed.state === 'failed' || feed.state === 'fatal');
  if (failed.length === 0) return { ok: true };
  return {
    ok: false,
    code: 'feed_failed',
    error: failed
      .map((feed) => `${feed.name} ${feed.state}: ${feed.error ?? feed.fatal ?? 'unknown error'}`)
      .join('; '),
  };
}

/** What the process checks read (a ProcessRole). */
export interface ProcessHealthSource {
  partitions(): readonly Pick<PartitionStatus, 'partition' | 'writeError'>[];
  leasesError(): unknown;
  /** Whether Kafka's brokers answer, when the log is Kafka. */
  kafka?(): KafkaReachability;
  /** What is wrong with the Redis connections, when the cache is Redis; undefined while they are up. */
  cacheProblem?(): string | undefined;
}

/**
 * A processor is ready while it holds its partition leases and no owned partition's store write is
 * failing (both the `store` check), and Kafka answers; Redis down leaves it degraded (200). Owning no partition is ready: a
 * standby when there are more processors than partitions.
 */
export class ProcessReadiness extends StartedReadiness {
  readonly #source: ProcessHealthSource;
  readonly #now: () => number;

  constructor(source: ProcessHealthSource, options: { now?: () => number } = {}) {
    super();
    this.#source = source;
    this.#now = options.now ?? Date.now;
  }

  dependencyChecks(): Record<string, RoleCheck> {
    const lost = this.#source.leasesError();
    // A checkpoint conflict is a handover (the partition is someone else's and is let go), not an outage.
    const failing = this.#source
      .partitions()
      .filter((status) => status.writeError !== undefined && !isCheckpointConflict(status.writeError));
    // The leases live in the store's database: losing them and failing writes are one fault, so an
    // outage is one `store` fault from the first failed write until the leases are renewed.
    const problems = failing.map(
      (status) => `partition ${status.partition} write failing: ${text(status.writeError)}`,
    );
    if (lost !== undefined) problems.unshift(`partition leases lost: ${text(lost)}`);
    const checks: Record<string, RoleCheck> = {
      store:
        problems.length === 0
          ? { ok: true }
          : {
              ok: false,
              code: lost === undefined ? 'store_write_failed' : 'store_unavailable',
              error: problems.join('; '),
            },
    };
    if (this.#source.kafka) checks.log = checkKafka(this.#source.kafka(), this.#now());
    if (this.#source.cacheProblem) checks.cache = checkCache(this.#source.cacheProblem());
    return checks;
  }
}

function isCheckpointConflict(error: unknown): boolean {
  return error instanceof Error && error.name === 'CheckpointConflictError';
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
