import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestServer, type Json, withServer } from '../../../test/support/serve.ts';
import { ControlError, type PipelineControl } from '../../core/pipeline-view.ts';

/** A control that records calls and fails the way the embedded pipeline does. */
class FakeControl implements PipelineControl {
  readonly calls: string[] = [];
  symbols = ['BTCUSDT'];
  async startFeed(name: string): Promise<void> {
    this.calls.push(`start ${name}`);
    if (name !== 'replay') throw new ControlError('unknown_feed', `no feed named "${name}"`);
    throw new ControlError('conflict', 'feed "replay" is already running');
  }
  async stopFeed(name: string): Promise<void> {
    this.calls.push(`stop ${name}`);
  }
  feedSymbols(name: string): string[] {
    if (name !== 'replay') throw new ControlError('unknown_feed', 'nope');
    return this.symbols;
  }
  async addSymbol(feed: string, symbol: string): Promise<void> {
    this.calls.push(`add ${feed} ${symbol}`);
    if (symbol === 'bad symbol') throw new ControlError('invalid_symbol', 'symbol must match');
    if (feed === 'replay' && symbol === 'NOPE') throw new ControlError('unsupported', 'cannot add');
    this.symbols.push(symbol);
  }
  async removeSymbol(feed: string, symbol: string): Promise<void> {
    this.calls.push(`remove ${feed} ${symbol}`);
  }
}

/** Until the auth plugin lands, the test stands in for it: header `x-test-admin` makes an admin. */
async function server(control: PipelineControl | undefined = new FakeControl()) {
  const built = await buildTestServer(control ? { control } : {});
  built.app.addHook('onRequest', async (request) => {
    if (request.headers['x-test-admin'] !== undefined) {
      request.principal = { keyId: 't', name: 't', role: 'admin' };
    }
  });
  return built;
}

const admin = { 'x-test-admin': '1' };

test('GET /api/v1/feeds lists the feeds of stats with their symbols, without a key', async () => {
  await withServer(server(), async ({ app }) => {
    const response = await app.inject({ url: '/api/v1/feeds' });
    assert.equal(response.statusCode, 200);
    // FakeView's stats list one running replay feed (test/support/serve.ts).
    assert.deepEqual(response.json(), {
      feeds: [
        {
          name: 'replay',
          type: 'replay',
          state: 'running',
          messages: 12,
          lastMessageAt: 1_000,
          symbols: ['BTCUSDT'],
        },
      ],
    });
  });
});

test('mutations without a principal answer 401 and never reach the pipeline', async () => {
  const control = new FakeControl();
  await withServer(server(control), async ({ app }) => {
    for (const [method, url] of [
      ['POST', '/api/v1/feeds/replay/stop'],
      ['POST', '/api/v1/feeds/replay/start'],
      ['DELETE', '/api/v1/feeds/replay/symbols/BTCUSDT'],
    ] as const) {
      const response = await app.inject({ method, url });
      assert.equal(response.statusCode, 401, url);
      assert.equal((response.json() as Json).error.code, 'unauthorized');
    }
    const add = await app.inject({
      method: 'POST',
      url: '/api/v1/feeds/replay/symbols',
      payload: { symbol: 'X' },
    });
    assert.equal(add.statusCode, 401);
    assert.deepEqual(control.calls, []);
  });
});

test('a read key is forbidden (403)', async () => {
  const { app } = await buildTestServer({ control: new FakeControl() });
  app.addHook('onRequest', async (request) => {
    request.principal = { keyId: 'r', name: 'reader', role: 'read' };
  });
  try {
    const response = await app.inject({ method: 'POST', url: '/api/v1/feeds/replay/stop' });
    assert.equal(response.statusCode, 403);
    assert.equal((response.json() as Json).error.code, 'forbidden');
  } finally {
    await app.close();
  }
});

test('admin actions reach the pipeline and ControlError codes map to their statuses', async () => {
  const control = new FakeControl();
  await withServer(server(control), async ({ app }) => {
    const stop = await app.inject({ method: 'POST', url: '/api/v1/feeds/replay/stop', headers: admin });
    assert.equal(stop.statusCode, 200);
    assert.deepEqual(stop.json(), { ok: true });

    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/api/v1/feeds/replay/start', undefined, 409, 'conflict'],
      ['POST', '/api/v1/feeds/other/start', undefined, 404, 'unknown_feed'],
      ['POST', '/api/v1/feeds/replay/symbols', { symbol: 'bad symbol' }, 400, 'invalid_symbol'],
      ['POST', '/api/v1/feeds/replay/symbols', { symbol: 'NOPE' }, 409, 'unsupported'],
      ['POST', '/api/v1/feeds/replay/symbols', { nothing: 1 }, 400, 'invalid_symbol'],
    ];
    for (const [method, url, payload, status, code] of cases) {
      const response = await app.inject({
        method: method as 'POST',
        url,
        headers: admin,
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
      assert.equal(response.statusCode, status, `${url} ${JSON.stringify(payload)}`);
      assert.equal((response.json() as Json).error.code, code);
    }

    const add = await app.inject({
      method: 'POST',
      url: '/api/v1/feeds/replay/symbols',
      headers: admin,
      payload: { symbol: 'ethusdt' },
    });
    assert.equal(add.statusCode, 200);
    const remove = await app.inject({
      method: 'DELETE',
      url: '/api/v1/feeds/replay/symbols/BTC%2FUSD',
      headers: admin,
    });
    assert.equal(remove.statusCode, 200);
    assert.deepEqual(control.calls, [
      'stop replay',
      'start replay',
      'start other',
      'add replay bad symbol',
      'add replay NOPE',
      'add replay ethusdt',
      'remove replay BTC/USD',
    ]);
  });
});

test('without a PipelineControl, feeds list no symbols and actions are unsupported', async () => {
  const { app } = await buildTestServer();
  app.addHook('onRequest', async (request) => {
    request.principal = { keyId: 't', name: 't', role: 'admin' };
  });
  try {
    assert.deepEqual((await app.inject({ url: '/api/v1/feeds' })).json().feeds[0].symbols, []);
    const response = await app.inject({ method: 'POST', url: '/api/v1/feeds/replay/stop' });
    assert.equal(response.statusCode, 409);
    assert.equal((response.json() as Json).error.code, 'unsupported');
  } finally {
    await app.close();
  }
});
