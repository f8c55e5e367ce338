import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import Fastify, { type FastifyInstance } from 'fastify';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { FakeView, seedStore } from '../../../test/support/serve.ts';
import { graphqlRoutes } from './graphql-plugin.ts';
import { CLOSE_BAD_REQUEST, CLOSE_SUBSCRIBER_EXISTS, CLOSE_TOO_BIG } from './subscription-guard.ts';

/** Registers the GraphQL routes (over the seeded store) on `app` and serves them; the /graphql ws:// URL. */
async function serveGraphql(app: FastifyInstance): Promise<string> {
  await app.register(graphqlRoutes, {
    store: await seedStore(),
    view: new FakeView(),
    limits: { maxLimit: 10, defaultLimit: 5 },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return `ws://127.0.0.1:${port}/graphql`;
}

test('a subscription refused for a bad argument gets its code, and is not logged as an error', async () => {
  const lines: { level: number; msg?: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  const app = Fastify({ logger: { level: 'info', stream } });
  const client = createClient({
    url: await serveGraphql(app),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
  });
  try {
    const error = await new Promise<unknown>((resolve) => {
      client.subscribe(
        { query: 'subscription { ticks(symbol: "bad symbol!") { ts } }' },
        { next: () => {}, error: resolve, complete: () => resolve(undefined) },
      );
    });
    assert.ok(Array.isArray(error), `a graphql-ws error, got ${JSON.stringify(error)}`);
    assert.equal((error as { extensions: { code: string } }[])[0]!.extensions.code, 'invalid_symbol');
    const errors = lines.filter((line) => line.level >= 50);
    assert.deepEqual(errors, [], 'logged at error level');
  } finally {
    await client.dispose();
    await app.close();
  }
});

/** Frames a hostile graphql-ws client might send: messages of every type with good and bad fields, and junk. */
const hostileFrame = fc.oneof(
  fc
    .record({
      type: fc.constantFrom(
        'connection_init',
        'subscribe',
        'complete',
        'ping',
        'pong',
        'start',
        'stop',
        'nope',
        7,
      ),
      id: fc.oneof(fc.constantFrom('1', '2', '', 'x'), fc.integer(), fc.constant(undefined)),
      payload: fc.oneof(
        fc.constant({ query: 'subscription { alerts { ts } }' }),
        fc.constant({ query: 'subscription { ticks(symbol: "bad symbol!") { ts } }' }),
        fc.constant({ query: '{ symbols { symbol } }' }),
        fc.constant({ query: 42 }),
        fc.constant(null),
        fc.constant(undefined),
        fc.string({ maxLength: 20 }),
      ),
    })
    .map((message) => Buffer.from(JSON.stringify(message))),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  fc.string({ maxLength: 64 }).map((text) => Buffer.from(text)),
);

test('hostile graphql-ws frames close the socket only with documented codes, and the server stays up', async () => {
  const app = Fastify();
  const url = await serveGraphql(app);
  // 1005: mercurius ends a connection without a code (a subscribe before connection_init...).
  const allowed = new Set([1005, CLOSE_TOO_BIG, CLOSE_BAD_REQUEST, CLOSE_SUBSCRIBER_EXISTS]);
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 12 }), async (frames) => {
        const socket = new WebSocket(url, 'graphql-transport-ws');
        await once(socket, 'open');
        const closed = once(socket, 'close') as Promise<[number]>;
        for (const frame of frames)
          if (socket.readyState === WebSocket.OPEN) socket.send(frame, { binary: false });
        const outcome = await Promise.race([
          closed,
          new Promise((resolve) => setTimeout(resolve, 100, 'open')),
        ]);
        if (outcome === 'open') {
          socket.terminate();
          await closed;
        } else {
          const [code] = outcome as [number];
          assert.ok(allowed.has(code), `closed with ${code}`);
        }
      }),
      { numRuns: 60 },
    );
    // Still serving: a well-behaved client subscribes as usual.
    const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const subscribed = new Promise<void>((resolve, reject) => {
        client.on('connected', () => resolve());
        client.on('error', reject);
      });
      client.subscribe(
        { query: 'subscription { alerts { ts } }' },
        { next: () => {}, error: () => {}, complete: () => {} },
      );
      await subscribed;
    } finally {
      await client.dispose();
    }
  } finally {
    await app.close();
  }
});
