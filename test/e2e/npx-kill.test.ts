/**
 * `kill -9` of `npx streamlines run …` (the npm process, not the server under it), then the same
 * command again: the orphaned server must not keep the data dir, and the rerun ends with exactly the
 * result of an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  drainedDump,
  dumpApi,
  type RunningCli,
  replayArgs,
  startServing,
  waitDrained,
} from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';

/** Starts the command the way a user types it and resolves with its address once it listens. */
function startNpx(args: string[]): Promise<RunningCli> {
  return startServing(
    'npx streamlines',
    'npx',
    ['streamlines', 'run', '--port', '0', '--host', '127.0.0.1', ...args],
    60_000,
  );
}

describe('kill -9 of npx', () => {
  let dir: string;
  let args: (dataDir: string) => string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-npx-'));
    const replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 60_000, seed: 5 });
    args = (dataDir) => replayArgs(replay, dataDir);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the server under npm down with it, and the rerun completes the replay', {
    timeout: 300_000,
  }, async () => {
    const expected = await drainedDump(args(join(dir, 'clean')));

    const dataDir = join(dir, 'killed');
    const first = await startNpx(args(dataDir));
    await sleep(300);
    const exited = once(first.child, 'exit');
    first.child.kill('SIGKILL');
    await exited;
    // The same command again right away: it must get the data dir (the orphan goes within moments).
    const second = await startNpx(args(dataDir));
    try {
      await waitDrained(second.baseUrl);
      assert.deepEqual(await dumpApi(second.baseUrl), expected);
    } finally {
      const done = once(second.child, 'exit');
      second.child.kill('SIGTERM');
      await done;
    }
  });
});
