import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FeedBatch } from '../feed.ts';
import { ReplayFeed, type ReplayPosition } from './replay-feed.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'replay-feed-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function collect(feed: ReplayFeed, position?: ReplayPosition): Promise<FeedBatch[]> {
  const batches: FeedBatch[] = [];
  for await (const batch of feed.run(position, new AbortController().signal)) batches.push(batch);
  return batches;
}

describe('ReplayFeed', () => {
  it('hands over every non-blank line, handling CRLF, multi-byte text and a last line without newline', async () => {
    const path = join(dir, 'a.ndjson');
    await writeFile(path, 'one\r\n\n  \ntwo €\nthree');
    const batches = await collect(new ReplayFeed({ type: 'replay', path, speed: 'max', source: 'replay' }));
    assert.deepEqual(
      batches.flatMap((batch) => batch.lines ?? []),
      ['one', 'two €', 'three'],
    );
    const last = batches[batches.length - 1]!.position as ReplayPosition;
    assert.deepEqual(last, { byte: Buffer.byteLength('one\r\n\n  \ntwo €\nthree'), line: 5 });
  });

  it('resumes after the position it reported, across chunk boundaries', async () => {
    const path = join(dir, 'b.ndjson');
    // ~2.3 MiB: several 1 MiB chunks, so lines straddle chunk ends.
    const lines = Array.from({ length: 60_000 }, (_, i) => `{"i":${i},"pad":"${'x'.repeat(i % 50)}"}`);
    await writeFile(path, `${lines.join('\n')}\n`);
    const feed = new ReplayFeed({ type: 'replay', path, speed: 'max', source: 'replay' });
    const all = await collect(feed);
    assert.deepEqual(
      all.flatMap((batch) => batch.lines ?? []),
      lines,
    );
    assert.ok(all.length > 1, 'expected several batches');
    const resumed = await collect(feed, all[0]!.position as ReplayPosition);
    const firstCount = all[0]!.lines!.length;
    assert.deepEqual(
      resumed.flatMap((batch) => batch.lines ?? []),
      lines.slice(firstCount),
    );
    assert.deepEqual(feed.progress(), {
      done: Buffer.byteLength(`${lines.join('\n')}\n`),
      total: Buffer.byteLength(`${lines.join('\n')}\n`),
      unit: 'B',
    });
  });

  it('paces lines by event time at the given speed', async () => {
    const path = join(dir, 'c.ndjson');
    // 4 ticks 1 s apart in event time at speed 20: 150 ms of wall time at least.
    const ts = [0, 1_000, 2_000, 3_000].map((offset) => 1_700_000_000_000 + offset);
    await writeFile(path, ts.map((t) => JSON.stringify({ ts: t })).join('\n'));
    const started = performance.now();
    const batches = await collect(new ReplayFeed({ type: 'replay', path, speed: 20, source: 'replay' }));
    const elapsed = performance.now() - started;
    assert.equal(batches.flatMap((batch) => batch.lines ?? []).length, 4);
    assert.ok(batches.length >= 2, 'paced lines arrive in several batches');
    assert.ok(elapsed >= 140, `paced replay took only ${elapsed} ms`);
    // Positions of paced batches let a restart resume mid-file.
    const firstPosition = batches[0]!.position as ReplayPosition;
    assert.equal(firstPosition.line, batches[0]!.lines!.length);
  });
});
