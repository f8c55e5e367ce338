/**
 * Faults an operator must see (issue #11): while one lasts, `/ready` answers 503 naming the
 * dependency, `/api/v1/stats` lists it under `health`, the log says so once when it starts and
 * once when it ends, and the run still ends exactly as an uninterrupted one.
 *
 * The full disk is a small tmpfs holding only the DuckDB file (mounting needs root: the test skips
 * itself otherwise). A ballast file fills it; removing the ballast is "space returns".
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeCoinbase, match } from '../fakes/fake-coinbase-server.ts';
import {
  drainedDump,
  dumpApi,
  getJson,
  type RunningCli,
  startCli,
  stopCli,
  waitDrained,
} from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { fillDisk, mountTmpfs, unmount } from '../support/small-disk.ts';

const TMPFS_BYTES = 48 * 1024 * 1024;
/** The CLI's start can take long on a loaded machine (DuckDB, the log and the replay open first). */
const START_TIMEOUT_MS = 120_000;

interface ReadyBody {
  status: string;
  checks: Record<string, { ok: boolean; error?: string; code?: string }>;
}

describe('faults show in /ready, stats and the log while they last', () => {
  let dir: string;
  let mounted = false;
  let disk: string;
  let replay: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-faults-'));
    disk = join(dir, 'small-disk');
    await mkdir(disk);
    mounted = mountTmpfs(disk, TMPFS_BYTES);
    replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 120_000, seed: 5 });
  });

  after(async () => {
    if (mounted) unmount(disk);
    await rm(dir, { recursive: true, force: true });
  });

  it('a store on a full disk: clear error on /ready, nothing lost, resumes when space returns', {
    timeout: 300_000,
  }, async (t) => {
    if (!mounted) {
      t.skip('cannot mount a tmpfs here (needs root)');
      return;
    }
    const config = (storePath: string) =>
      JSON.stringify({
        alerts: { rules: [{ symbol: 'ETHUSDT', above: 200 }] },
        store: { type: 'duckdb', path: storePath },
      });
    const cleanConfig = join(dir, 'clean.json');
    await writeFile(cleanConfig, config(join(dir, 'clean-store.duckdb')));
    const expected = await drainedDump([
      '--replay',
      replay,
      '--data-dir',
      join(dir, 'clean'),
      '--config',
      cleanConfig,
    ]);

    // Leave about 1.5 MB free: DuckDB opens, then its writes fail once the replay is under way.
    const freeSpace = await fillDisk(disk, 1_500_000);
    const fullConfig = join(dir, 'full.json');
    await writeFile(fullConfig, config(join(disk, 'store.duckdb')));
    const cli = await startCli(
      ['--replay', replay, '--data-dir', join(dir, 'full'), '--config', fullConfig],
      START_TIMEOUT_MS,
    );
    try {
      let ready: { status: number; body: ReadyBody } | undefined;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        ready = await getJson<ReadyBody>(cli.baseUrl, '/ready');
        if (ready.status === 503) break;
        await sleep(200);
      }
      assert.equal(ready?.status, 503, `never unready: ${JSON.stringify(ready?.body)}`);
      const store = ready!.body.checks.store!;
      assert.equal(store.ok, false);
      assert.equal(store.code, 'store_write_failed');
      assert.match(store.error ?? '', /No space left on device/);
      const { body: stats } = await getJson<{
        drained: boolean;
        health: { dependency: string; status: string }[];
      }>(cli.baseUrl, '/api/v1/stats');
      assert.equal(stats.drained, false);
      assert.deepEqual(
        stats.health.filter((entry) => entry.status === 'degraded').map((entry) => entry.dependency),
        ['store'],
      );
      const metrics = await (await fetch(`${cli.baseUrl}/metrics`)).text();
      assert.ok(metrics.split('\n').includes('streamlines_dependency_degraded{dependency="store"} 1'));
      // Still failing a few seconds later: logged once, not once per retry.
      await sleep(3_000);
      assert.equal(cli.stderr().match(/"kind":"degraded"/g)?.length, 1, cli.stderr().slice(-2_000));

      await freeSpace();
      await waitDrained(cli.baseUrl);
      const after = await getJson<ReadyBody>(cli.baseUrl, '/ready');
      assert.equal(after.status, 200, JSON.stringify(after.body));
      assert.match(cli.stderr(), /store ok again after \d+ ms/);
      const actual = await dumpApi(cli.baseUrl);
      assert.ok(JSON.stringify(actual) === JSON.stringify(expected), 'the run did not end exact');
    } finally {
      await stopCli(cli);
    }
  });

  it('SIGSTOP for 6 s, then SIGCONT: the run goes on, the pause is logged once, and it ends exact', {
    timeout: 300_000,
  }, async () => {
    const paced = join(dir, 'paced.ndjson');
    await writeReplay(paced, { count: 20_000, seed: 13 });
    const reference = await startCli(
      ['--replay', paced, '--data-dir', join(dir, 'paused-reference')],
      START_TIMEOUT_MS,
    );
    const expected = await waitDrained(reference.baseUrl).then(() => dumpApi(reference.baseUrl));
    await stopCli(reference);

    // About 20 s of replay (event time runs ~1 000 times faster), so the pause falls inside it.
    const cli = await startCli(
      ['--replay', paced, '--speed', '1000', '--data-dir', join(dir, 'paused')],
      START_TIMEOUT_MS,
    );
    try {
      const processed = async () =>
        Number(
          (await getJson<{ processedOffset: number }>(cli.baseUrl, '/api/v1/stats')).body.processedOffset,
        );
      while ((await processed()) < 2_000) await sleep(200);
      cli.child.kill('SIGSTOP');
      await sleep(6_000);
      cli.child.kill('SIGCONT');
      const stats = await getJson<{ drained: boolean }>(cli.baseUrl, '/api/v1/stats');
      assert.equal(stats.body.drained, false, 'the replay ended before the pause: slow it down');

      await waitDrained(cli.baseUrl);
      const paused = cli
        .stderr()
        .split('\n')
        .filter((line) => line.includes('"code":"process_paused"'));
      assert.equal(paused.length, 1, cli.stderr().slice(-3_000));
      assert.match(paused[0]!, /the process did not run for \d+\.\d s \(stopped with SIGSTOP/);
      const actual = await dumpApi(cli.baseUrl);
      assert.ok(JSON.stringify(actual) === JSON.stringify(expected), 'the run did not end exact');
    } finally {
      await stopCli(cli);
    }
  });

  it('SIGSTOP longer than a live feed stale timeout: the feed says it reconnects, and loses no trade', {
    timeout: 300_000,
  }, async () => {
    const fake = await FakeCoinbase.start();
    const config = join(dir, 'coinbase.json');
    await writeFile(
      config,
      JSON.stringify({
        feeds: [{ type: 'coinbase', symbols: ['BTC-USD'], url: fake.url, restUrl: fake.restUrl }],
        log: { type: 'memory' },
        store: { type: 'memory' },
      }),
    );
    let cli: RunningCli | undefined;
    let id = 0;
    const t0 = Date.now();
    // A trade every 200 ms, as a live market would send: the feed's link never looks stale by itself.
    const trading = setInterval(() => {
      id++;
      fake.publish(
        match('BTC-USD', id, t0 + id * 200, `${100 + (id % 7)}.5`, '0.1', id % 2 ? 'buy' : 'sell'),
      );
    }, 200);
    try {
      cli = await startCli(['--config', config, '--data-dir', join(dir, 'coinbase-data')], START_TIMEOUT_MS);
      const stored = async () =>
        (await getJson<{ ticks?: { id: string }[] }>(cli!.baseUrl, `/api/v1/ticks/BTC-USD?from=${t0}`)).body
          .ticks ?? [];
      while ((await stored()).length < 10) await sleep(200);
      // Coinbase's link counts as stale after 10 s without a message: pause longer than that.
      const pausedAt = id;
      cli.child.kill('SIGSTOP');
      await sleep(13_000);
      cli.child.kill('SIGCONT');
      await sleep(3_000);
      clearInterval(trading);
      const last = id;
      let ids: number[] = [];
      for (let tries = 0; tries < 150 && ids.at(-1) !== last; tries++) {
        await sleep(200);
        ids = (await stored()).map((tick) => Number(tick.id));
      }
      // A live feed starts at the market's present (trades before its first subscription are history,
      // `streamlines backfill`'s job); from there every trade once, those sent while it was stopped
      // through the REST gap fill.
      const first = ids[0] ?? 0;
      assert.ok(first > 0 && first < pausedAt, `first stored trade ${first}, paused at ${pausedAt}`);
      assert.deepEqual(
        ids,
        Array.from({ length: last - first + 1 }, (_, index) => first + index),
      );
      const stderr = cli.stderr();
      assert.match(stderr, /\[coinbase\] connection lost after [^\n]*stale: nothing received/);
      assert.match(stderr, /\[coinbase\] reconnected to /);
      assert.equal(
        stderr.split('\n').filter((line) => line.includes('"code":"process_paused"')).length,
        1,
        stderr,
      );
      const { body } = await getJson<{ feeds: { name: string; reconnects?: number }[] }>(
        cli.baseUrl,
        '/api/v1/feeds',
      );
      assert.ok(
        (body.feeds.find((feed) => feed.name === 'coinbase')?.reconnects ?? 0) >= 1,
        JSON.stringify(body),
      );
    } finally {
      clearInterval(trading);
      if (cli) await stopCli(cli);
      await fake.close();
    }
  });

  it('a torn log tail after kill -9 is repaired, logged, and the run ends exact', {
    timeout: 300_000,
  }, async () => {
    const dataDir = join(dir, 'torn');
    const args = ['--replay', replay, '--data-dir', dataDir];
    const first = await startCli(args, START_TIMEOUT_MS);
    // Killed either way: on success as the crash under test, on failure so it does not outlive the test.
    const expected = await waitDrained(first.baseUrl)
      .then(() => dumpApi(first.baseUrl))
      .finally(() => stopCli(first, 'SIGKILL'));
    // Half a frame at the end of the newest segment: what a crash in the middle of an append leaves.
    const topicDir = join(dataDir, 'log', 'price-ticks');
    const segments = (await readdir(topicDir)).filter((name) => name.endsWith('.seg')).sort();
    assert.ok(segments.length > 0, `no segments in ${topicDir}`);
    await appendFile(join(topicDir, segments.at(-1)!), Buffer.from([0x40, 0, 0, 0, 1, 2, 3]));
    const second = await startCli(args, START_TIMEOUT_MS);
    try {
      await waitDrained(second.baseUrl);
      assert.match(
        second.stderr(),
        /"kind":"event"[^\n]*repaired a torn log tail after an unclean shutdown: price-ticks/,
      );
      assert.match(second.stderr(), /"code":"log_tail_repaired"/);
      const actual = await dumpApi(second.baseUrl);
      assert.ok(JSON.stringify(actual) === JSON.stringify(expected), 'the run did not end exact');
    } finally {
      await stopCli(second);
    }
  });
});
