/**
 * The WebSocket connection manager on its own, against real sockets on 127.0.0.1 and an injected clock:
 * backoff, watchdog, heartbeats, rate limits and rotation move only when the test advances time, and every
 * failure is named by its true cause (DNS, refused, TLS, HTTP) without ever calling a connection that never
 * opened "lost".
 */
import assert from 'node:assert/strict';
import type { LookupFunction } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FakeExchange } from '../../../test/fakes/fake-exchange.ts';
import { ManualClock } from '../../../test/fakes/manual-clock.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import { closedPort } from '../conformance.ts';
import { classifyConnectError, redactUrl, WsConnection, type WsConnectionOptions } from './ws-connection.ts';

/** A resolver that answers as getaddrinfo does for a name that does not exist, without asking a DNS server. */
const unresolvable: LookupFunction = (hostname, _options, callback) => {
  const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
    code: 'ENOTFOUND',
    syscall: 'getaddrinfo',
    hostname,
  });
  process.nextTick(() => callback(error, '', 0));
};

describe('WsConnection', () => {
  let clock: ManualClock;
  let exchange: FakeExchange;
  let connection: WsConnection | undefined;
  let logs: string[];
  let messages: string[];

  beforeEach(async () => {
    clock = new ManualClock();
    exchange = await FakeExchange.start({});
    logs = [];
    messages = [];
  });
  afterEach(async () => {
    connection?.stop();
    connection = undefined;
    await exchange.close();
  });

  function connect(options: Partial<WsConnectionOptions> = {}): WsConnection {
    connection = new WsConnection({
      name: 'test',
      url: () => exchange.wsUrl,
      subscribeMessages: () => [{ op: 'subscribe' }],
      onMessage: (text) => messages.push(text),
      clock,
      random: () => 1,
      initialBackoffMs: 100,
      maxBackoffMs: 1_000,
      staleAfterMs: 5_000,
      log: (line) => logs.push(line),
      ...options,
    });
    connection.start();
    return connection;
  }

  it('connects, sends its subscription, and reports connected with no cause', async () => {
    const live = connect();
    assert.equal(live.status().state, 'connecting');
    await waitUntil(() => exchange.clients[0]?.received.length === 1, 'subscription');
    assert.deepEqual(exchange.clients[0]?.received, [{ op: 'subscribe' }]);
    const status = live.status();
    assert.equal(status.state, 'connected');
    assert.equal(status.connected, true);
    assert.equal(status.failedAttempts, 0);
    assert.equal(status.cause, undefined);
    assert.equal(status.lastConnectedAt, clock.now());
    assert.deepEqual(logs, [`[test] connected to ${exchange.wsUrl}`]);
  });

  it('a closed port is `failing` with cause `refused`, counts attempts, backs off, and never says "lost"', async () => {
    const port = await closedPort();
    const live = connect({ url: () => `ws://127.0.0.1:${port}/ws` });
    await waitUntil(() => live.status().state === 'failing', 'first failure');
    let status = live.status();
    assert.equal(status.causeKind, 'refused');
    assert.equal(status.cause, `connection refused by 127.0.0.1:${port} (nothing listens there)`);
    assert.equal(status.failedAttempts, 1);
    assert.equal(status.lastConnectedAt, null);
    // random() = 1: every delay is its cap, 100 ms doubling up to the 1 s maximum.
    const delays = ['100 ms', '200 ms', '400 ms', '800 ms', '1.0 s'];
    for (const [index, delay] of delays.entries()) {
      const attempts = index + 1;
      await waitUntil(() => live.status().failedAttempts === attempts, `attempt ${attempts}`);
      assert.match(logs[index]!, new RegExp(`; ${attempts} failed attempts?, retrying in ${delay}$`));
      clock.advance(Number.parseFloat(delay) * (delay.endsWith(' s') ? 1_000 : 1));
    }
    await waitUntil(() => live.status().failedAttempts === 6, 'attempt 6');
    status = live.status();
    assert.equal(status.state, 'failing');
    assert.equal(status.reconnects, 0);
    assert.equal(logs.length, 6);
    assert.match(
      logs[0]!,
      new RegExp(
        `^\\[test\\] cannot connect to ws://127.0.0.1:${port}/ws: connection refused .*; 1 failed attempt, retrying in 100 ms$`,
      ),
    );
    assert.ok(!logs.some((line) => /lost/.test(line)), logs.join('\n'));
  });

  it('a host that does not resolve is `failing` with cause `dns` naming the host', async () => {
    const live = connect({ url: () => 'wss://stream.nowhere.invalid:9443/ws', lookup: unresolvable });
    await waitUntil(() => live.status().state === 'failing', 'failure');
    const status = live.status();
    assert.equal(status.causeKind, 'dns');
    assert.equal(
      status.cause,
      'DNS lookup failed for stream.nowhere.invalid (ENOTFOUND: the host does not resolve)',
    );
    assert.match(logs[0]!, /cannot connect to wss:\/\/stream\.nowhere\.invalid:9443\/ws: DNS lookup failed/);
  });

  it('a TLS client meeting a plain server is `failing` with cause `tls`', async () => {
    const live = connect({ url: () => `wss://127.0.0.1:${exchange.port}/` });
    await waitUntil(() => live.status().state === 'failing', 'failure');
    assert.equal(live.status().causeKind, 'tls', String(live.status().cause));
    assert.match(live.status().cause ?? '', /^TLS handshake with 127\.0\.0\.1:\d+ failed/);
  });

  it('an upgrade answered 503 is retried (`http` cause); 401 is fatal', async () => {
    exchange.refuseUpgrade = { status: 503, body: 'maintenance' };
    const live = connect();
    await waitUntil(() => live.status().state === 'failing', 'failure');
    assert.equal(live.status().causeKind, 'http');
    assert.match(live.status().cause ?? '', /HTTP 503 maintenance/);
    exchange.refuseUpgrade = { status: 401, body: 'bad key' };
    clock.advance(100);
    await waitUntil(() => live.status().state === 'fatal', 'fatal');
    const status = live.status();
    assert.equal(status.causeKind, 'http');
    assert.match(status.fatal ?? '', /HTTP 401 unauthorised/);
    assert.equal(status.cause, status.fatal);
    clock.advance(60_000);
    assert.equal(exchange.upgradeAttempts, 2, 'no retry after a fatal refusal');
  });

  it('a dropped connection is `reconnecting` with cause `closed`, then connected again; attempts reset', async () => {
    const live = connect();
    await waitUntil(() => exchange.openClients().length === 1, 'open');
    await waitUntil(() => live.status().state === 'connected', 'connected');
    clock.advance(3_000);
    exchange.dropAll();
    await waitUntil(() => live.status().state === 'reconnecting', 'reconnecting');
    assert.equal(live.status().causeKind, 'closed');
    assert.equal(live.status().cause, 'closed by the server (code 1006)');
    assert.match(
      logs.at(-1)!,
      /connection lost after 3\.0 s \(closed by the server \(code 1006\)\); reconnecting in 100 ms/,
    );
    clock.advance(100);
    await waitUntil(() => live.status().state === 'connected', 'reconnected');
    const status = live.status();
    assert.equal(status.reconnects, 1);
    assert.equal(status.failedAttempts, 0);
    assert.equal(status.cause, undefined);
    assert.deepEqual(exchange.clients[1]?.received, [{ op: 'subscribe' }], 'resubscribed');
  });

  it('the watchdog drops a socket that says nothing for staleAfterMs (and a ping counts as life)', async () => {
    const live = connect({ staleAfterMs: 2_000 });
    await waitUntil(() => live.status().state === 'connected', 'connected');
    clock.advance(1_500);
    exchange.clients[0]!.ws.ping();
    await waitUntil(() => exchange.clients[0]!.pongs === 1, 'pong');
    clock.advance(1_500);
    assert.equal(live.status().state, 'connected', 'the ping at 1.5 s kept it alive at 3 s');
    clock.advance(1_000);
    assert.equal(live.status().state, 'reconnecting');
    assert.equal(live.status().causeKind, 'stale');
    clock.advance(100);
    await waitUntil(() => exchange.clients.length === 2 && live.status().state === 'connected', 'new socket');
  });

  it('sends heartbeats every intervalMs and outgoing messages no faster than the limit', async () => {
    let beat = 0;
    const live = connect({
      heartbeat: { intervalMs: 10_000, message: () => ({ op: 'ping', n: ++beat }) },
      maxOutgoingPerSecond: 2,
      staleAfterMs: 60_000,
    });
    await waitUntil(() => live.status().state === 'connected', 'connected');
    await waitUntil(() => exchange.clients[0]!.received.length === 1, 'subscription');
    for (let i = 0; i < 3; i++) live.send({ op: 'extra', i });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(exchange.clients[0]!.received.length, 1, 'the rest waits for the 500 ms spacing');
    clock.advance(500);
    await waitUntil(() => exchange.clients[0]!.received.length === 2, 'second message');
    clock.advance(1_000);
    await waitUntil(() => exchange.clients[0]!.received.length === 4, 'all sent');
    clock.advance(10_000);
    await waitUntil(() => exchange.clients[0]!.received.length === 5, 'heartbeat');
    assert.deepEqual(exchange.clients[0]!.received.at(-1), { op: 'ping', n: 1 });
  });

  it('rotates before maxLifetimeMs without a gap: a second socket, the old one closed, no reconnect', async () => {
    const live = connect({ maxLifetimeMs: 60_000, staleAfterMs: 120_000 });
    await waitUntil(() => live.status().state === 'connected', 'connected');
    clock.advance(60_000);
    await waitUntil(() => exchange.clients.length === 2, 'second socket');
    await waitUntil(() => exchange.clients[1]!.received.length === 1, 'second subscribed');
    exchange.clients[1]!.ws.send('{"first":true}');
    await waitUntil(() => exchange.openClients().length === 1, 'old socket closed');
    assert.equal(exchange.openClients()[0], exchange.clients[1]);
    const status = live.status();
    assert.equal(status.rotations, 1);
    assert.equal(status.reconnects, 0);
    assert.equal(status.state, 'connected');
    assert.deepEqual(messages, ['{"first":true}']);
  });

  it('stop() closes the socket and cancels the pending attempt', async () => {
    const port = await closedPort();
    const live = connect({ url: () => `ws://127.0.0.1:${port}` });
    await waitUntil(() => live.status().state === 'failing', 'failure');
    live.stop();
    assert.equal(live.status().state, 'stopped');
    assert.deepEqual(clock.pendingDelays(), []);
  });
});

describe('classifyConnectError', () => {
  const url = 'wss://stream.example.com/ws';
  const error = (code: string, message = code) => Object.assign(new Error(message), { code });

  it('names DNS, refused, TLS, timeout and other network errors', () => {
    assert.equal(classifyConnectError(error('EAI_AGAIN'), url).kind, 'dns');
    assert.equal(
      classifyConnectError(error('ECONNREFUSED'), url).message,
      'connection refused by stream.example.com:443 (nothing listens there)',
    );
    assert.equal(classifyConnectError(error('CERT_HAS_EXPIRED'), url).kind, 'tls');
    assert.equal(classifyConnectError(error('ERR_TLS_CERT_ALTNAME_INVALID'), url).kind, 'tls');
    assert.equal(classifyConnectError(new Error('Opening handshake has timed out'), url).kind, 'timeout');
    assert.equal(classifyConnectError(error('ECONNRESET'), url).kind, 'network');
    // Happy eyeballs reports one error per address tried.
    const aggregate = new AggregateError([error('ECONNREFUSED')], 'connect failed');
    assert.equal(classifyConnectError(aggregate, url).kind, 'refused');
  });

  it('keeps tokens out of URLs it logs', () => {
    assert.equal(redactUrl('wss://ws.finnhub.io/?token=secret'), 'wss://ws.finnhub.io');
    assert.equal(redactUrl('ws://127.0.0.1:9/v2/iex?key=k'), 'ws://127.0.0.1:9/v2/iex');
  });
});
