/** Liveness (`/health`) and readiness (`/ready`: the store answers). */
import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../../store/store.ts';
import { errorBody } from '../errors.ts';

/** How long `/ready` waits for the store before calling it unavailable. */
export const READY_TIMEOUT_MS = 2_000;

export interface HealthRoutesOptions {
  store: Store;
  readyTimeoutMs?: number;
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

/** The encapsulated plugin serving the health probes. */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, options) => {
  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (request, reply) => {
    try {
      await probeStore(options.store, timeoutMs);
      return { status: 'ready' };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      request.log.warn({ err: error }, 'not ready');
      return reply.code(503).send({ status: 'unavailable', ...errorBody('not_ready', `store: ${reason}`) });
    }
  });
};
