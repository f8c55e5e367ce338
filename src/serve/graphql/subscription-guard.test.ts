import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import Fastify from 'fastify';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { FakeView, seedStore } from '../../../test/support/serve.ts';
import { graphqlRoutes } from './graphql-plugin.ts';

test('a subscription refused for a bad argument gets its code, and is not logged as an error', async () => {
  const lines: { level: number; msg?: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  const app = Fastify({ logger: { level: 'info', stream } });
  await app.register(graphqlRoutes, {
    store: await seedStore(),
    view: new FakeView(),
    limits: { maxLimit: 10, defaultLimit: 5 },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const client = createClient({
    url: `ws://127.0.0.1:${port}/graphql`,
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
