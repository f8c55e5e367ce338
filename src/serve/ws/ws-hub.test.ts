import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../../../test/support/serve.ts';
import { LiveJson } from '../../core/pipeline-view.ts';
import { type HubSocket, WsHub } from './ws-hub.ts';

/** Records what the hub sends; `bufferedAmount` is set by the test to play a slow client. */
class FakeSocket implements HubSocket {
  readyState = 1;
  bufferedAmount = 0;
  readonly frames: Buffer[] = [];
  closedWith: number | undefined;
  send(data: Buffer): void {
    this.frames.push(data);
  }
  close(code: number): void {
    this.closedWith = code;
    this.readyState = 2;
  }
  messages(): Json[] {
    return this.frames.map((frame) => JSON.parse(frame.toString('utf8')));
  }
}

function makeHub(overrides: Partial<ConstructorParameters<typeof WsHub>[0]> = {}): WsHub {
  return new WsHub({
    maxQueuedBytes: 1000,
    maxSubscriptions: 3,
    maxFrameBytes: 200,
    maxMessagesPerSecond: 1_000,
    ...overrides,
  });
}

function send(hub: WsHub, client: ReturnType<WsHub['addClient']>, message: unknown): void {
  hub.receive(client, Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)));
}

/** A fake socket added to `hub` as a client that has subscribed to `channels`. */
function subscribed(hub: WsHub, channels: string[]) {
  const socket = new FakeSocket();
  const client = hub.addClient(socket);
  send(hub, client, { op: 'subscribe', channels });
  return { socket, client };
}

test('a message on an unwatched channel is not serialised; a watched one once for all its clients', () => {
  const hub = makeHub();
  const { socket: a } = subscribed(hub, ['ticks:btcusdt']);
  const { socket: b } = subscribed(hub, ['ticks:BTCUSDT', 'alerts']);
  assert.deepEqual(a.messages(), [{ op: 'subscribed', channels: ['ticks:BTCUSDT'] }]);

  hub.publish('ticks:ETHUSDT', { price: 1 });
  assert.equal(hub.stats().serialised, 0);

  hub.publish('ticks:BTCUSDT', { price: 2 });
  const stats = hub.stats();
  assert.equal(stats.published, 2);
  assert.equal(stats.serialised, 1);
  assert.equal(stats.sent, 2);
  // Both clients got the very same buffer: serialised once, not per client.
  assert.equal(a.frames.at(-1), b.frames.at(-1));
  assert.deepEqual(a.messages().at(-1), { channel: 'ticks:BTCUSDT', data: { price: 2 } });
});

test('a batch published in one run leaves in one write per client: its stream is corked until after it', async () => {
  const hub = makeHub();
  const socket = new FakeSocket();
  const stream = {
    corked: 0,
    writes: [] as number[],
    cork() {
      this.corked++;
    },
    uncork() {
      this.corked--;
      // What a corked stream does on its last uncork: everything sent since leaves in one write.
      if (this.corked === 0) this.writes.push(socket.frames.length);
    },
  };
  const client = hub.addClient(socket, stream);
  send(hub, client, { op: 'subscribe', channels: ['ticks:BTCUSDT', 'alerts'] });
  for (let i = 0; i < 10; i++) hub.publish('ticks:BTCUSDT', { price: i });
  hub.publish('alerts', { kind: 'price_above' });
  assert.equal(stream.corked, 1, 'corked while the batch is being published');
  assert.equal(socket.frames.length, 12);
  await Promise.resolve();
  assert.equal(stream.corked, 0);
  assert.deepEqual(stream.writes, [12]);
  // The next batch corks again.
  hub.publish('ticks:BTCUSDT', { price: 10 });
  await Promise.resolve();
  assert.deepEqual(stream.writes, [12, 13]);
});

test('bytes waiting in a corked stream during a batch do not count against the client', async () => {
  const hub = makeHub({ maxQueuedBytes: 1000 });
  // While corked, what is sent stays queued in the process: bufferedAmount grows with every send.
  class CorkedSocket extends FakeSocket {
    override send(data: Buffer): void {
      super.send(data);
      this.bufferedAmount += data.length;
    }
  }
  const socket = new CorkedSocket();
  const stream = {
    cork() {},
    uncork() {
      socket.bufferedAmount = 0;
    },
  };
  const client = hub.addClient(socket, stream);
  send(hub, client, { op: 'subscribe', channels: ['ticks:BTCUSDT'] });
  socket.bufferedAmount = 0;
  for (let i = 0; i < 40; i++) hub.publish('ticks:BTCUSDT', { price: i });
  assert.ok(socket.bufferedAmount > 1000, 'the batch is larger than the queue limit');
  assert.equal(hub.stats().dropped, 0);
  await Promise.resolve();
  // A client whose socket really is behind still loses messages.
  socket.bufferedAmount = 5000;
  hub.publish('ticks:BTCUSDT', { price: 40 });
  assert.equal(hub.stats().dropped, 1);
});

test('data that came serialised (LiveJson) is sent as its JSON text, never parsed', () => {
  const hub = makeHub();
  const { socket } = subscribed(hub, ['ticks:BTCUSDT']);
  const data = new LiveJson('{"price":2.50,"note":"kept as sent"}');
  hub.publish('ticks:BTCUSDT', data);
  // 2.50, not 2.5: the text went out as it came rather than through JSON.parse and JSON.stringify.
  assert.equal(
    socket.frames.at(-1)?.toString('utf8'),
    '{"channel":"ticks:BTCUSDT","data":{"price":2.50,"note":"kept as sent"}}',
  );
  hub.publish('ticks:ETHUSDT', new LiveJson('not json: nobody watches, so nobody parses it'));
  assert.equal(hub.stats().sent, 1);
});

test('unsubscribe stops delivery and an emptied channel costs nothing again', () => {
  const hub = makeHub();
  const socket = new FakeSocket();
  const client = hub.addClient(socket);
  send(hub, client, { op: 'subscribe', channels: ['alerts'] });
  send(hub, client, { op: 'unsubscribe', channels: ['alerts', 'ticks:X'] });
  assert.deepEqual(socket.messages().at(-1), { op: 'unsubscribed', channels: ['alerts', 'ticks:X'] });
  hub.publish('alerts', {});
  assert.equal(hub.stats().serialised, 0);
  assert.equal(hub.stats().channels, 0);
});

test('a client over maxQueuedBytes loses live messages (counted) while the others still get them', () => {
  const hub = makeHub();
  const { socket: slow, client: slowClient } = subscribed(hub, ['alerts']);
  const { socket: fast, client: fastClient } = subscribed(hub, ['alerts']);
  slow.bufferedAmount = 1001;
  hub.publish('alerts', { n: 1 });
  hub.publish('alerts', { n: 2 });
  slow.bufferedAmount = 1000; // at the limit is still allowed
  hub.publish('alerts', { n: 3 });
  assert.deepEqual(
    slow
      .messages()
      .slice(1)
      .map((message) => message.data.n),
    [3],
  );
  assert.deepEqual(
    fast
      .messages()
      .slice(1)
      .map((message) => message.data.n),
    [1, 2, 3],
  );
  assert.equal(hub.stats().dropped, 2);
  assert.deepEqual(
    hub.clientStats().map((client) => [client.id, client.dropped, client.sent]),
    [
      [slowClient.id, 2, 1],
      [fastClient.id, 0, 3],
    ],
  );
});

test('bad frames get an error reply with a stable code, and are counted', () => {
  const hub = makeHub();
  const socket = new FakeSocket();
  const client = hub.addClient(socket);
  const cases: [unknown, string][] = [
    ['{not json', 'invalid_json'],
    ['[1]', 'invalid_message'],
    [{ op: 'publish', channels: [] }, 'unknown_op'],
    [{ op: 'subscribe' }, 'invalid_message'],
    [{ op: 'subscribe', channels: ['ticks:bad symbol'] }, 'invalid_channel'],
    [{ op: 'subscribe', channels: ['a'.repeat(300)] }, 'frame_too_large'],
  ];
  for (const [message, code] of cases) {
    send(hub, client, message);
    const reply = socket.messages().at(-1);
    assert.equal(reply.op, 'error', String(message));
    assert.equal(reply.error.code, code, String(message));
    assert.equal(typeof reply.error.message, 'string');
  }
  const errors = hub.stats().errors;
  assert.equal(errors.invalid_json, 1);
  assert.equal(errors.invalid_message, 2);
  assert.equal(errors.unknown_op, 1);
  assert.equal(errors.invalid_channel, 1);
  assert.equal(errors.frame_too_large, 1);
});

test('a subscribe is applied whole or not at all, and the subscription limit holds', () => {
  const hub = makeHub();
  const socket = new FakeSocket();
  const client = hub.addClient(socket);
  send(hub, client, { op: 'subscribe', channels: ['alerts', 'ticks:bad one'] });
  assert.equal(hub.stats().subscriptions, 0);

  // Duplicates and an existing subscription do not count twice against the limit of 3.
  send(hub, client, { op: 'subscribe', channels: ['ticks:A', 'ticks:a', 'ticks:B'] });
  send(hub, client, { op: 'subscribe', channels: ['ticks:B', 'ticks:C'] });
  assert.deepEqual(socket.messages().at(-1), { op: 'subscribed', channels: ['ticks:B', 'ticks:C'] });
  send(hub, client, { op: 'subscribe', channels: ['ticks:D'] });
  const reply = socket.messages().at(-1);
  assert.equal(reply.error.code, 'too_many_subscriptions');
  assert.match(reply.error.message, /limit of 3/);
  assert.deepEqual([...client.channels], ['ticks:A', 'ticks:B', 'ticks:C']);
  assert.equal(hub.stats().errors.too_many_subscriptions, 1);
});

test('removing a client drops all its subscriptions', () => {
  const hub = makeHub();
  const client = hub.addClient(new FakeSocket());
  send(hub, client, { op: 'subscribe', channels: ['alerts', 'ticks:A'] });
  hub.removeClient(client);
  assert.deepEqual(
    {
      clients: hub.stats().clients,
      channels: hub.stats().channels,
      subscriptions: hub.stats().subscriptions,
    },
    { clients: 0, channels: 0, subscriptions: 0 },
  );
});

test('publish never throws into the pipeline, even on unserialisable data or closed sockets', () => {
  const hub = makeHub();
  const socket = new FakeSocket();
  const client = hub.addClient(socket);
  send(hub, client, { op: 'subscribe', channels: ['alerts'] });
  assert.doesNotThrow(() => hub.publish('alerts', { big: 1n }));
  socket.readyState = 3;
  hub.publish('alerts', { ok: true });
  assert.equal(socket.frames.length, 1); // only the subscribed reply
});

test('frames beyond maxMessagesPerSecond in one second are answered rate_limited and ignored', () => {
  const hub = makeHub({ maxMessagesPerSecond: 2 });
  const socket = new FakeSocket();
  const client = hub.addClient(socket);
  const subscribe = (channel: string, nowMs: number) =>
    hub.receive(client, Buffer.from(JSON.stringify({ op: 'subscribe', channels: [channel] })), nowMs);
  subscribe('ticks:A', 10_000);
  subscribe('ticks:B', 10_500);
  subscribe('ticks:C', 10_999); // third frame in the window [10 000, 11 000): refused
  assert.equal(socket.messages().at(-1).error.code, 'rate_limited');
  assert.deepEqual([...client.channels], ['ticks:A', 'ticks:B']);
  subscribe('ticks:C', 11_000); // a new window
  assert.deepEqual(socket.messages().at(-1), { op: 'subscribed', channels: ['ticks:C'] });
  assert.equal(hub.stats().errors.rate_limited, 1);
});

test("slowClient 'disconnect' closes a client over its queue limit with 1013, counted and forgotten", () => {
  const hub = makeHub({ slowClient: 'disconnect' });
  const slow = new FakeSocket();
  const fast = new FakeSocket();
  send(hub, hub.addClient(slow), { op: 'subscribe', channels: ['alerts'] });
  send(hub, hub.addClient(fast), { op: 'subscribe', channels: ['alerts'] });
  slow.bufferedAmount = 1001;
  hub.publish('alerts', { n: 1 });
  assert.equal(slow.closedWith, 1013);
  assert.equal(fast.closedWith, undefined);
  assert.deepEqual(fast.messages().at(-1), { channel: 'alerts', data: { n: 1 } });
  const stats = hub.stats();
  assert.equal(stats.disconnected, 1);
  assert.equal(stats.dropped, 1);
  assert.equal(stats.clients, 1);
  assert.equal(stats.subscriptions, 1);
  hub.publish('alerts', { n: 2 });
  assert.equal(hub.stats().disconnected, 1, 'counted once');
});
