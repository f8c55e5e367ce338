/**
 * The operations endpoint of the distributed roles without an API server (`streamlines ingest
 * --port N`, `streamlines process --port N`): `GET /health` (the process answers), `GET /ready`
 * (the role does its job: 503 with the failing checks otherwise) and `GET /metrics` (Prometheus).
 * A small Fastify app of its own: no API keys, no rate limit, nothing but these three routes.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { FeedStatus } from '../core/pipeline-view.ts';
import { errorBody } from '../serve/errors.ts';
import type { PartitionStatus } from './process-role.ts';

/** One readiness check as `/ready` reports it; every check is required. */
export interface RoleCheck {
  ok: boolean;
  error?: string;
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
    const failed = Object.entries(checks).filter(([, check]) => !check.ok);
    if (failed.length === 0) return { status: 'ready', checks };
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
      ...this.roleChecks(),
    };
  }

  protected abstract roleChecks(): Record<string, RoleCheck>;
}

/** What the ingest checks read (an IngestRole). */
export interface IngestHealthSource {
  feedStatuses(): readonly FeedStatus[];
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

  protected roleChecks(): Record<string, RoleCheck> {
    return { spool: this.#checkSpool(), feeds: checkFeeds(this.#source.feedStatuses()) };
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
    error: failed
      .map((feed) => `${feed.name} ${feed.state}: ${feed.error ?? feed.fatal ?? 'unknown error'}`)
      .join('; '),
  };
}

/** What the process checks read (a ProcessRole). */
export interface ProcessHealthSource {
  partitions(): readonly Pick<PartitionStatus, 'partition' | 'writeError'>[];
  leasesError(): unknown;
}

/**
 * A processor is ready while it holds its partition leases and no owned partition's store write
 * is failing. Owning no partition is ready: a standby when there are more processors than partitions.
 */
export class ProcessReadiness extends StartedReadiness {
  readonly #source: ProcessHealthSource;

  constructor(source: ProcessHealthSource) {
    super();
    this.#source = source;
  }

  protected roleChecks(): Record<string, RoleCheck> {
    const lost = this.#source.leasesError();
    // A checkpoint conflict is a handover (the partition is someone else's and is let go), not an outage.
    const failing = this.#source
      .partitions()
      .filter((status) => status.writeError !== undefined && !isCheckpointConflict(status.writeError));
    return {
      leases:
        lost === undefined ? { ok: true } : { ok: false, error: `partition leases lost: ${text(lost)}` },
      store:
        failing.length === 0
          ? { ok: true }
          : {
              ok: false,
              error: failing
                .map((status) => `partition ${status.partition} write failing: ${text(status.writeError)}`)
                .join('; '),
            },
    };
  }
}

function isCheckpointConflict(error: unknown): boolean {
  return error instanceof Error && error.name === 'CheckpointConflictError';
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
