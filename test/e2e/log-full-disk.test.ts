/**
 * A full disk under the embedded log, on the real CLI: the log directory is a small tmpfs filled up
 * during a replay. Ingest must hold the feed (visible in the feed's status and one log line), lose
 * nothing, and resume by itself once space returns, ending exactly as a run on a roomy disk.
 * Needs root (to mount the tmpfs); skipped otherwise.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FeedStatus } from '../../src/core/pipeline-view.ts';
import { drainedDump, dumpApi, getJson, replayArgs, startCli, stopCli, waitDrained } from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';

const TMPFS_BYTES = 4 * 1024 * 1024;
/** The CLI's start can take long on a loaded machine. */
const START_TIMEOUT_MS = 120_000;
/** Room left on the tmpfs when the run starts: a fraction of what the replay's log needs. */
const ROOM_BYTES = 256 * 1024;

interface StatsBody {
  drained: boolean;
  processedOffset: number;
  feeds: FeedStatus[];
}

describe('full disk under the log', () => {
  let dir: string;
  let mount: string;
  let mounted = false;
  let replay: string;
  let config: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-full-disk-'));
    mount = join(dir, 'tmpfs');
    await mkdir(mount);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES}`, 'tmpfs', mount], {
        stdio: 'ignore',
      });
      mounted = true;
    } catch {
      mounted = false;
    }
    replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 80_000, seed: 31 });
    config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ lateness: '10s', alerts: { rules: [{ symbol: 'ETHUSDT', above: 200 }] } }),
    );
  });

  after(async () => {
    if (mounted) execFileSync('umount', [mount]);
    await rm(dir, { recursive: true, force: true });
  });

  it('holds ingest while the disk is full, shows it, and resumes when space returns', {
    timeout: 300_000,
  }, async (t) => {
    if (!mounted) {
      t.skip('mounting a tmpfs needs root');
      return;
    }
    const args = (dataDir: string) => replayArgs(replay, dataDir, config);
    const expected = await drainedDump(args(join(dir, 'clean')));

    // The data dir stays on the roomy disk (the store is not under test); its log lives on the tmpfs.
    const dataDir = join(dir, 'full');
    await mkdir(join(mount, 'log'));
    await mkdir(dataDir);
    await symlink(join(mount, 'log'), join(dataDir, 'log'));
    const filler = join(mount, 'filler');
    await writeFile(filler, Buffer.alloc(TMPFS_BYTES - ROOM_BYTES));

    const cli = await startCli(args(dataDir), START_TIMEOUT_MS);
    try {
      let stats: StatsBody | undefined;
      for (let wait = 0; wait < 600; wait++) {
        stats = (await getJson<StatsBody>(cli.baseUrl, '/api/v1/stats')).body;
        if (stats.feeds.some((feed) => feed.stalled)) break;
        await sleep(100);
      }
      const stalled = stats!.feeds.find((feed) => feed.stalled);
      assert.equal(stalled?.stalled?.reason, 'no_space', JSON.stringify(stats?.feeds));
      assert.equal(stalled?.state, 'running');
      assert.equal(stats!.drained, false);
      // It stays held (not failed) while the disk is full, and says so once.
      await sleep(1_500);
      const later = (await getJson<StatsBody>(cli.baseUrl, '/api/v1/stats')).body;
      assert.equal(later.feeds.find((feed) => feed.name === stalled!.name)?.stalled?.reason, 'no_space');
      assert.equal(later.drained, false);
      const degraded = cli
        .stderr()
        .split('\n')
        .filter((line) => line.includes('"kind":"degraded"'));
      assert.equal(degraded.length, 1, cli.stderr());
      assert.match(degraded[0]!, /log degraded: appends fail, ingest holds the feeds back/);
      // /ready (and so the pipeline page, which shows the same health entries) names the log.
      const ready = await getJson<{ checks: Record<string, { ok: boolean; code?: string; error?: string }> }>(
        cli.baseUrl,
        '/ready',
      );
      assert.equal(ready.status, 503);
      assert.equal(ready.body.checks.log?.code, 'log_no_space');
      assert.match(ready.body.checks.log?.error ?? '', /no space left/i);

      await rm(filler);
      await waitDrained(cli.baseUrl);
      const actual = await dumpApi(cli.baseUrl);
      assert.deepEqual(actual, expected);
      const after = (await getJson<StatsBody>(cli.baseUrl, '/api/v1/stats')).body;
      assert.ok(after.feeds.every((feed) => feed.stalled === undefined && feed.state === 'ended'));
      assert.match(cli.stderr(), /log ok again after \d+ ms/);
      assert.equal((await getJson(cli.baseUrl, '/ready')).status, 200);
    } finally {
      await stopCli(cli);
    }
  });
});
