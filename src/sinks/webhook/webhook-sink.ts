/**
 * `webhook`: alert notifications (issue #15). Each alert that passes the filters is POSTed on its
 * own, as the alert's JSON or in Slack's or Discord's incoming-webhook format, with an
 * `Idempotency-Key` header that is the same on every re-delivery, so a receiver that keeps the keys
 * it has seen shows each alert once (delivery is at-least-once). With a secret in the environment
 * every POST carries an HMAC-SHA256 of its body.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { durationField } from '../../core/config-fields.ts';
import { ALERT_KINDS, type Alert } from '../../core/records.ts';
import { type Sink, type SinkBatch, SinkError } from '../sink.ts';
import { sinkCommon } from '../sink-config.ts';

export const webhookSinkSchema = z.strictObject({
  type: z.literal('webhook'),
  ...sinkCommon,
  url: z
    .url()
    .describe('Where alerts are POSTed (a Slack or Discord incoming webhook, or your own endpoint).'),
  format: z
    .enum(['json', 'slack', 'discord'])
    .default('json')
    .describe(
      "Body: `json` the alert's fields {ts, symbol, kind, price, threshold?, message}, `slack` {text}, `discord` {content}.",
    ),
  kinds: z
    .array(z.enum(ALERT_KINDS))
    .min(1)
    .optional()
    .describe('Only alerts of these kinds (default: all).'),
  symbols: z
    .array(z.string().transform((value) => value.trim().toUpperCase()))
    .min(1)
    .optional()
    .describe('Only alerts of these symbols (default: all).'),
  secretEnv: z
    .string()
    .min(1)
    .default('STREAMLINES_WEBHOOK_SECRET')
    .describe('Environment variable holding the HMAC secret; when set, POSTs carry X-Streamlines-Signature.'),
  timeout: durationField.default(10_000).describe('A POST that takes longer is abandoned and retried.'),
});
export type WebhookSinkConfig = z.output<typeof webhookSinkSchema>;

/** The header a receiver deduplicates on. */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/** `sha256=` + hex HMAC-SHA256 of the raw body under the secret. */
export const SIGNATURE_HEADER = 'X-Streamlines-Signature';

/** The same for every delivery of one alert: its symbol, event time and place in the run. */
export function idempotencyKey(alert: Alert): string {
  return `${alert.symbol}:${alert.ts}:${alert.seq}`;
}

/** The body of one alert's POST. */
export function webhookBody(alert: Alert, format: WebhookSinkConfig['format']): unknown {
  if (format === 'json') {
    const body: Record<string, unknown> = {
      ts: alert.ts,
      symbol: alert.symbol,
      kind: alert.kind,
      price: alert.price,
    };
    if (alert.threshold !== undefined) body.threshold = alert.threshold;
    body.message = alert.message;
    return body;
  }
  const text = `${alert.kind} ${alert.symbol} at ${alert.price} (${new Date(alert.ts).toISOString()}): ${alert.message}`;
  return format === 'slack' ? { text } : { content: text };
}

export class WebhookSink implements Sink {
  readonly type = 'webhook';
  readonly records = ['alerts'] as const;
  readonly #config: WebhookSinkConfig;
  readonly #secret: string | undefined;
  /** Keys the current batch already delivered: a retry of the batch skips them. */
  readonly #posted = new Set<string>();
  #pendingBatch: SinkBatch | undefined;

  constructor(config: WebhookSinkConfig, env: NodeJS.ProcessEnv = process.env) {
    this.#config = config;
    const secret = env[config.secretEnv];
    this.#secret = secret === undefined || secret === '' ? undefined : secret;
  }

  async open(): Promise<void> {}

  async write(batch: SinkBatch): Promise<void> {
    if (batch !== this.#pendingBatch) {
      this.#posted.clear();
      this.#pendingBatch = batch;
    }
    for (const alert of batch.alerts) {
      if (!this.#wanted(alert)) continue;
      const key = idempotencyKey(alert);
      if (this.#posted.has(key)) continue;
      await this.#post(alert, key);
      this.#posted.add(key);
    }
    this.#posted.clear();
    this.#pendingBatch = undefined;
  }

  async close(): Promise<void> {}

  #wanted(alert: Alert): boolean {
    const { kinds, symbols } = this.#config;
    return (
      (kinds === undefined || kinds.includes(alert.kind)) &&
      (symbols === undefined || symbols.includes(alert.symbol))
    );
  }

  async #post(alert: Alert, key: string): Promise<void> {
    const body = JSON.stringify(webhookBody(alert, this.#config.format));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      [IDEMPOTENCY_HEADER]: key,
    };
    if (this.#secret !== undefined) {
      headers[SIGNATURE_HEADER] = `sha256=${createHmac('sha256', this.#secret).update(body).digest('hex')}`;
    }
    let response: Response;
    try {
      response = await fetch(this.#config.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(this.#config.timeout),
      });
    } catch (error) {
      throw new SinkError(
        'unreachable',
        `webhook POST to ${redactUrl(this.#config.url)} failed: ${describe(error)}`,
        {
          cause: error,
        },
      );
    }
    // The body is not needed; reading it frees the connection.
    await response.arrayBuffer().catch(() => undefined);
    if (response.ok) return;
    const message = `webhook ${redactUrl(this.#config.url)} answered ${response.status} for alert ${key}`;
    if (response.status === 429 || response.status >= 500 || response.status === 408) {
      throw new SinkError('server', message, {
        retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
      });
    }
    // Any other 4xx is retried too (with backoff, visible as errors): dropping an alert silently is worse.
    throw new SinkError('rejected', message);
  }
}

/** Retry-After as seconds or an HTTP date, in ms. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Slack and Discord webhook URLs are secrets: show only the origin. */
function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the webhook';
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
