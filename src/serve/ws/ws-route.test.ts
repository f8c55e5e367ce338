import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { type FakeView, type Json, testServerForSuite } from '../../../test/support/serve.ts';
import { waitForValue, waitUntil } from '../../../test/support/wait.ts';
import type { ServerOptions } from '../server.ts';

/** A real `ws` client that keeps every message it receives. */
class TestClient {
  readonly socket: WebSocket;
  readonly messages: Json[] = [];

  constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()));
    });
  }

  static async open(url: string): Promise<TestClient> {
    const socket = new WebSocket(url);
    const client = new TestClient(socket);
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return client;
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first message (from index `from`) matching, or rejects after `timeoutMs`. */
  waitFor(match: (message: Json) => boolean, from = 0, timeoutMs = 10_000): Promise<Json> {
    return waitForValue(
      () => this.messages.slice(from).find(match),
      () => `a matching message; got ${JSON.stringify(this.messages.slice(-3))}`,
      timeoutMs,
    );
  }

  /** Sends a request and waits for its reply (the next control message after it). */
  async request(message: unknown): Promise<Json> {
    const from = this.messages.length;
    this.send(message);
    return this.waitFor((reply) => 'op' in reply, from);
  }

  close(): void {
    this.socket.terminate();
  }
}

interface TestServer {
  app: FastifyInstance;
  view: FakeView;
  url: string;
}

/** A server started before the suite's tests and closed after them; its fields are set once `before` ran. */
function serverPerSuite(options: Partial<Omit<ServerOptions, 'view'>> = {}): TestServer {
  const server = {} as TestServer;
  testServerForSuite(async ({ app, view }) => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    Object.assign(server, { app, view, url: `ws://127.0.0.1:${port}/ws` });
  }, options);
  return server;
}

describe('subscribe, receive, unsubscribe', () => {
  const server = serverPerSuite();

  test('a subscriber gets {channel, data} for its channels only, until it unsubscribes', async () => {
    const client = await TestClient.open(server.url);
    try {
      const subscribed = await client.request({
        op: 'subscribe',
        channels: ['ticks:btcusdt', 'candles:btcusdt:1m', 'alerts'],
      });
      assert.deepEqual(subscribed, {
        op: 'subscribed',
        channels: ['ticks:BTCUSDT', 'candles:BTCUSDT:1m', 'alerts'],
      });

      const tick = {
        symbol: 'BTCUSDT',
        ts: 1,
        price: 2,
        size: 3,
        id: 'a',
        side: 'buy',
        maShort: null,
        maLong: null,
        late: false,
        source: 's',
      };
      server.view.emit('ticks:ETHUSDT', { symbol: 'ETHUSDT' });
      server.view.emit('ticks:BTCUSDT', tick);
      server.view.emit('alerts', { ts: 1, symbol: 'BTCUSDT', kind: 'anomaly', price: 2, message: 'm' });
      await client.waitFor((message) => message.channel === 'alerts');
      assert.deepEqual(client.messages.slice(1), [
        { channel: 'ticks:BTCUSDT', data: tick },
        { channel: 'alerts', data: { ts: 1, symbol: 'BTCUSDT', kind: 'anomaly', price: 2, message: 'm' } },
      ]);

      const unsubscribed = await client.request({ op: 'unsubscribe', channels: ['ticks:btcusdt'] });
      assert.deepEqual(unsubscribed, { op: 'unsubscribed', channels: ['ticks:BTCUSDT'] });
      const before = client.messages.length;
      server.view.emit('ticks:BTCUSDT', tick);
      server.view.emit('candles:BTCUSDT:1m', { ts: 60_000 });
      // Messages on one socket arrive in order: once the candle is here, the tick would have been.
      await client.waitFor((message) => message.channel === 'candles:BTCUSDT:1m', before);
      assert.deepEqual(client.messages.slice(before), [
        { channel: 'candles:BTCUSDT:1m', data: { ts: 60_000 } },
      ]);
    } finally {
      client.close();
    }
  });

  test('a closed client is forgotten by the hub', async () => {
    const client = await TestClient.open(server.url);
    await client.request({ op: 'subscribe', channels: ['ticks:GONE'] });
    assert.ok(server.app.wsHub.clientStats().some((stats) => stats.channels.includes('ticks:GONE')));
    client.socket.close();
    await new Promise((resolve) => client.socket.once('close', resolve));
    for (
      let i = 0;
      i < 50 && server.app.wsHub.clientStats().some((s) => s.channels.includes('ticks:GONE'));
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(!server.app.wsHub.clientStats().some((stats) => stats.channels.includes('ticks:GONE')));
  });
});

describe('bad frames', () => {
  const server = serverPerSuite({ config: { ws: { maxFrameBytes: 1024, maxSubscriptions: 2 } } });

  test('each gets an error reply with its code and the socket stays usable', async () => {
    const client = await TestClient.open(server.url);
    try {
      const cases: [unknown, string][] = [
        ['not json', 'invalid_json'],
        [{ op: 'dance' }, 'unknown_op'],
        [{ op: 'subscribe', channels: 'alerts' }, 'invalid_message'],
        [{ op: 'subscribe', channels: ['candles:BTCUSDT:7m'] }, 'invalid_channel'],
        [{ op: 'subscribe', channels: ['ticks:A', 'ticks:B', 'ticks:C'] }, 'too_many_subscriptions'],
        // Over 1024 bytes but under the hard limit (4x): answered, not closed.
        [{ op: 'subscribe', channels: ['alerts'], pad: 'x'.repeat(2_000) }, 'frame_too_large'],
      ];
      for (const [message, code] of cases) {
        const reply = await client.request(message);
        assert.equal(reply.op, 'error', JSON.stringify(message).slice(0, 80));
        assert.equal(reply.error.code, code);
      }
      assert.deepEqual(await client.request({ op: 'subscribe', channels: ['alerts'] }), {
        op: 'subscribed',
        channels: ['alerts'],
      });
      const errors = server.app.wsHub.stats().errors;
      assert.equal(errors.invalid_json, 1);
      assert.equal(errors.too_many_subscriptions, 1);
      assert.equal(errors.frame_too_large, 1);
    } finally {
      client.close();
    }
  });

  test('a frame beyond the hard limit closes the socket with 1009, counted', async () => {
    const client = await TestClient.open(server.url);
    const before = server.app.wsHub.stats().errors.frame_too_large;
    const closed = new Promise<number>((resolve) => client.socket.once('close', (code) => resolve(code)));
    client.send('x'.repeat(1024 * 4 + 1));
    assert.equal(await closed, 1009);
    assert.equal(server.app.wsHub.stats().errors.frame_too_large, before + 1);
  });
});

/** Two clients subscribed to ticks:BTCUSDT: the one a test will pause, and one that keeps reading. */
async function slowAndFast(url: string): Promise<{ slow: TestClient; fast: TestClient }> {
  const slow = await TestClient.open(url);
  const fast = await TestClient.open(url);
  try {
    await slow.request({ op: 'subscribe', channels: ['ticks:BTCUSDT'] });
    await fast.request({ op: 'subscribe', channels: ['ticks:BTCUSDT'] });
    return { slow, fast };
  } catch (error) {
    slow.close();
    fast.close();
    throw error;
  }
}

describe('slow clients', () => {
  const maxQueuedBytes = 64 * 1024;
  const server = serverPerSuite({ config: { ws: { maxQueuedBytes } } });

  test('a client that stops reading loses messages (counted) and does not delay another', async () => {
    const { slow, fast } = await slowAndFast(server.url);
    try {
      const [slowStats, fastStats] = server.app.wsHub.clientStats();
      assert.ok(slowStats !== undefined && fastStats !== undefined);
      // Stop reading: the kernel buffers fill, then the server's queue for this client grows.
      (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();

      // 500 x 32 KiB = 16 MiB, well beyond what loopback socket buffers absorb (a few MiB).
      const count = 500;
      const padding = 'p'.repeat(32 * 1024);
      let worstLag = 0;
      for (let n = 0; n < count; n++) {
        server.view.emit('ticks:BTCUSDT', { n, padding });
        // Let both sockets make progress, as a live feed would between messages.
        await nextTurn();
        await nextTurn();
        worstLag = Math.max(worstLag, n + 1 - (fast.messages.length - 1));
      }
      await fast.waitFor((message) => message.data?.n === count - 1, 0, 5_000);

      const received = fast.messages.slice(1).map((message) => message.data.n);
      assert.deepEqual(
        received,
        Array.from({ length: count }, (_, n) => n),
      );
      // The fast client kept up the whole time: never more than a handful of messages behind.
      assert.ok(worstLag <= 20, `fast client fell ${worstLag} messages behind`);

      const stats = server.app.wsHub.clientStats();
      const slowNow = stats.find((client) => client.id === slowStats.id)!;
      const fastNow = stats.find((client) => client.id === fastStats.id)!;
      assert.equal(fastNow.dropped, 0);
      assert.equal(fastNow.sent, count);
      assert.ok(slowNow.dropped > 0, 'the paused client should have lost messages');
      assert.equal(slowNow.sent + slowNow.dropped, count);
      assert.equal(server.app.wsHub.stats().dropped, slowNow.dropped);
      // What the server holds for the paused client stays bounded: the limit plus at most one frame.
      assert.ok(
        slowNow.bufferedBytes <= maxQueuedBytes + padding.length + 100,
        `${slowNow.bufferedBytes} queued`,
      );

      // Once it reads again it catches up and gets new messages.
      (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
      await waitUntil(
        () => server.app.wsHub.clientStats().find((c) => c.id === slowStats.id)!.bufferedBytes === 0,
        'the resumed client to drain its queue',
      );
      server.view.emit('ticks:BTCUSDT', { n: count });
      await slow.waitFor((message) => message.data?.n === count);
    } finally {
      slow.close();
      fast.close();
    }
  });
});

describe("slow clients with slowClient: 'disconnect'", () => {
  const maxQueuedBytes = 64 * 1024;
  const server = serverPerSuite({ config: { ws: { maxQueuedBytes, slowClient: 'disconnect' } } });

  test('a client that stops reading is closed with 1013 (counted); the other gets everything', async () => {
    const { slow, fast } = await slowAndFast(server.url);
    try {
      const closed = new Promise<number>((resolve) => slow.socket.once('close', (code) => resolve(code)));
      (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();

      // As in the drop test: 16 MiB overall, far beyond what loopback buffers absorb.
      const count = 500;
      const padding = 'p'.repeat(32 * 1024);
      for (let n = 0; n < count; n++) {
        server.view.emit('ticks:BTCUSDT', { n, padding });
        await nextTurn();
        await nextTurn();
      }
      await fast.waitFor((message) => message.data?.n === count - 1, 0, 5_000);
      assert.equal(fast.messages.length - 1, count);

      const stats = server.app.wsHub.stats();
      assert.equal(stats.disconnected, 1);
      // Forgotten at once, not when the close handshake completes behind the full queue.
      assert.equal(stats.clients, 1);
      assert.equal(stats.subscriptions, 1);

      // Once it reads again it drains what was queued, then sees the close frame.
      (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
      assert.equal(await closed, 1013);
      assert.ok(slow.messages.length - 1 < count, 'the slow client cannot have received everything');
    } finally {
      slow.close();
      fast.close();
    }
  });
});
