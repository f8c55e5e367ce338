/**
 * docs/design.md, Retention and history on the real CLI: a replay whose store retention reaches far into it answers everything
 * still retained exactly as a run without retention, and `kill -9` while retention deletes, then a
 * rerun, ends the same.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dumpApi, killAfter, startCli, stopCli, waitDrained } from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { waitUntil } from '../support/wait.ts';

const HOUR = 3_600_000;
/** The replay spans about 17 hours of event time. */
const TICKS_RETENTION_MS = 4 * HOUR;
const CANDLES_RETENTION_MS = 10 * HOUR;

type Dump = Record<string, unknown>;
interface Timed {
  ts: number;
}

/** The newest tick ts over every symbol of a dump. */
function newestTick(dump: Dump): number {
  let newest = Number.NEGATIVE_INFINITY;
  for (const { symbol } of dump.symbols as { symbol: string }[]) {
    for (const tick of (dump[symbol] as { ticks: Timed[] }).ticks) newest = Math.max(newest, tick.ts);
  }
  return newest;
}

/** What a run with retention should still answer: the clean run's dump minus what expired. */
function retainedPart(dump: Dump, newest: number): Dump {
  const ticksFrom = newest - TICKS_RETENTION_MS;
  const candlesFrom = newest - CANDLES_RETENTION_MS;
  const out: Dump = structuredClone(dump);
  for (const { symbol } of out.symbols as { symbol: string }[]) {
    const perSymbol = out[symbol] as Record<string, unknown>;
    perSymbol.ticks = (perSymbol.ticks as Timed[]).filter((tick) => tick.ts >= ticksFrom);
    for (const [key, value] of Object.entries(perSymbol)) {
      const body = value as { candles?: Timed[]; points?: Timed[] };
      if (key.startsWith('candles:')) body.candles = body.candles!.filter((c) => c.ts >= candlesFrom);
      if (key.startsWith('indicators:')) body.points = body.points!.filter((p) => p.ts >= candlesFrom);
    }
  }
  const alerts = out.alerts as { alerts: Timed[] };
  alerts.alerts = alerts.alerts.filter((alert) => alert.ts >= candlesFrom);
  return out;
}

/**
 * Polls until the dump equals `expected` (retention runs in the background after the replay
 * drained). Compared as JSON: assert's diff of two large dumps takes minutes, so a mismatch is
 * reported by the first differing part instead.
 */
async function waitForDump(baseUrl: string, expected: Dump, timeoutMs = 60_000): Promise<void> {
  let actual: Dump = {};
  await waitUntil(
    async () => {
      actual = await dumpApi(baseUrl);
      return JSON.stringify(actual) === JSON.stringify(expected);
    },
    () => `the dumps to agree; ${firstDifference(expected, actual)}`,
    timeoutMs,
    250,
  );
}

/** The first part in which two dumps differ, shortened. */
function firstDifference(expected: Dump, actual: Dump): string {
  for (const key of Object.keys(expected)) {
    const parts = (value: unknown) =>
      typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : [''];
    for (const part of parts(expected[key])) {
      const pick = (dump: Dump) => (part === '' ? dump[key] : (dump[key] as Dump | undefined)?.[part]);
      const [want, got] = [JSON.stringify(pick(expected)), JSON.stringify(pick(actual))];
      if (want !== got)
        return `${key}.${part} differs: expected ${want.slice(0, 600)}..., got ${got?.slice(0, 600)}...`;
    }
  }
  return 'they differ in their keys';
}

describe('store retention on the real CLI', () => {
  let dir: string;
  let replay: string;
  let withRetention: string;
  let expected: Dump;
  let cleanDump: Dump;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-retention-'));
    replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 150_000, seed: 41 });
    const withoutRetention = join(dir, 'keep.json');
    const rules = [
      { symbol: 'ETHUSDT', above: 200 },
      { symbol: 'BTCUSDT', below: 100 },
    ];
    await writeFile(
      withoutRetention,
      JSON.stringify({ alerts: { rules }, retention: { ticks: 0, candles: 0 }, lake: { enabled: false } }),
    );
    withRetention = join(dir, 'expire.json');
    await writeFile(
      withRetention,
      // Without the lake: what retention deletes is gone, so the answers are the retained part only (with
      // the lake, reads span both and answer everything: test/e2e/lake.test.ts).
      JSON.stringify({
        alerts: { rules },
        retention: { ticks: '4h', candles: '10h' },
        lake: { enabled: false },
      }),
    );
    const clean = await startCli([
      '--replay',
      replay,
      '--data-dir',
      join(dir, 'clean'),
      '--config',
      withoutRetention,
    ]);
    await waitDrained(clean.baseUrl);
    cleanDump = await dumpApi(clean.baseUrl);
    await stopCli(clean);
    expected = retainedPart(cleanDump, newestTick(cleanDump));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers everything still retained exactly as a run without retention', {
    timeout: 300_000,
  }, async () => {
    // The test means something only if retention reaches far into the replay.
    const symbol = 'BTCUSDT';
    const allTicks = (cleanDump[symbol] as { ticks: Timed[] }).ticks.length;
    const keptTicks = (expected[symbol] as { ticks: Timed[] }).ticks.length;
    assert.ok(keptTicks < allTicks / 2 && keptTicks > 1_000, `kept ${keptTicks} of ${allTicks} ticks`);
    const candles = (body: Dump) =>
      ((body[symbol] as Dump)['candles:1m'] as { candles: Timed[] }).candles.length;
    assert.ok(candles(expected) < candles(cleanDump) * 0.8, 'candle retention cuts nothing');

    const cli = await startCli([
      '--replay',
      replay,
      '--data-dir',
      join(dir, 'expiring'),
      '--config',
      withRetention,
    ]);
    try {
      await waitDrained(cli.baseUrl);
      await waitForDump(cli.baseUrl, expected);
    } finally {
      // A failure must not leave the server running: it would keep the test runner alive.
      await stopCli(cli);
    }
  });

  it('kill -9 while retention deletes, then a rerun, ends as an uninterrupted run', {
    timeout: 600_000,
  }, async () => {
    const crashDir = join(dir, 'crashed');
    const args = ['--replay', replay, '--data-dir', crashDir, '--config', withRetention];
    const kills: string[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const cli = await startCli(args);
      // Retention deletes all along the replay (the newest tick keeps moving), and catches up
      // after it: kills land in both.
      const delayMs = 200 + Math.floor(Math.random() * 2_000);
      kills.push((await killAfter(cli, delayMs)).said);
    }
    const final = await startCli(args);
    try {
      await waitDrained(final.baseUrl);
      await waitForDump(final.baseUrl, expected);
    } catch (error) {
      throw new Error(`kills: ${kills.join('; ')}: ${String(error)}`);
    } finally {
      await stopCli(final);
    }
  });
});
