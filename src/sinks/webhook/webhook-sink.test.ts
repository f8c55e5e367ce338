import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startWebhookReceiver, type WebhookReceiver } from '../../../test/support/webhook-receiver.ts';
import type { Alert } from '../../core/records.ts';
import { FIRST_BATCH, sinkConformance } from '../conformance.ts';
import { type SinkBatch, SinkError } from '../sink.ts';
import {
  IDEMPOTENCY_HEADER,
  idempotencyKey,
  SIGNATURE_HEADER,
  WebhookSink,
  webhookSinkSchema,
} from './webhook-sink.ts';

const onlyAlerts = (alerts: readonly Alert[]): SinkBatch => ({
  ticks: [],
  candles: [],
  indicators: [],
  alerts,
});

/** The alerts a receiver got, once per idempotency key, as a receiver that deduplicates keeps them. */
function distinctAlerts(receiver: WebhookReceiver): Alert[] {
  const byKey = new Map<string, Alert>();
  for (const post of receiver.received) {
    const key = post.headers[IDEMPOTENCY_HEADER.toLowerCase()] as string;
    byKey.set(key, JSON.parse(post.body) as Alert);
  }
  return [...byKey.values()];
}

function sinkFor(
  receiver: WebhookReceiver,
  config: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
) {
  return new WebhookSink(webhookSinkSchema.parse({ type: 'webhook', url: receiver.url, ...config }), env);
}

describe('webhook sink against a local receiver', () => {
  let receiver: WebhookReceiver;
  sinkConformance('webhook (json)', async () => {
    receiver = await startWebhookReceiver();
    return {
      makeSink: () => sinkFor(receiver),
      readBack: async () => onlyAlerts(distinctAlerts(receiver)),
      // Down = answering 500 to everything.
      stopTarget: async () => receiver.setMode('fail'),
      startTarget: async () => receiver.setMode('ok'),
      cleanup: () => receiver.close(),
    };
  });

  describe('delivery', () => {
    let target: WebhookReceiver;
    before(async () => {
      target = await startWebhookReceiver({ retryAfterSeconds: 7 });
    });
    after(() => target.close());

    test('one alert per POST, the alert fields as JSON, the same Idempotency-Key on every delivery', async () => {
      target.received.length = 0;
      const sink = sinkFor(target);
      const [first, second] = FIRST_BATCH.alerts;
      await sink.write(onlyAlerts([first!, second!]));
      await sink.write(onlyAlerts([first!]));
      assert.equal(target.received.length, 3);
      assert.deepEqual(JSON.parse(target.received[0]!.body), {
        ts: first!.ts,
        symbol: 'BTCUSDT',
        kind: 'price_above',
        price: 101,
        threshold: 100,
        message: 'alert 4096',
      });
      const keys = target.received.map((post) => post.headers['idempotency-key']);
      assert.deepEqual(keys, [idempotencyKey(first!), idempotencyKey(second!), idempotencyKey(first!)]);
      assert.notEqual(keys[0], keys[1], 'alerts sharing a ms and kind have keys of their own');
      assert.equal(target.received[0]!.headers['content-type'], 'application/json');
      assert.equal(
        target.received[0]!.headers[SIGNATURE_HEADER.toLowerCase()],
        undefined,
        'no secret, no signature',
      );
    });

    test('a failing receiver rejects the write; a retry of the batch skips the alerts already taken', async () => {
      target.received.length = 0;
      const sink = sinkFor(target);
      const alerts = FIRST_BATCH.alerts;
      const batch = onlyAlerts(alerts);
      // The third POST fails: two alerts are in, the write rejects.
      let posts = 0;
      const original = globalThis.fetch;
      globalThis.fetch = (async (...args: Parameters<typeof fetch>) => {
        if (++posts === 3) target.failNext(1, 'fail');
        return original(...args);
      }) as typeof fetch;
      try {
        await assert.rejects(
          sink.write(batch),
          (error: unknown) => error instanceof SinkError && error.code === 'server',
        );
        await sink.write(batch);
      } finally {
        globalThis.fetch = original;
      }
      assert.equal(target.refused.fail >= 1, true);
      assert.deepEqual(
        target.received.map((post) => post.headers['idempotency-key']),
        alerts.map(idempotencyKey),
        'each alert taken exactly once',
      );
    });

    test('429 rejects with the Retry-After the receiver asked for', async () => {
      const sink = sinkFor(target);
      target.failNext(1, 'throttle');
      await assert.rejects(
        sink.write(onlyAlerts([FIRST_BATCH.alerts[0]!])),
        (error: unknown) =>
          error instanceof SinkError && error.code === 'server' && error.retryAfterMs === 7_000,
      );
      assert.equal(target.refused.throttle, 1);
    });

    test('a stalled receiver times out as unreachable; the next POST goes through', async () => {
      target.received.length = 0;
      const sink = sinkFor(target, { timeout: '300ms' });
      target.failNext(1, 'stall');
      await assert.rejects(
        sink.write(onlyAlerts([FIRST_BATCH.alerts[0]!])),
        (error: unknown) => error instanceof SinkError && error.code === 'unreachable',
      );
      await sink.write(onlyAlerts([FIRST_BATCH.alerts[0]!]));
      assert.equal(target.received.length, 1);
    });

    test('kinds and symbols filter what is sent', async () => {
      target.received.length = 0;
      await sinkFor(target, { kinds: ['price_above', 'anomaly'], symbols: ['btcusdt'] }).write(
        onlyAlerts(FIRST_BATCH.alerts),
      );
      assert.deepEqual(
        target.received.map((post) => JSON.parse(post.body).message),
        ['alert 4096', 'a "quoted", message\nwith a newline'],
      );
    });

    test('slack and discord formats; with a secret, an HMAC-SHA256 of the body', async () => {
      target.received.length = 0;
      const alert = FIRST_BATCH.alerts[2]!;
      await sinkFor(target, { format: 'slack' }, { STREAMLINES_WEBHOOK_SECRET: 's3cret' }).write(
        onlyAlerts([alert]),
      );
      await sinkFor(target, { format: 'discord', secretEnv: 'HOOK_KEY' }, { HOOK_KEY: 'other' }).write(
        onlyAlerts([alert]),
      );
      const [slack, discord] = target.received;
      const text = `golden_cross BTCUSDT at 101 (2023-11-14T22:13:01.500Z): alert 8192`;
      assert.deepEqual(JSON.parse(slack!.body), { text });
      assert.deepEqual(JSON.parse(discord!.body), { content: text });
      const sign = (secret: string, body: string) =>
        `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
      assert.equal(slack!.headers['x-streamlines-signature'], sign('s3cret', slack!.body));
      assert.equal(discord!.headers['x-streamlines-signature'], sign('other', discord!.body));
    });
  });
});
