/**
 * Issue #15, end to end: a hostile replay through `streamlines run` with all three sinks configured,
 * killed with SIGKILL at a random moment, then run again while InfluxDB, Cassandra and the webhook
 * receiver are each down for 30 s. Once the sinks report no lag, InfluxDB and Cassandra hold
 * exactly what the REST API answers, and the receiver got every alert, once per idempotency key.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import cassandra from 'cassandra-driver';
import type { SinkStatus } from '../../src/core/pipeline-view.ts';
import type { Alert, Candle, IndicatorPoint, ProcessedTick } from '../../src/core/records.ts';
import { viewOf } from '../../src/sinks/conformance.ts';
import type { SinkBatch } from '../../src/sinks/sink.ts';
import { readCassandra, startRestartableCassandra, type TestCassandra } from '../support/cassandra.ts';
import { dumpApi, getJson, replayArgs, startCli, stopCli, waitDrained } from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { readInfluxdb, startRestartableInfluxdb, type TestInfluxdb } from '../support/influxdb.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.ts';

const OUTAGE_MS = 30_000;
const RULES = [
  { symbol: 'ETHUSDT', above: 200 },
  { symbol: 'BTCUSDT', below: 60_000 },
  { symbol: 'SOLUSDT', above: 20 },
];

/** The REST dump (test/support/cli.ts dumpApi) as records, for comparing with what a target holds. */
function restRecords(dump: Record<string, unknown>): SinkBatch {
  const ticks: ProcessedTick[] = [];
  const candles: Candle[] = [];
  const indicators: IndicatorPoint[] = [];
  const symbols = (dump.symbols as { symbol: string }[]).map(({ symbol }) => symbol);
  for (const symbol of symbols) {
    const perSymbol = dump[symbol] as Record<string, unknown>;
    for (const tick of perSymbol.ticks as Omit<ProcessedTick, 'symbol'>[])
      ticks.push({ ...tick, symbol } as ProcessedTick);
    for (const [key, value] of Object.entries(perSymbol)) {
      if (key.startsWith('candles:')) candles.push(...(value as { candles: Candle[] }).candles);
      if (key.startsWith('indicators:')) {
        const { interval, points } = value as { interval: Candle['interval']; points: IndicatorPoint[] };
        for (const point of points) indicators.push({ ...point, symbol, interval });
      }
    }
  }
  const alerts = (dump.alerts as { alerts: Alert[] }).alerts;
  return { ticks, candles, indicators, alerts };
}

const servers: {
  influx?: TestInfluxdb | { skip: string };
  cassandra?: TestCassandra | { skip: string };
} = {};
servers.influx = await startRestartableInfluxdb();
servers.cassandra = await startRestartableCassandra();
const skip =
  'skip' in servers.influx
    ? servers.influx.skip
    : 'skip' in servers.cassandra
      ? servers.cassandra.skip
      : false;

describe('sinks end to end: kill -9 and 30 s target outages', { skip, timeout: 1_200_000 }, () => {
  const influx = servers.influx as TestInfluxdb;
  const node = servers.cassandra as TestCassandra;
  let receiver: WebhookReceiver;
  let dir: string;
  let args: string[];
  let reader: cassandra.Client;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-sinks-e2e-'));
    receiver = await startWebhookReceiver();
    const replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 20_000, seed: 15 });
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        lateness: '10s',
        alerts: { rules: RULES },
        sinks: [
          { type: 'influxdb', url: influx.url, database: 'e2e' },
          {
            type: 'cassandra',
            contactPoints: [node.contactPoint],
            localDataCenter: 'datacenter1',
            keyspace: 'e2e',
            ttl: { ticks: '7d', candles: '400d' },
          },
          { type: 'webhook', url: receiver.url, format: 'json' },
        ],
      }),
    );
    args = replayArgs(replay, join(dir, 'data'), config);
    reader = new cassandra.Client({
      contactPoints: [node.contactPoint],
      localDataCenter: 'datacenter1',
      policies: { reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(500) },
    });
  });

  after(async () => {
    await reader?.shutdown();
    await receiver?.close();
    await influx.destroy();
    await node.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('every target ends holding exactly the REST answers; every alert POSTed, once per key', async () => {
    // Run 1: the targets go down at a random moment of it, and it is killed during the outage.
    const first = await startCli(args);
    const downAfterMs = Math.floor(Math.random() * 1_000);
    await sleep(downAfterMs);
    receiver.setMode('fail');
    await Promise.all([influx.stopServer(), node.stopServer()]);
    const downAt = Date.now();
    const killAfterMs = Math.floor(Math.random() * 2_000);
    await sleep(killAfterMs);
    await stopCli(first, 'SIGKILL');

    // Run 2 finishes the replay while the targets are still down, 30 s in all.
    const second = await startCli(args);
    await waitDrained(second.baseUrl, 300_000);
    const during = await getJson<{ sinks: SinkStatus[] }>(second.baseUrl, '/api/v1/stats');
    await sleep(Math.max(0, downAt + OUTAGE_MS - Date.now()));
    const metrics = await (await fetch(`${second.baseUrl}/metrics`)).text();
    receiver.setMode('ok');
    await Promise.all([influx.startServer(), node.startServer()]);

    // The sinks catch up on their own; the pipeline finished long before.
    let sinks: SinkStatus[] = [];
    const deadline = Date.now() + 600_000;
    for (;;) {
      sinks = (await getJson<{ sinks: SinkStatus[] }>(second.baseUrl, '/api/v1/stats')).body.sinks;
      if (sinks.every((sink) => sink.state === 'live' && sink.lagEntries === 0)) break;
      assert.ok(Date.now() < deadline, `sinks did not catch up: ${JSON.stringify(sinks)}`);
      await sleep(500);
    }
    const dump = await dumpApi(second.baseUrl);
    await stopCli(second);

    // While the targets were down the pipeline drained anyway, and the outage showed.
    assert.deepEqual(
      during.body.sinks.map((sink) => sink.name),
      ['influxdb', 'cassandra', 'webhook'],
    );
    assert.ok(
      during.body.sinks.some((sink) => sink.lagEntries > 0),
      `a sink was behind while its target was down: ${JSON.stringify(during.body.sinks)}`,
    );
    assert.match(metrics, /^streamlines_sink_errors_total\{sink="influxdb",type="influxdb"\} [1-9]/m);
    assert.match(
      metrics,
      /^streamlines_sink_state\{sink="cassandra",type="cassandra",state="(retrying|connecting)"\} 1/m,
    );

    const rest = restRecords(dump);
    assert.ok(
      rest.ticks.length > 15_000 && rest.alerts.length > 10,
      `${rest.ticks.length} ticks, ${rest.alerts.length} alerts`,
    );
    assert.ok(rest.candles.some((candle) => candle.interval === '1d'));
    const expected = viewOf(rest);
    const inInflux = viewOf(await readInfluxdb(influx.url, 'e2e'));
    assert.deepStrictEqual(inInflux.ticks, expected.ticks, 'influxdb ticks');
    assert.deepStrictEqual(inInflux, expected, 'influxdb');
    const inCassandra = viewOf(await readCassandra(reader, 'e2e'));
    assert.deepStrictEqual(inCassandra.ticks, expected.ticks, 'cassandra ticks');
    assert.deepStrictEqual(inCassandra, expected, 'cassandra');

    const keys = new Map<string, number>();
    for (const post of receiver.received) {
      const key = String(post.headers['idempotency-key']);
      keys.set(key, (keys.get(key) ?? 0) + 1);
    }
    const received = viewOf({
      ticks: [],
      candles: [],
      indicators: [],
      alerts: [
        ...new Map(
          receiver.received.map((post) => [post.headers['idempotency-key'], JSON.parse(post.body)]),
        ).values(),
      ],
    });
    assert.deepStrictEqual(received.alerts, expected.alerts, 'one POST per alert, by idempotency key');
    process.stderr.write(
      `sinks e2e: targets down after ${downAfterMs} ms, killed ${killAfterMs} ms later; ${receiver.received.length} POSTs for ${keys.size} alerts ` +
        `(${receiver.refused.fail} refused); ${rest.ticks.length} ticks; ` +
        `rows delivered ${sinks.map((sink) => `${sink.name} ${sink.rowsDelivered}`).join(', ')}\n`,
    );
  });
});
