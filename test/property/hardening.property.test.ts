/**
 * The attacks of an outside probe (issue #17), replayed over real sockets against a real
 * `streamlines run` process while it ingests a replay. Under each one, a separate prober process
 * checks that `/health` keeps answering within HEALTH_BOUND_MS and that the server's RSS stays
 * within RSS_BUDGET_BYTES of where it was (the budget docs/security.md states); the attacker gets
 * the documented error code; and at the end every tick of the replay is in the store.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import WebSocket from 'ws';
import { ERRORS } from '../../src/serve/errors.ts';
import { type RunningCli, runCliOnce, startCli, stopCli, waitDrained } from '../support/cli.ts';
import { parseExposition, sampleValue } from '../support/parse-exposition.ts';
import type { Json } from '../support/serve.ts';

/** The acceptance bound of issue #17 for a `/health` answer under attack. */
const HEALTH_BOUND_MS = 100;
/** The RSS growth docs/security.md allows under any one attack. */
const RSS_BUDGET_BYTES = 256 * 1_048_576;
const SYMBOLS = ['BTCUSDT', 'ETHUSDT'];
const TICKS = 60_000;
/** Event time between ticks, and the replay speed: 1 200 s of event time in about 24 s. */
const TICK_SPACING_MS = 20;
const SPEED = 50;
/** Clients that subscribe to every tick and never read: as many as one address may open by default. */
const SLOW_READERS = 20;
const BUSY_CHANNELS = SYMBOLS.map((s) => `ticks:${s}`);

const CONFIG = {
  server: {
    logLevel: 'warn',
    graphql: { maxResponseBytes: 500_000 },
    auth: { maxFailedKeysPerMinute: 10 },
    ws: {
      maxConnections: 130,
      maxConnectionsPerClient: 100,
      // With the default 1 MiB per client, 20 slow readers could queue 20 MiB without the total.
      maxTotalQueuedBytes: 2 * 1_048_576,
      maxMessagesPerSecond: 1_000,
      maxSubscriptions: 100,
    },
  },
};

let dir: string;
let cli: RunningCli;
let baseUrl: string;
let wsUrl: string;
const keys: string[] = [];
/** Every socket a test opened, closed after each test whatever its outcome. */
const openSockets: WebSocket[] = [];

interface ProbeResult {
  latenciesMs: number[];
  failures: number;
  rssBytes: { first: number; max: number };
}

/** Starts a prober process on the server; `stop` ends it and returns what it measured. */
function startProber(): { stop: () => Promise<ProbeResult> } {
  const prober: ChildProcess = spawn(
    process.execPath,
    [join(import.meta.dirname, '../support/health-prober.ts'), baseUrl, String(cli.child.pid)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let output = '';
  prober.stdout!.on('data', (chunk) => {
    output += chunk;
  });
  return {
    stop: async () => {
      prober.stdin!.end();
      await once(prober, 'exit');
      return JSON.parse(output) as ProbeResult;
    },
  };
}

function percentile95(latenciesMs: readonly number[]): number {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length * 0.95)] ?? 0;
}

/** /health's p95 over 1.5 s with no attack. */
async function quietP95(): Promise<number> {
  const quiet = startProber();
  await sleep(1_500);
  return percentile95((await quiet.stop()).latenciesMs);
}

/**
 * Runs `attack` while a prober process measures /health and the server's RSS, and asserts both
 * bounds. The machine is shared (its load average is often far above its 2 cores, and swings
 * within seconds), so the latency bound is on what the attack adds: /health's p95 under attack,
 * over at least 3 s of probes, may exceed its p95 over the 1.5 s before or after the attack
 * (the larger) by at most HEALTH_BOUND_MS.
 */
async function underAttack<T>(name: string, attack: () => Promise<T>): Promise<T> {
  const before = await quietP95();
  const prober = startProber();
  await sleep(200);
  let result: T;
  let probe: ProbeResult;
  try {
    // At least 3 s of probes, however quickly the server turns the attack away, so that p95 is
    // not one probe that met a garbage collection or a store write.
    [result] = await Promise.all([attack(), sleep(3_000)]);
  } finally {
    probe = await prober.stop();
  }
  const after = await quietP95();
  const reference = Math.max(before, after);
  const p95 = percentile95(probe.latenciesMs);
  const max = Math.max(...probe.latenciesMs);
  const growth = probe.rssBytes.max - probe.rssBytes.first;
  console.log(
    `${name}: ${probe.latenciesMs.length} /health probes, p95 ${p95.toFixed(1)} ms (quiet: ${before.toFixed(1)} ms ` +
      `before, ${after.toFixed(1)} ms after), max ${max.toFixed(1)} ms; RSS ${(probe.rssBytes.first / 1_048_576).toFixed(0)} MB, ` +
      `+${(growth / 1_048_576).toFixed(1)} MB at most`,
  );
  assert.equal(probe.failures, 0, `${name}: /health failed under attack`);
  assert.ok(probe.latenciesMs.length >= 3, `${name}: too few probes (${probe.latenciesMs.length})`);
  assert.ok(
    p95 <= reference + HEALTH_BOUND_MS,
    `${name}: /health p95 ${p95.toFixed(1)} ms, more than ${HEALTH_BOUND_MS} ms over ${reference.toFixed(1)} ms without attack`,
  );
  assert.ok(growth <= RSS_BUDGET_BYTES, `${name}: RSS grew by ${(growth / 1_048_576).toFixed(0)} MB`);
  return result;
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), name, labels);
}

async function postGraphql(body: unknown): Promise<{ status: number; json: Json }> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

/** Opens a WebSocket, resolving once open, or with the HTTP status of a refused upgrade. */
function connect(
  path: string,
  options: { key?: string; protocol?: string } = {},
): Promise<{ socket: WebSocket } | { status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}${path}`, options.protocol, {
      headers: options.key === undefined ? {} : { authorization: `Bearer ${options.key}` },
    });
    socket.once('open', () => {
      openSockets.push(socket);
      resolve({ socket });
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(body) }));
    });
    socket.once('error', reject);
  });
}

function opened(result: Awaited<ReturnType<typeof connect>>): WebSocket {
  assert.ok('socket' in result, `expected an open socket, got ${JSON.stringify(result)}`);
  return result.socket;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(async (socket) => {
      if (socket.readyState === WebSocket.CLOSED) return;
      const closed = once(socket, 'close');
      socket.terminate();
      await closed;
    }),
  );
  // The server releases a connection when its socket closes on its side.
  for (let i = 0; i < 100 && (await metric('streamlines_ws_connections')) > 0; i++) await sleep(100);
  assert.equal(await metric('streamlines_ws_connections'), 0);
}

/** A raw HTTP request, for what fetch will not send (a Host header of our choosing, a huge URL). */
function rawGet(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const request = httpRequest({ hostname, port, path, headers }, (response) => {
      let body = '';
      response.on('data', (chunk) => {
        body += chunk;
      });
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    request.on('error', reject);
    request.end();
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamlines-hardening-'));
  const lines: string[] = [];
  const start = 1_700_000_000_000;
  for (let i = 0; i < TICKS; i++) {
    const symbol = SYMBOLS[i % SYMBOLS.length]!;
    const price = 100 + Math.sin(i / 500) * 5;
    lines.push(JSON.stringify({ symbol, ts: start + i * TICK_SPACING_MS, price, size: 1, id: String(i) }));
  }
  const replay = join(dir, 'ticks.ndjson');
  await writeFile(replay, `${lines.join('\n')}\n`);
  const configPath = join(dir, 'config.json');
  await writeFile(configPath, JSON.stringify(CONFIG));
  const dataDir = join(dir, 'data');
  for (const name of ['a', 'b']) {
    const created = await runCliOnce([
      'keys',
      'create',
      '--name',
      name,
      '--role',
      'read',
      '--data-dir',
      dataDir,
    ]);
    assert.equal(created.code, 0, created.stderr);
    keys.push(created.stdout.trim());
  }
  cli = await startCli([
    '--config',
    configPath,
    '--data-dir',
    dataDir,
    '--replay',
    replay,
    '--speed',
    String(SPEED),
  ]);
  baseUrl = cli.baseUrl;
  wsUrl = baseUrl.replace(/^http/, 'ws');
  // One ordinary query first: what is measured is the attacks, not the first compile of GraphQL.
  assert.equal((await postGraphql({ query: '{ symbols { symbol } }' })).status, 200);
});

afterEach(async () => {
  await closeAll(openSockets.splice(0));
});

after(async () => {
  if (cli !== undefined) await stopCli(cli);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('one client cannot take the server down', { concurrency: false }, () => {
  test('readers that never read are shed, slowest first, within the total queue budget', async () => {
    const sockets: WebSocket[] = [];
    const reader = opened(await connect('/ws'));
    let readerMessages = 0;
    reader.on('message', () => readerMessages++);
    reader.send(JSON.stringify({ op: 'subscribe', channels: SYMBOLS.map((s) => `ticks:${s}`) }));
    const shedBefore = await metric('streamlines_serve_limit_refusals_total', {
      limit: 'ws.maxTotalQueuedBytes',
    });
    await underAttack('slow readers', async () => {
      for (let i = 0; i < SLOW_READERS; i++) {
        const socket = opened(await connect('/ws'));
        socket.send(JSON.stringify({ op: 'subscribe', channels: BUSY_CHANNELS }));
        socket.pause();
        sockets.push(socket);
      }
      const deadline = Date.now() + 40_000;
      while (Date.now() < deadline) {
        const shed =
          (await metric('streamlines_serve_limit_refusals_total', { limit: 'ws.maxTotalQueuedBytes' })) -
          shedBefore;
        if (shed > 0) break;
        await sleep(250);
      }
    });
    const shed =
      (await metric('streamlines_serve_limit_refusals_total', { limit: 'ws.maxTotalQueuedBytes' })) -
      shedBefore;
    assert.ok(shed > 0, 'no slow reader was shed');
    // Dropped on the server's side (a paused client never reads the end of its connection).
    assert.ok((await metric('streamlines_ws_connections')) <= SLOW_READERS + 1 - shed);
    assert.ok((await metric('streamlines_ws_queued_bytes')) <= CONFIG.server.ws.maxTotalQueuedBytes * 2);
    // The reader that reads had nothing queued: it is never the one shed, and it kept receiving.
    assert.equal(reader.readyState, WebSocket.OPEN);
    assert.ok(readerMessages > 100, `the reading client got ${readerMessages} messages`);
    await closeAll([...sockets, reader]);
  });

  test('GraphQL alias amplification is refused before it runs (query_too_costly)', async () => {
    const aliases = (count: number, limit: number) =>
      `{ ${Array.from({ length: count }, (_, i) => `a${i}: ticks(symbol: "BTCUSDT", limit: ${limit}) { ts price size id maShort maLong late }`).join(' ')} }`;
    await underAttack('GraphQL aliases', async () => {
      // The probe's request: 1 000 aliases of a 10 000-row query, 80 KB (over maxTokens).
      const probe = await postGraphql({ query: aliases(1_000, 10_000) });
      assert.equal(probe.status, ERRORS.query_too_costly.status);
      assert.equal(probe.json.errors[0].extensions.code, 'query_too_costly');
      // Any document over the cost is refused, whatever its shape.
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 30, max: 300 }),
          fc.integer({ min: 7_000, max: 10_000 }),
          async (count, limit) => {
            const { status, json } = await postGraphql({ query: aliases(count, limit) });
            assert.equal(status, 400);
            assert.equal(json.errors[0].extensions.code, 'query_too_costly');
            assert.equal(json.data, null);
          },
        ),
        { numRuns: 25 },
      );
    });
    // 26 refusals, by cost or (for the longest documents) by tokens first.
    const byCost = await metric('streamlines_serve_limit_refusals_total', { limit: 'graphql.maxCost' });
    const byTokens = await metric('streamlines_serve_limit_refusals_total', { limit: 'graphql.maxTokens' });
    assert.ok(byTokens >= 1);
    assert.equal(byCost + byTokens, 26);
    // Under the cost, an answer over maxResponseBytes (500 000 here) is replaced, not sent.
    const big = await postGraphql({ query: aliases(1, 10_000) });
    assert.equal(big.status, ERRORS.response_too_large.status);
    assert.equal(big.json.errors[0].extensions.code, 'response_too_large');
  });

  test('GraphQL subscriptions meet the /ws limits: rate, count, ids, message shape', async () => {
    const rateLimitedBefore = await metric('streamlines_serve_limit_refusals_total', {
      limit: 'ws.maxMessagesPerSecond',
    });
    await underAttack('GraphQL subscription flood', async () => {
      const socket = opened(await connect('/graphql', { protocol: 'graphql-transport-ws' }));
      const errors = new Map<string, string>();
      socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        if (message.type === 'error') errors.set(message.id, message.payload[0].extensions.code);
      });
      socket.send(JSON.stringify({ type: 'connection_init' }));
      await once(socket, 'message');
      const frames = 5_000;
      for (let i = 0; i < frames; i++) {
        socket.send(
          JSON.stringify({
            type: 'subscribe',
            id: String(i),
            // A quiet channel: the cost measured is the flood's, not that of 100 busy subscriptions.
            payload: { query: 'subscription { alerts { ts } }' },
          }),
        );
      }
      // Every frame is one of the 100 subscriptions allowed, refused over the subscription cap
      // (each told so), or dropped over the frame rate (counted; the first of each second told).
      const { maxSubscriptions } = CONFIG.server.ws;
      const counted = async () =>
        (await metric('streamlines_serve_limit_refusals_total', { limit: 'ws.maxMessagesPerSecond' })) -
        rateLimitedBefore;
      const tooMany = () => [...errors.values()].filter((code) => code === 'too_many_subscriptions').length;
      for (let i = 0; i < 100 && maxSubscriptions + tooMany() + (await counted()) < frames; i++)
        await sleep(100);
      assert.equal(maxSubscriptions + tooMany() + (await counted()), frames);
      assert.ok(tooMany() > 0);
      assert.ok([...errors.values()].includes('rate_limited'));
      assert.deepEqual(new Set(errors.values()), new Set(['rate_limited', 'too_many_subscriptions']));
      assert.equal(socket.readyState, WebSocket.OPEN);
      socket.terminate();
    });

    // A subscribe without payload: an error in the documented shape, nothing of the internals.
    const bare = opened(await connect('/graphql', { protocol: 'graphql-transport-ws' }));
    bare.send(JSON.stringify({ type: 'connection_init' }));
    await once(bare, 'message');
    bare.send(JSON.stringify({ type: 'subscribe', id: 'x' }));
    const [reply] = await once(bare, 'message');
    const error = JSON.parse(String(reply));
    assert.equal(error.type, 'error');
    assert.equal(error.payload[0].extensions.code, 'bad_request');
    assert.doesNotMatch(error.payload[0].message, /destructure/);
    // The same id twice closes the connection with graphql-ws' 4409.
    const query = { query: 'subscription { alerts { ts } }' };
    bare.send(JSON.stringify({ type: 'subscribe', id: 'dup', payload: query }));
    bare.send(JSON.stringify({ type: 'subscribe', id: 'dup', payload: query }));
    const [code] = (await once(bare, 'close')) as [number];
    assert.equal(code, 4409);

    // A frame that is not UTF-8 closes with 4400, never a crash.
    const garbled = opened(await connect('/graphql', { protocol: 'graphql-transport-ws' }));
    garbled.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    const [garbledCode] = (await once(garbled, 'close')) as [number];
    assert.equal(garbledCode, 4400);
    await closeAll([]);
  });

  test('connections are capped per client (429) and in all (503)', async () => {
    const sockets: WebSocket[] = [];
    await underAttack('connection flood', async () => {
      const { maxConnections, maxConnectionsPerClient } = CONFIG.server.ws;
      for (let i = 0; i < maxConnectionsPerClient; i++) sockets.push(opened(await connect('/ws')));
      const perClient = await connect('/ws');
      assert.ok('status' in perClient);
      assert.equal(perClient.status, 429);
      assert.equal(perClient.body.error.code, 'too_many_connections');
      // Another client (an API key) still gets in, up to the total.
      for (let i = maxConnectionsPerClient; i < maxConnections; i++) {
        sockets.push(
          opened(
            await connect(i % 2 === 0 ? '/ws' : '/graphql', {
              key: keys[0]!,
              protocol: 'graphql-transport-ws',
            }),
          ),
        );
      }
      const busy = await connect('/ws', { key: keys[1]! });
      assert.ok('status' in busy);
      assert.equal(busy.status, 503);
      assert.equal(busy.body.error.code, 'server_busy');
      assert.equal(await metric('streamlines_ws_connections'), maxConnections);
    });
    await closeAll(sockets);
    // Once they are closed, the same client connects again.
    await closeAll([opened(await connect('/ws'))]);
  });

  test('invalid keys are throttled; a valid key from the same address still passes', async () => {
    const bad = `sl_${'0'.repeat(16)}_${'x'.repeat(43)}`;
    const statuses: number[] = [];
    await underAttack('invalid keys', async () => {
      for (let i = 0; i < 30; i++) {
        const response = await fetch(`${baseUrl}/api/v1/symbols`, {
          headers: { authorization: `Bearer ${bad}` },
        });
        statuses.push(response.status);
        await response.arrayBuffer();
      }
    });
    const limit = CONFIG.server.auth.maxFailedKeysPerMinute;
    assert.deepEqual(statuses.slice(0, limit), Array(limit).fill(401));
    assert.deepEqual(statuses.slice(limit), Array(30 - limit).fill(429));
    const valid = await fetch(`${baseUrl}/api/v1/symbols`, {
      headers: { authorization: `Bearer ${keys[1]}` },
    });
    assert.equal(valid.status, 200);
    const stillBad = await fetch(`${baseUrl}/api/v1/symbols`, {
      headers: { authorization: `Bearer ${bad}` },
    });
    assert.equal(stillBad.status, 429);
    assert.equal(((await stillBad.json()) as { error: { code: string } }).error.code, 'rate_limited');
  });

  test('security headers, the Host check, huge URLs and invalid UTF-8 on /ws', async () => {
    const home = await rawGet('/');
    assert.match(String(home.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.match(String(home.headers['content-security-policy']), /default-src 'self'/);
    assert.equal(home.headers['x-content-type-options'], 'nosniff');
    assert.equal(home.headers['referrer-policy'], 'no-referrer');
    const rebound = await rawGet('/api/v1/symbols', { host: 'evil.example:8080' });
    assert.equal(rebound.status, 403);
    assert.equal(JSON.parse(rebound.body).error.code, 'host_not_allowed');
    assert.equal((await rawGet('/health', { host: 'evil.example' })).status, 200);
    assert.equal((await rawGet('/api/v1/symbols', { host: 'localhost' })).status, 200);

    const huge = await rawGet(`/api/v1/symbols?${'a'.repeat(100_000)}`);
    assert.equal(huge.status, 431);
    assert.equal(JSON.parse(huge.body).error.code, 'headers_too_large');

    const socket = opened(await connect('/ws'));
    socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    const [reply] = await once(socket, 'message');
    assert.equal(JSON.parse(String(reply)).error.code, 'invalid_json');
    socket.send(JSON.stringify({ op: 'subscribe', channels: ['alerts'] }));
    const [subscribed] = await once(socket, 'message');
    assert.equal(JSON.parse(String(subscribed)).op, 'subscribed');
    await closeAll([socket]);
  });

  test('nothing the pipeline accepted was lost', async () => {
    const stats = await waitDrained(baseUrl, 120_000);
    assert.equal(stats.accepted, TICKS);
    assert.equal(stats.rejected, 0);
    let stored = 0;
    for (const symbol of SYMBOLS) {
      const csv = await (await fetch(`${baseUrl}/api/v1/export/ticks/${symbol}`)).text();
      stored += csv.trim().split('\n').length - 1;
    }
    assert.equal(stored, TICKS);
  });
});
