/**
 * docs/design.md, Retention and history on the real CLI: with a log byte cap far below the replay, processed segments are deleted
 * while it runs, and `kill -9` at random moments (deletions included), then a rerun, still ends with
 * exactly what an uninterrupted run without log retention gives.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { drainedDump, dumpApi, getJson, replayArgs, startCli, stopCli, waitDrained } from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';

const CAP_BYTES = 96 * 1024;
const SEGMENT_BYTES = 16 * 1024;

async function segmentsOf(dataDir: string): Promise<{ names: string[]; bytes: number; largest: number }> {
  const dir = join(dataDir, 'log', 'price-ticks');
  const names = (await readdir(dir)).filter((name) => name.endsWith('.seg')).sort();
  let bytes = 0;
  let largest = 0;
  for (const name of names) {
    const size = (await stat(join(dir, name))).size;
    bytes += size;
    largest = Math.max(largest, size);
  }
  return { names, bytes, largest };
}

/** Over the cap by at most the newest segment and one more (a segment holds at least one whole append). */
function nearCap(held: { bytes: number; largest: number }): boolean {
  return held.bytes <= CAP_BYTES + 2 * Math.max(SEGMENT_BYTES, held.largest);
}

describe('log retention', () => {
  let dir: string;
  let args: (dataDir: string, config: string) => string[];
  let plain: string;
  let capped: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'streamlines-log-retention-'));
    const replay = join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: 150_000, seed: 29 });
    // A short dedup horizon: the replay spans hours, so ingest's read-back point moves along with it.
    const base = {
      lateness: '10s',
      dedupHorizon: '10m',
      alerts: { rules: [{ symbol: 'ETHUSDT', above: 200 }] },
    };
    plain = join(dir, 'plain.json');
    await writeFile(
      plain,
      JSON.stringify({ ...base, log: { type: 'embedded', retention: 0, retentionBytes: 0 } }),
    );
    capped = join(dir, 'capped.json');
    await writeFile(
      capped,
      JSON.stringify({
        ...base,
        log: {
          type: 'embedded',
          retention: 0,
          retentionBytes: `${CAP_BYTES / 1024}KiB`,
          segmentBytes: SEGMENT_BYTES,
        },
      }),
    );
    args = (dataDir, config) => replayArgs(replay, dataDir, config);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('deletes processed segments while a replay runs; kill -9 and a rerun give the uninterrupted result', {
    timeout: 600_000,
  }, async () => {
    const expected = await drainedDump(args(join(dir, 'clean'), plain));
    const kept = await segmentsOf(join(dir, 'clean'));
    assert.ok(kept.names[0]!.startsWith('00000000000000000000'), 'without retention nothing is deleted');

    const crashDir = join(dir, 'crashed');
    const kills: string[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      const cli = await startCli(args(crashDir, capped));
      const delayMs = 300 + Math.floor(Math.random() * 2_500);
      await sleep(delayMs);
      const { body } = await getJson<{ processedOffset: number; drained: boolean }>(
        cli.baseUrl,
        '/api/v1/stats',
      ).catch(() => ({ body: { processedOffset: -1, drained: false } }));
      const before = await segmentsOf(crashDir).catch(() => ({ names: [] as string[] }));
      await stopCli(cli, 'SIGKILL');
      kills.push(`after ${delayMs} ms at offset ${body.processedOffset}, first segment ${before.names[0]}`);
      process.stderr.write(`${kills[kills.length - 1]}\n`);
      if (body.drained) break;
    }
    const final = await startCli(args(crashDir, capped));
    await waitDrained(final.baseUrl);
    const actual = await dumpApi(final.baseUrl);
    // Once everything is processed, retention (every second) brings the log under its cap.
    let held = await segmentsOf(crashDir);
    for (let wait = 0; wait < 50 && !nearCap(held); wait++) {
      await sleep(200);
      held = await segmentsOf(crashDir);
    }
    await stopCli(final);
    assert.deepEqual(actual, expected, `kills: ${kills.join('; ')}`);
    assert.ok(
      !held.names[0]!.startsWith('00000000000000000000'),
      `the oldest segments were deleted: ${held.names[0]}`,
    );
    assert.ok(
      nearCap(held),
      `log of ${held.bytes} bytes in ${held.names.length} segments (largest ${held.largest}) is near its ` +
        `${CAP_BYTES}-byte cap (${kept.bytes} bytes without retention)`,
    );
  });
});
