/**
 * docs/design.md, Rules Delivery: `kill -9` of the process at any moment during a replay, then the same command
 * again on the same data dir, ends with exactly what an uninterrupted run gives, counters included.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { drainedDump, killAfter, replayArgs, startCli } from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';

describe('crash recovery', () => {
  let dir: string;
  let args: (dataDir: string) => string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-crash-'));
    const replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 150_000, seed: 23 });
    const config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ lateness: '10s', alerts: { rules: [{ symbol: 'ETHUSDT', above: 200 }] } }),
    );
    args = (dataDir) => replayArgs(replay, dataDir, config);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('kill -9 at random moments, then a rerun, gives the uninterrupted result', {
    timeout: 600_000,
  }, async () => {
    const expected = await drainedDump(args(join(dir, 'clean')));

    const crashDir = join(dir, 'crashed');
    const kills: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const cli = await startCli(args(crashDir));
      // Kill somewhere in the replay: after a random share of the work, or right away.
      const delayMs = Math.floor(Math.random() * 1_500);
      process.stderr.write(`kill after ${delayMs} ms\n`);
      const kill = await killAfter(cli, delayMs);
      kills.push(kill.said);
      if (kill.drained) break;
    }
    const actual = await drainedDump(args(crashDir));
    assert.ok(kills.length > 0);
    assert.deepEqual(actual, expected, `kills: ${kills.join('; ')}`);
  });
});
