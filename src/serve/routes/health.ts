/**
 * Liveness (`/health`) and readiness (`/ready`): each dependency is checked and reported with its
 * latency; the required ones (store, log) make `/ready` answer 503 when they fail, the feeds are
 * reported but a failed feed leaves the server able to serve what is stored: `/ready` then answers 200
 * with `status: "degraded"` (as ASP.NET Core's health checks map Degraded to 200). Every dependency the
 * pipeline reports degraded (its health registry, e.g. store writes failing on a full disk) is a
 * failed check too, named after the dependency.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { HealthEntry } from '../../core/health.ts';
import type { PipelineView } from '../../core/pipeline-view.ts';
import type { Store } from '../../store/store.ts';
import { errorBody } from '../errors.ts';
import { healthSchema, readySchema } from '../schemas.ts';

/** How long `/ready` waits for the store before calling it unavailable. */
export const READY_TIMEOUT_MS = 2_000;

/** A live feed that has not connected this long after it started makes the feeds check fail. */
export const FEED_CONNECT_GRACE_MS = 30_000;

export interface HealthRoutesOptions {
  store: Store;
  /** The running pipeline: its log and feeds are checked too when given. */
  view?: Pick<PipelineView, 'stats'>;
  readyTimeoutMs?: number;
  /** See FEED_CONNECT_GRACE_MS. */
  feedConnectGraceMs?: number;
}

/** One dependency as `/ready` reports it. */
export interface ReadinessCheck {
  ok: boolean;
  /** A required dependency that is not ok makes `/ready` answer 503. */
  required: boolean;
  /** Time the check took, ms. */
  latencyMs: number;
  error?: string;
  /** The fault's stable code, when the pipeline reported it (e.g. `store_write_failed`). */
  code?: string;
}

/** Runs one probe, timing it; a probe that throws or rejects is not ok, with its message. */
async function check(required: boolean, probe: () => unknown): Promise<ReadinessCheck> {
  const started = performance.now();
  let error: string | undefined;
  try {
    await probe();
  } catch (cause) {
    error = cause instanceof Error ? cause.message : String(cause);
  }
  const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
  return error === undefined ? { ok: true, required, latencyMs } : { ok: false, required, latencyMs, error };
}

/** The pipeline can tell where its log ends and where the processor stands (a closed log throws). */
function probeLog(view: Pick<PipelineView, 'stats'>): void {
  const { logEndOffset, processedOffset } = view.stats();
  if (!Number.isSafeInteger(logEndOffset) || !Number.isSafeInteger(processedOffset)) {
    throw new Error(`log offsets are not integers (end ${logEndOffset}, processed ${processedOffset})`);
  }
}

/**
 * Ok unless a feed failed for good, or a live feed has never connected `graceMs` after it started; the
 * message names each such feed, its state and why.
 */
function probeFeeds(view: Pick<PipelineView, 'stats'>, graceMs: number): void {
  const now = Date.now();
  const problems: string[] = [];
  for (const feed of view.stats().feeds) {
    if (feed.state === 'failed' || feed.state === 'fatal') {
      problems.push(`${feed.name} ${feed.state}: ${feed.fatal ?? feed.error ?? 'unknown error'}`);
    } else if (
      feed.lastConnectedAt === null &&
      (feed.state === 'connecting' || feed.state === 'failing') &&
      feed.startedAt !== undefined &&
      now - feed.startedAt >= graceMs
    ) {
      const seconds = Math.round((now - feed.startedAt) / 1000);
      const attempts = feed.failedAttempts ?? 0;
      problems.push(
        `${feed.name} has not connected in ${seconds} s (${feed.state}, ${attempts} failed attempt${attempts === 1 ? '' : 's'}: ${feed.cause ?? 'no cause reported yet'})`,
      );
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
}

/** Resolves when the store answers a cheap query; rejects with the reason otherwise. */
async function probeStore(store: Store, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`store did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([store.symbols(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The health entries the pipeline reports; none when it cannot say (the log check reports that). */
function reportedHealth(view: Pick<PipelineView, 'stats'> | undefined): HealthEntry[] {
  try {
    return view?.stats().health ?? [];
  } catch {
    return [];
  }
}

/** The encapsulated plugin serving the health probes. */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, options) => {
  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;

  app.get('/health', { schema: healthSchema }, async () => ({ status: 'ok' }));

  app.get('/ready', { schema: readySchema }, async (request, reply) => {
    const { view } = options;
    const checks: Record<string, ReadinessCheck> = {};
    const [store, log, feeds] = await Promise.all([
      check(true, () => probeStore(options.store, timeoutMs)),
      view && check(true, () => probeLog(view)),
      view && check(false, () => probeFeeds(view, options.feedConnectGraceMs ?? FEED_CONNECT_GRACE_MS)),
    ]);
    checks.store = store;
    if (log) checks.log = log;
    if (feeds) checks.feeds = feeds;
    // Faults the pipeline saw itself (core/health.ts): a store whose writes fail still answers
    // the probe above, so without these /ready would stay 200 through a full disk.
    for (const entry of reportedHealth(view)) {
      if (entry.status !== 'degraded') continue;
      const reported: ReadinessCheck = {
        ok: false,
        required: entry.required !== false,
        latencyMs: 0,
        error: `${entry.cause ?? 'degraded'} (since ${new Date(entry.since).toISOString()})`,
      };
      if (entry.code !== undefined) reported.code = entry.code;
      const existing = checks[entry.dependency];
      // The pipeline's own account comes first, with its code; a probe that failed too adds its error.
      checks[entry.dependency] =
        existing === undefined
          ? reported
          : {
              ...reported,
              latencyMs: existing.latencyMs,
              ...(existing.ok ? {} : { error: `${reported.error}; ${existing.error}` }),
            };
    }
    const failed = Object.entries(checks).filter(([, result]) => result.required && !result.ok);
    if (failed.length === 0) {
      const degraded = Object.values(checks).some((result) => !result.ok);
      return { status: degraded ? 'degraded' : 'ready', checks };
    }
    const message = failed.map(([name, result]) => `${name}: ${result.error}`).join('; ');
    request.log.warn({ checks }, 'not ready');
    return reply.code(503).send({ status: 'unavailable', ...errorBody('not_ready', message), checks });
  });
};
