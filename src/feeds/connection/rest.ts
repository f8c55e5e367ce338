/**
 * A small JSON-over-HTTP client for providers' REST trade history: backs off on 429 honouring `Retry-After`,
 * spaces requests to a provider's budget, and turns refusals that cannot heal (418 IP ban, 401/403, 451)
 * into `RestFatalError` so callers stop instead of hammering.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** A refusal that retrying will not fix; `status` is the HTTP status. */
export class RestFatalError extends Error {
  override readonly name = 'RestFatalError';
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface RestClientOptions {
  /** Minimum gap between two requests (provider budget, e.g. Kraken ~1 req/s). */
  minIntervalMs?: number;
  /** Attempts per request on 429, 5xx and network errors. */
  maxAttempts?: number;
  /** Called with every response's headers, e.g. to read Binance's X-MBX-USED-WEIGHT-1M. */
  onHeaders?: (headers: Headers) => void;
  /** Extra wait before the next request, e.g. when the used weight nears the limit. */
  throttleMs?: () => number;
  userAgent?: string;
}

/** Fetches JSON with the rules above; one instance per provider so the spacing holds across callers. */
export class RestClient {
  readonly #options: RestClientOptions;
  #nextAt = 0;
  /** Requests made, for tests and progress. */
  requests = 0;

  constructor(options: RestClientOptions = {}) {
    this.#options = options;
  }

  async getJson(url: string, signal?: AbortSignal): Promise<{ body: unknown; headers: Headers }> {
    const maxAttempts = this.#options.maxAttempts ?? 5;
    let lastError = '';
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const wait = Math.max(this.#nextAt - Date.now(), this.#options.throttleMs?.() ?? 0);
      if (wait > 0) await sleep(wait, undefined, { signal });
      this.#nextAt = Date.now() + (this.#options.minIntervalMs ?? 0);
      this.requests += 1;
      let response: Response;
      try {
        response = await fetch(url, {
          signal,
          headers: { accept: 'application/json', 'user-agent': this.#options.userAgent ?? 'streamlines' },
        });
      } catch (error) {
        if (signal?.aborted) throw error;
        lastError = error instanceof Error ? error.message : String(error);
        await sleep(backoffMs(attempt), undefined, { signal });
        continue;
      }
      this.#options.onHeaders?.(response.headers);
      const text = await response.text();
      if (response.ok) {
        return { body: text === '' ? null : JSON.parse(text), headers: response.headers };
      }
      const status = response.status;
      const detail = `${url.split('?')[0]}: HTTP ${status} ${text.slice(0, 300)}`.trim();
      if (status === 418 || status === 401 || status === 403 || status === 451) {
        throw new RestFatalError(status, detail);
      }
      if (status === 429 || status >= 500) {
        const retryAfter = Number(response.headers.get('retry-after'));
        const waitMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : backoffMs(attempt);
        this.#nextAt = Date.now() + waitMs;
        lastError = detail;
        continue;
      }
      throw new RestFatalError(status, detail);
    }
    throw new Error(`giving up after ${maxAttempts} attempts: ${lastError}`);
  }
}

function backoffMs(attempt: number): number {
  return Math.min(30_000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
}
