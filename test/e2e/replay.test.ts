/**
 * End to end: the real CLI replays a hostile NDJSON file (out-of-order and late trades, resent
 * duplicates, quiet minutes, lower-case symbols, broken lines) and every REST answer is compared
 * with the independent Python reference of docs/design.md, Rules (test/reference/reference.py).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  dumpApi,
  getJson,
  type RunningCli,
  replayArgs,
  startCli,
  stopCli,
  waitDrained,
} from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { assertClose, type ReferenceResult, reference } from '../support/reference.ts';

const RULES = [
  { symbol: 'btcusdt', above: 101 },
  { symbol: 'BTCUSDT', below: 99 },
  { symbol: 'ETHUSDT', above: 200 },
];

describe('replay end to end', () => {
  let dir: string;
  let cli: RunningCli;
  let expected: ReferenceResult;
  let dump: Record<string, unknown>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-e2e-'));
    const replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 30_000, seed: 11 });
    const config = join(dir, 'config.yaml');
    await writeFile(config, JSON.stringify({ lateness: '10s', alerts: { rules: RULES } }));
    expected = await reference(replay, 10_000, RULES);
    cli = await startCli(replayArgs(replay, join(dir, 'data'), config));
    await waitDrained(cli.baseUrl);
    dump = await dumpApi(cli.baseUrl);
  });

  after(async () => {
    if (cli) await stopCli(cli);
    await rm(dir, { recursive: true, force: true });
  });

  it('counts exactly what the reference counts', () => {
    const counters = dump.counters as Record<string, unknown>;
    for (const key of ['received', 'accepted', 'rejected', 'duplicates', 'late', 'rejectedByReason']) {
      assert.deepEqual(counters[key], expected.counters[key], key);
    }
    assert.equal(counters.drained, true);
  });

  it('lists the symbols with their last price in log order', () => {
    const symbols = dump.symbols as { symbol: string; lastPrice: number; lastTs: number }[];
    assert.deepEqual(
      symbols.map((s) => s.symbol),
      Object.keys(expected.symbols).sort(),
    );
    for (const summary of symbols) {
      const latest = expected.symbols[summary.symbol]!.latest;
      assertClose(summary, { symbol: summary.symbol, lastPrice: latest.price, lastTs: latest.ts });
    }
  });

  it('serves the latest tick and every tick with its moving averages and lateness', () => {
    for (const [symbol, want] of Object.entries(expected.symbols)) {
      const got = dump[symbol] as Record<string, unknown>;
      assertClose(got.latest, want.latest, `${symbol}.latest`);
      // The API orders ticks by ts (ties in log order); the reference keeps log order.
      const sorted = want.ticks
        .map((tick, order) => ({ tick, order }))
        .sort((a, b) => a.tick.ts - b.tick.ts || a.order - b.order);
      assertClose(
        got.ticks,
        sorted.map((entry) => entry.tick),
        `${symbol}.ticks`,
      );
    }
  });

  it('serves the candles and indicators of every interval', () => {
    for (const [symbol, want] of Object.entries(expected.symbols)) {
      const got = dump[symbol] as Record<string, { candles: unknown[]; points: unknown[] }>;
      for (const [interval, { candles, indicators }] of Object.entries(want.intervals)) {
        const expectedCandles = candles.map((candle) => ({ ...candle, symbol, interval, final: true }));
        assertClose(got[`candles:${interval}`]!.candles, expectedCandles, `${symbol}.candles.${interval}`);
        assertClose(got[`indicators:${interval}`]!.points, indicators, `${symbol}.indicators.${interval}`);
      }
    }
  });

  it('fires exactly the alerts of the rules and the MA crosses', () => {
    const alerts = (dump.alerts as { alerts: Record<string, unknown>[] }).alerts;
    const key = (alert: Record<string, unknown>) => `${alert.ts}|${alert.symbol}|${alert.kind}`;
    const byKey = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
    const got = alerts.map(({ message: _message, ...rest }) => rest).sort(byKey);
    assert.ok(expected.alerts.length > 10, 'the replay should cross some thresholds');
    assertClose(got, [...expected.alerts].sort(byKey));
    for (let i = 1; i < alerts.length; i++)
      assert.ok((alerts[i]!.ts as number) >= (alerts[i - 1]!.ts as number));
  });

  it('keeps rejected records with their reason', async () => {
    const { body } = await getJson<{ deadLetters: { reason: string; raw: string }[] }>(
      cli.baseUrl,
      '/api/v1/dead-letters?limit=1000',
    );
    const byReason: Record<string, number> = {};
    for (const letter of body.deadLetters) byReason[letter.reason] = (byReason[letter.reason] ?? 0) + 1;
    assert.deepEqual(byReason, expected.counters.rejectedByReason);
    assert.ok(body.deadLetters.some((letter) => letter.raw === 'not json at all'));
  });

  it('answers bad parameters with 400 and unknown symbols with 404', async () => {
    const bad = await getJson<{ error: { code: string; message: string } }>(
      cli.baseUrl,
      '/api/v1/candles/BTCUSDT?interval=2m',
    );
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /interval/);
    const unknown = await getJson<{ error: { code: string } }>(cli.baseUrl, '/api/v1/latest/NOPE');
    assert.equal(unknown.status, 404);
  });
});

describe('replay end to end with the alert frequency controls', () => {
  // Cooldowns in both spellings (a duration string and ms), one rule without, and a cross cooldown.
  const ALERTS = {
    rules: [
      { symbol: 'btcusdt', above: 101, cooldown: '2m' },
      { symbol: 'BTCUSDT', below: 99 },
      { symbol: 'ETHUSDT', above: 200, cooldown: 30_000 },
    ],
    maCross: { cooldown: '1m' },
  };
  let dir: string;
  let cli: RunningCli;
  let expected: ReferenceResult;
  let got: Record<string, unknown>[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-e2e-cooldown-'));
    const replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 30_000, seed: 11 });
    const config = join(dir, 'config.yaml');
    await writeFile(config, JSON.stringify({ lateness: '10s', alerts: ALERTS }));
    expected = await reference(replay, 10_000, ALERTS);
    cli = await startCli(replayArgs(replay, join(dir, 'data'), config));
    await waitDrained(cli.baseUrl);
    const { body } = await getJson<{ alerts: Record<string, unknown>[] }>(
      cli.baseUrl,
      '/api/v1/alerts?limit=10000',
    );
    got = body.alerts;
  });

  after(async () => {
    if (cli) await stopCli(cli);
    await rm(dir, { recursive: true, force: true });
  });

  it('fires exactly the alerts the reference fires with the same cooldowns', () => {
    const key = (alert: Record<string, unknown>) => `${alert.ts}|${alert.symbol}|${alert.kind}`;
    const byKey = (a: Record<string, unknown>, b: Record<string, unknown>) =>
      key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
    // The same replay fires 45 price_above and ~1 800 crosses without the controls: they bite.
    const kinds = new Set(expected.alerts.map((alert) => alert.kind));
    assert.deepEqual([...kinds].sort(), ['death_cross', 'golden_cross', 'price_above', 'price_below']);
    assert.ok(expected.alerts.length < 700, `the cooldowns withhold most alerts (${expected.alerts.length})`);
    assertClose(
      got.map(({ message: _message, ...rest }) => rest).sort(byKey),
      [...expected.alerts].sort(byKey),
    );
  });
});
