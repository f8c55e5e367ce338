import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { collect, connectGraphql } from '../../../test/support/graphql.ts';
import type { Json } from '../../../test/support/serve.ts';
import { waitUntil } from '../../../test/support/wait.ts';
import { parseConfig } from '../../config/load.ts';
import { EmbeddedPipeline } from '../../pipeline/embedded-pipeline.ts';
import { buildServer } from '../server.ts';

const T0 = 1_700_000_040_000; // a minute boundary: 1_700_000_040_000 % 60_000 === 0

/**
 * 100 AAA ticks one second apart (100 s of event time: 2 s at speed 50) with a sawtooth price that
 * crosses 105 upwards every 10 ticks, BBB ticks between them, a tick without id, a duplicate id
 * (dropped by ingest) and a late tick (its 1m bucket closed long before it arrives).
 */
function replayLines(): string[] {
  const lines: object[] = [];
  for (let i = 0; i < 100; i++) {
    const tick: Record<string, unknown> = {
      symbol: 'aaa',
      ts: T0 + i * 1_000,
      price: 100 + (i % 10),
      size: 1 + (i % 3),
    };
    if (i !== 7) tick.id = `a${i}`;
    lines.push(tick);
    if (i % 4 === 0) lines.push({ symbol: 'BBB', ts: T0 + i * 1_000 + 1, price: 50, size: 1, id: `b${i}` });
    if (i === 30) lines.push({ symbol: 'AAA', ts: T0 + 30_000, price: 999, size: 1, id: 'a30' });
    if (i === 90) lines.push({ symbol: 'AAA', ts: T0 + 5_000, price: 101.5, size: 4, id: 'late' });
  }
  return lines.map((line) => JSON.stringify(line));
}

test('a GraphQL subscriber receives exactly what REST serves after a replay', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'streamlines-graphql-'));
  const path = join(dir, 'ticks.ndjson');
  await writeFile(path, `${replayLines().join('\n')}\n`);
  const config = parseConfig({
    feeds: [{ type: 'replay', path, speed: 50 }],
    alerts: { rules: [{ symbol: 'AAA', above: 105 }] },
    log: { type: 'memory' },
    store: { type: 'memory' },
  });
  const pipeline = new EmbeddedPipeline({ config, dataDir: dir });
  const app = await buildServer({ store: pipeline.store, view: pipeline });
  // Counts the live listeners attached after the server's own, to start the replay once all are.
  let attached = 0;
  const onLive = pipeline.onLive.bind(pipeline);
  pipeline.onLive = (listener) => {
    attached++;
    return onLive(listener);
  };
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const client = connectGraphql(`ws://127.0.0.1:${port}/graphql`);
  try {
    const ticks = collect(
      client,
      'subscription { ticks(symbol: "aaa") { ts price size id maShort maLong late } }',
    );
    await waitUntil(() => attached === 1, 'the subscriptions to attach');
    const candles = collect(
      client,
      'subscription { candles(symbol: "AAA", interval: "1m") { symbol interval ts open high low close volume trades vwap final } }',
    );
    const alerts = collect(client, 'subscription { alerts { ts symbol kind price threshold message } }');
    // One listener serves every subscription: give the other two their queues before data flows.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await pipeline.start();

    await waitUntil(() => pipeline.stats().drained, 'the replay to drain', 20_000);
    const replayMs = Date.now() - started;
    const get = async (url: string): Promise<Json> => (await app.inject({ method: 'GET', url })).json();
    const rest = {
      ticks: (await get('/api/v1/ticks/AAA')).ticks,
      candles: (await get('/api/v1/candles/AAA?interval=1m')).candles,
      alerts: (await get('/api/v1/alerts')).alerts,
    };
    // Live messages go out right after each commit: wait for the last of them.
    await waitUntil(
      () =>
        ticks.data.length >= rest.ticks.length &&
        alerts.data.length >= rest.alerts.length &&
        candles.data.some(
          (message) => message.candles.ts === rest.candles.at(-1)?.ts && message.candles.final,
        ),
      'the live messages',
    );

    assert.ok(replayMs > 1_000, `the replay is paced (took ${replayMs} ms), so data flows while subscribed`);
    assert.deepEqual([ticks.errors, candles.errors, alerts.errors], [[], [], []]);
    // 100 AAA lines + 1 late one; the duplicate id is dropped.
    assert.equal(rest.ticks.length, 101);
    // Live ticks come in log order, REST lists by ts (ties in log order): a stable sort maps one onto the other.
    const live = ticks.data.map((message) => message.ticks);
    assert.deepEqual(
      live.toSorted((a: Json, b: Json) => a.ts - b.ts),
      rest.ticks,
    );
    assert.equal(
      live.findIndex((tick: Json) => tick.id === 'late'),
      91,
      'the late tick arrived after a90',
    );
    assert.equal(rest.ticks.filter((tick: Json) => tick.late).length, 1);
    assert.equal(rest.ticks.filter((tick: Json) => tick.id === null).length, 1);

    // The last message of each window is its final candle, equal to what the store serves.
    const lastByTs = new Map<number, Json>();
    for (const message of candles.data) lastByTs.set(message.candles.ts, message.candles);
    assert.deepEqual([...lastByTs.values()], rest.candles);
    assert.equal(rest.candles.length, 2, '100 s from a minute boundary: two 1m windows');
    assert.ok(
      candles.data.some((message) => !message.candles.final),
      'forming updates are streamed too',
    );

    // The sawtooth 100..109 crosses 105 upwards once per 10 ticks (105 -> 106): 10 price_above;
    // the moving averages cross too (golden/death crosses), as many as the store holds.
    assert.equal(rest.alerts.filter((alert: Json) => alert.kind === 'price_above').length, 10);
    assert.deepEqual(
      alerts.data.map((message) => message.alerts),
      rest.alerts.map((alert: Json) => ({ threshold: null, ...alert })),
    );
  } finally {
    await client.dispose();
    await app.close();
    await pipeline.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
