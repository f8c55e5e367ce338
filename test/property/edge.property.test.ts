/**
 * Property-based tests of the serving edge: random and hostile input at every route and at the
 * WebSocket must never produce a 5xx, never crash the process, and never leave state behind.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { ERROR_CODES, WS_ERROR_CODES } from '../../src/serve/errors.ts';
import { buildTestServer } from '../support/serve.ts';

const NUM_RUNS = 300;
/** An error body echoes at most 100 characters of input; anything near this means it echoed more. */
const MAX_ERROR_BYTES = 1_024;
/** The seeded store is small: no answer of it, nor the OpenAPI document, comes near this. */
const MAX_RESPONSE_BYTES = 512 * 1024;
/** GraphQL answers errors in its own standard shape, `{errors: [...]}`. */
const OWN_ERROR_SHAPE = /^\/graphql/;
const MAX_FRAME_BYTES = 4_096;
/** `ws` closes the socket with 1009 beyond this (HARD_FRAME_FACTOR x the frame limit). */
const HARD_FRAME_BYTES = MAX_FRAME_BYTES * 4;

/** Path segments and query values chosen to break parsers, number handling and path logic. */
const hostileText = fc.oneof(
  fc.constantFrom(
    '%00',
    'BTC%00USDT',
    '..',
    '%2e%2e',
    '..%2f..%2fetc%2fpasswd',
    '%',
    '%zz',
    '%E0%A4%A',
    '%C0%AE',
    '%F0%9F%92%A9',
    '%FF%FE',
    'NaN',
    'Infinity',
    '-0',
    '1e309',
    '0x10',
    '9007199254740993',
    '-9007199254740993',
    '99999999999999999999999999999999',
    '1.5',
    ' ',
    '',
    'null',
    'undefined',
    '__proto__',
    'constructor',
    'btcusdt',
  ),
  fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }).map(String),
  fc.double().map(String),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', maxLength: 40 }).map(encodeURIComponent),
  fc.stringMatching(/^[A-Z0-9._:/-]{1,40}$/).map(encodeURIComponent),
  fc.integer({ min: 33, max: 5_000 }).map((length) => 'A'.repeat(length)),
);

const queryKey = fc.oneof(
  fc.constantFrom('from', 'to', 'limit', 'interval', 'kind', 'symbol', 'apiKey', 'format', '__proto__'),
  fc.string({ maxLength: 10 }).map(encodeURIComponent),
);

/** 0 to 6 pairs, keys often repeated. */
const queryString = fc
  .array(fc.tuple(queryKey, hostileText), { maxLength: 6 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`));

function fillPath(url: string, segments: readonly string[]): string {
  let i = 0;
  return url.replace(/:[A-Za-z0-9_]+|\*/g, () => segments[i++ % segments.length] ?? 'X');
}

describe('HTTP routes under random and hostile input', () => {
  let app: FastifyInstance;
  let getRoutes: string[];
  let bodyRoutes: { method: string; url: string }[];

  before(async () => {
    // Thousands of requests from one address: the rate limiter would answer most of them.
    ({ app } = await buildTestServer({ config: { rateLimit: { enabled: false } } }));
    await app.ready();
    const routes = app.registeredRoutes.filter(
      (route) => !route.hidden && route.method !== 'HEAD' && route.url !== '/ws',
    );
    getRoutes = [...new Set(routes.filter((route) => route.method === 'GET').map((route) => route.url))];
    bodyRoutes = routes.filter((route) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(route.method));
    assert.ok(getRoutes.length >= 9, getRoutes.join());
  });

  after(async () => {
    await app.close();
  });

  /** Checks NUM_RUNS requests: a route of `routes`, 1 to 3 hostile path segments, and one `input`. */
  async function onHostilePaths<Route, Input>(
    routes: readonly Route[],
    input: fc.Arbitrary<Input>,
    check: (route: Route, segments: string[], input: Input) => Promise<void>,
  ): Promise<void> {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.array(hostileText, { minLength: 1, maxLength: 3 }),
        input,
        check,
      ),
      { numRuns: NUM_RUNS },
    );
  }

  function assertSaneResponse(
    what: string,
    response: { statusCode: number; body: string; headers: Record<string, unknown> },
  ) {
    assert.ok(response.statusCode < 500, `${what}: ${response.statusCode} ${response.body.slice(0, 300)}`);
    assert.ok(response.body.length <= MAX_RESPONSE_BYTES, `${what}: ${response.body.length} bytes`);
    if (response.statusCode >= 400 && !OWN_ERROR_SHAPE.test(what.split(' ')[1] ?? '')) {
      assert.ok(response.body.length <= MAX_ERROR_BYTES, `${what}: error of ${response.body.length} bytes`);
      const { error } = JSON.parse(response.body);
      assert.ok((ERROR_CODES as readonly string[]).includes(error.code), `${what}: code ${error.code}`);
      assert.equal(typeof error.message, 'string');
    }
  }

  test('GET on every route with hostile path segments and query strings: never a 5xx', async () => {
    const seen = new Set<number>();
    await onHostilePaths(getRoutes, queryString, async (route, segments, query) => {
      const url = `${fillPath(route, segments)}${query}`;
      const response = await app.inject({ method: 'GET', url });
      seen.add(response.statusCode);
      assertSaneResponse(`GET ${url.slice(0, 200)}`, response);
    });
    // The input got past the router to the handlers and the validation, not only to 404s.
    for (const status of [200, 400, 404]) assert.ok(seen.has(status), `never ${status}: ${[...seen]}`);
  });

  test('random JSON bodies (and non-JSON ones) at every route that takes a body: never a 5xx', async (t) => {
    if (bodyRoutes.length === 0) {
      t.skip('no route takes a body');
      return;
    }
    const body = fc.oneof(
      fc.json({ maxDepth: 4 }),
      fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value) ?? 'null'),
      fc.constantFrom('{', '[]]', '{"a":', '\u0000', `${'['.repeat(5_000)}${']'.repeat(5_000)}`),
      fc.string({ unit: 'binary', maxLength: 100 }),
    );
    await onHostilePaths(bodyRoutes, body, async (route, segments, payload) => {
      const url = fillPath(route.url, segments);
      const response = await app.inject({
        method: route.method as 'POST',
        url,
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assertSaneResponse(`${route.method} ${url.slice(0, 200)} ${payload.slice(0, 100)}`, response);
    });
  });
});

/** A real client socket that records replies and how it closed. */
class FuzzClient {
  readonly socket: WebSocket;
  readonly replies: Buffer[] = [];
  closeCode: number | undefined;
  #wake: (() => void) | undefined;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.on('message', (data) => {
      this.replies.push(data as Buffer);
      this.#wake?.();
    });
    this.socket.on('close', (code) => {
      this.closeCode = code;
      this.#wake?.();
    });
    // A socket the server closes mid-send may report an error before 'close'; 'close' follows.
    this.socket.on('error', () => {});
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  /** Waits until `replies` replies arrived or the socket closed, up to 5 s. */
  async settle(replies: number): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (this.replies.length < replies && this.closeCode === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`waited for ${replies} replies, got ${this.replies.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** Frames a client might send by mistake or in malice. */
const hostileFrame: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 2_000 }).map((bytes) => Buffer.from(bytes)),
  // Invalid UTF-8 sent as binary (a text frame with it would be refused by the client library).
  fc.constantFrom(
    Buffer.from([0xc3, 0x28]),
    Buffer.from([0xff, 0xfe, 0x7b]),
    Buffer.from([0xed, 0xa0, 0x80]),
  ),
  fc.json({ maxDepth: 3 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.integer({ min: 1, max: 2_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  fc.integer({ min: 1, max: 1_000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
  fc.integer({ min: MAX_FRAME_BYTES - 10, max: HARD_FRAME_BYTES + 1_000 }).map((size) => 'x'.repeat(size)),
  fc
    .record({
      op: fc.oneof(
        fc.constantFrom('subscribe', 'unsubscribe', 'SUBSCRIBE', ''),
        fc.jsonValue({ maxDepth: 1 }),
      ),
      channels: fc.oneof(
        fc.array(
          fc.oneof(
            fc.constantFrom(
              'alerts',
              'ticks:BTCUSDT',
              'candles:btcusdt:1m',
              'candles:X:2m',
              'ticks:',
              'ticks:%00',
            ),
            fc.string({ maxLength: 50 }).map((symbol) => `ticks:${symbol}`),
            fc.jsonValue({ maxDepth: 1 }),
          ),
          { maxLength: 120 },
        ),
        fc.jsonValue({ maxDepth: 2 }),
      ),
    })
    .map((message) => JSON.stringify(message)),
);

describe('WebSocket under random and hostile frames', () => {
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    ({ app } = await buildTestServer({
      config: {
        rateLimit: { enabled: false },
        ws: { maxFrameBytes: MAX_FRAME_BYTES, maxSubscriptions: 100, maxMessagesPerSecond: 10_000 },
      },
    }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`;
  });

  after(async () => {
    await app.close();
  });

  test('every frame is answered with one bounded reply, or the socket closes cleanly; nothing is left behind', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 5 }), async (frames) => {
        const client = new FuzzClient(url);
        await client.opened();
        try {
          // Frames beyond the hard limit close the socket: nothing after one is sent.
          const hard = frames.findIndex((frame) => frame.length > HARD_FRAME_BYTES);
          const answered = hard === -1 ? frames : frames.slice(0, hard);
          for (const frame of hard === -1 ? frames : frames.slice(0, hard + 1)) client.socket.send(frame);
          await client.settle(hard === -1 ? answered.length : Number.POSITIVE_INFINITY);
          if (hard === -1) {
            assert.equal(client.closeCode, undefined, 'the socket stays open after answerable frames');
          } else {
            assert.equal(client.closeCode, 1009);
          }
          assert.equal(client.replies.length, answered.length);
          for (const reply of client.replies) {
            assert.ok(reply.length <= 2 * MAX_FRAME_BYTES + 1_024, `reply of ${reply.length} bytes`);
            const message = JSON.parse(reply.toString('utf8'));
            if (message.op === 'error') {
              assert.ok(
                (WS_ERROR_CODES as readonly string[]).includes(message.error.code),
                message.error.code,
              );
            } else {
              assert.ok(['subscribed', 'unsubscribed'].includes(message.op), JSON.stringify(message));
            }
          }
        } finally {
          client.socket.terminate();
        }
      }),
      { numRuns: NUM_RUNS },
    );
    // Every socket is gone: the hub must hold no client, channel or subscription for them.
    for (let i = 0; i < 100 && app.wsHub.stats().clients > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const stats = app.wsHub.stats();
    assert.deepEqual([stats.clients, stats.channels, stats.subscriptions], [0, 0, 0]);
    // The frames reached the hub's every check, not just the socket.
    for (const code of ['invalid_json', 'invalid_message', 'unknown_op', 'frame_too_large'] as const) {
      assert.ok(stats.errors[code] > 0, `no ${code} in ${NUM_RUNS} runs`);
    }
  });
});

test('a WebSocket client flooding frames gets rate_limited replies and the rest are ignored', async () => {
  const { app } = await buildTestServer({ config: { ws: { maxMessagesPerSecond: 5 } } });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const client = new FuzzClient(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ws`);
  try {
    await client.opened();
    const frames = 20;
    for (let i = 0; i < frames; i++) {
      client.socket.send(JSON.stringify({ op: 'subscribe', channels: [`ticks:S${i}`] }));
    }
    await client.settle(frames);
    const ops = client.replies.map((reply) => JSON.parse(reply.toString('utf8')));
    const limited = ops.filter((reply) => reply.error?.code === 'rate_limited').length;
    // All 20 arrive within one second (or two windows at worst): at most 10 can pass.
    assert.ok(limited >= frames - 10, `${limited} rate limited`);
    assert.equal(app.wsHub.stats().errors.rate_limited, limited);
    assert.equal(app.wsHub.stats().subscriptions, frames - limited, 'ignored frames subscribed nothing');
    assert.equal(client.closeCode, undefined);
  } finally {
    client.socket.terminate();
    await app.close();
  }
});
