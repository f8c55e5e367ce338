import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import type { AppendRecord } from '../log.ts';
import { LogError } from '../log-error.ts';
import { EmbeddedLog, type EmbeddedLogOptions, listSegmentFiles } from './embedded-log.ts';

let dir = '';
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'streamlines-embedded-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function opened(options: Partial<EmbeddedLogOptions> = {}): Promise<EmbeddedLog> {
  const log = new EmbeddedLog({ dir, ...options });
  await log.open();
  return log;
}

function batch(from: number, count: number): AppendRecord<{ i: number; pad: string }>[] {
  return Array.from({ length: count }, (_, j) => ({ key: 'k', value: { i: from + j, pad: 'p'.repeat(20) } }));
}

async function values(log: EmbeddedLog, topic: string): Promise<number[]> {
  const records = await log.read<{ i: number }>(topic, 0, 0, 1_000_000);
  return records.map((record) => record.value.i);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

it('fixes a topic partition count when first used, whatever later opens ask for', async () => {
  let log = await opened({ partitions: 3 });
  await log.append('ticks', batch(0, 1));
  await log.close();
  log = await opened({ partitions: 5 });
  assert.equal(log.partitions('ticks'), 3);
  assert.equal(log.partitions('fresh'), 5);
  await log.close();
});

it('rolls segments at segmentBytes, names them by first frame, and reads across them', async () => {
  // Each frame here is about 10 records * 37 bytes + 30 bytes of framing, so ~400 bytes: 2 per 1000.
  let log = await opened({ segmentBytes: 1000, cacheRecords: 0 });
  for (let b = 0; b < 10; b++) await log.append('ticks', batch(b * 10, 10), { b });
  await log.close();
  const files = listSegmentFiles(dir, 'ticks');
  assert.ok(files.length >= 4, `${files.length} segments`);
  for (const file of files) assert.ok((await fs.stat(file)).size <= 1000);
  assert.equal(path.basename(files[0]!), '00000000000000000000.seg');
  // The second segment starts with the frame after the first segment's frames.
  const framesInFirst = Number(path.basename(files[1]!).slice(0, 20));
  assert.ok(framesInFirst >= 1 && framesInFirst <= 2);
  log = await opened({ segmentBytes: 1000 });
  assert.deepEqual(await values(log, 'ticks'), range(100));
  assert.deepEqual(await log.producerState('ticks'), { b: 9 });
  await log.close();
});

it('reports the torn tail it cut off', async () => {
  let log = await opened();
  await log.append('ticks', batch(0, 5), { b: 0 });
  await log.append('ticks', batch(5, 5), { b: 1 });
  await log.close();
  const [file] = listSegmentFiles(dir, 'ticks');
  const size = (await fs.stat(file!)).size;
  await fs.truncate(file!, size - 10);
  log = await opened();
  assert.equal(log.repairs.length, 1);
  const repair = log.repairs[0]!;
  assert.equal(repair.segment, file);
  assert.equal(repair.truncatedAt + repair.droppedBytes, size - 10);
  assert.equal((await fs.stat(file!)).size, repair.truncatedAt);
  assert.deepEqual(await values(log, 'ticks'), range(5));
  await log.close();
});

it('drops a last frame whose bytes changed although its structure still parses (CRC mismatch)', async () => {
  let log = await opened();
  await log.append('ticks', batch(0, 5), { b: 0 });
  await log.append('ticks', batch(5, 5), { b: 1 });
  await log.close();
  const [file] = listSegmentFiles(dir, 'ticks');
  const bytes = await fs.readFile(file!);
  // 'p' -> 'q' inside the last record's padding: still valid JSON, only the CRC can tell.
  const at = bytes.lastIndexOf('p'.charCodeAt(0));
  bytes[at] = 'q'.charCodeAt(0);
  await fs.writeFile(file!, bytes);
  log = await opened();
  assert.deepEqual(await values(log, 'ticks'), range(5));
  assert.deepEqual(await log.producerState('ticks'), { b: 0 });
  await log.close();
});

it('cuts a zero-filled tail, as a filesystem may leave after a crash', async () => {
  let log = await opened();
  await log.append('ticks', batch(0, 5), { b: 0 });
  await log.close();
  const [file] = listSegmentFiles(dir, 'ticks');
  await fs.appendFile(file!, Buffer.alloc(4096));
  log = await opened();
  assert.deepEqual(await values(log, 'ticks'), range(5));
  assert.equal(log.repairs[0]?.droppedBytes, 4096);
  await log.close();
});

it('refuses to open when a segment before the last is corrupt, rather than dropping data', async () => {
  let log = await opened({ segmentBytes: 500 });
  for (let b = 0; b < 6; b++) await log.append('ticks', batch(b * 10, 10));
  await log.close();
  const files = listSegmentFiles(dir, 'ticks');
  assert.ok(files.length >= 3);
  const bytes = await fs.readFile(files[0]!);
  bytes[bytes.length - 5]! ^= 0xff;
  await fs.writeFile(files[0]!, bytes);
  log = new EmbeddedLog({ dir });
  await assert.rejects(
    log.open(),
    (error: unknown) => error instanceof LogError && error.code === 'LOG_CORRUPT',
  );
});

it('refuses to open when a segment file is missing', async () => {
  let log = await opened({ segmentBytes: 500 });
  for (let b = 0; b < 6; b++) await log.append('ticks', batch(b * 10, 10));
  await log.close();
  const files = listSegmentFiles(dir, 'ticks');
  await fs.rm(files[1]!);
  log = new EmbeddedLog({ dir });
  await assert.rejects(log.open(), /LOG_CORRUPT: .*a segment file is missing/);
});

it('rejects topic names that are not safe directory names', async () => {
  const log = await opened();
  for (const topic of ['..', 'a/b', '', 'tick s']) {
    await assert.rejects(log.append(topic, batch(0, 1)), /LOG_BAD_TOPIC/, topic);
  }
  await log.close();
});

it('rejects use before open and after close', async () => {
  const log = new EmbeddedLog({ dir });
  await assert.rejects(log.append('ticks', batch(0, 1)), /LOG_NOT_OPEN/);
  await log.open();
  await log.close();
  await assert.rejects(log.read('ticks', 0, 0, 1), /LOG_CLOSED/);
  assert.equal(await log.waitFor('ticks', 0, 0, 10_000), false);
});

it('keeps working with fsync on', async () => {
  let log = await opened({ fsync: true, segmentBytes: 300 });
  for (let b = 0; b < 4; b++) await log.append('ticks', batch(b * 5, 5), { b });
  await log.close();
  log = await opened();
  assert.deepEqual(await values(log, 'ticks'), range(20));
  assert.deepEqual(await log.producerState('ticks'), { b: 3 });
  await log.close();
});

it('rejects an out-of-range explicit partition with LOG_BAD_ARGUMENT before touching the disk', async () => {
  let log = await opened({ partitions: 2 });
  await assert.rejects(log.append('fresh', [{ key: 'k', value: 1, partition: 2 }], { s: 1 }), (error) => {
    assert.ok(error instanceof LogError);
    assert.equal(error.code, 'LOG_BAD_ARGUMENT');
    assert.match(error.message, /partition 2 of topic 'fresh' does not exist/);
    return true;
  });
  // No topic directory: a later open with another count still fixes the topic at its own.
  assert.deepEqual(await fs.readdir(dir), []);
  await log.close();
  log = await opened({ partitions: 3 });
  await log.append('fresh', [
    { key: 'k', value: 1, partition: 2 },
    { key: 'k', value: 2, partition: 0 },
  ]);
  await log.close();
  // Explicit partitions are in the frame's sections, so recovery puts the records back where they were.
  log = await opened({ partitions: 3, cacheRecords: 0 });
  assert.equal(log.partitions('fresh'), 3);
  assert.deepEqual(
    (await log.read<number>('fresh', 2, 0, 10)).map((record) => record.value),
    [1],
  );
  assert.deepEqual(
    (await log.read<number>('fresh', 0, 0, 10)).map((record) => record.value),
    [2],
  );
  await log.close();
});

it('bounds the tail cache by encoded bytes, reading older records back from disk', async () => {
  const log = await opened({ cacheBytes: 4_096 });
  for (let i = 0; i < 100; i++) await log.append('ticks', batch(i * 10, 10));
  // At most one append (about 300 bytes here) over the bound.
  const { cacheBytes, topics } = log.diskUsage();
  assert.ok(cacheBytes <= 4_096 + 1_000, `cache holds ${cacheBytes} bytes`);
  assert.ok(cacheBytes > 0);
  assert.ok(topics.ticks!.bytes > 20_000, 'the log itself holds much more');
  assert.deepEqual(await values(log, 'ticks'), range(1_000));
  await log.close();
});

it('holds the whole log, every topic together, under retentionBytes: the oldest segment of any topic goes first', async () => {
  let clock = 1_000;
  const log = await opened({ segmentBytes: 1_000, retentionBytes: 6_000, cacheRecords: 0, now: () => clock });
  // Two topics of about 5 000 bytes each: each under the cap on its own, together over it.
  for (let b = 0; b < 12; b++) {
    for (const topic of ['ticks', 'alerts']) {
      clock++;
      await log.append(topic, batch(b * 10, 10));
    }
  }
  const held = () => {
    const { topics } = log.diskUsage();
    return { ticks: topics.ticks!.bytes, alerts: topics.alerts!.bytes };
  };
  const before = held();
  assert.ok(before.ticks < 6_000 && before.alerts < 6_000, JSON.stringify(before));
  assert.ok(before.ticks + before.alerts > 8_000, JSON.stringify(before));
  // Nothing processed yet: nothing goes, however far over the cap.
  log.enforceRetention();
  assert.deepEqual(held(), before);
  log.markProcessed('ticks', 0, log.endOffset('ticks', 0));
  log.markProcessed('alerts', 0, log.endOffset('alerts', 0));
  const result = log.enforceRetention();
  const after = held();
  // At most one segment (1 000 bytes) over the cap, and the oldest segments of both topics went.
  assert.ok(after.ticks + after.alerts <= 7_000, JSON.stringify(after));
  assert.equal(result.bytes, before.ticks + before.alerts - after.ticks - after.alerts);
  assert.ok(log.startOffset('ticks', 0) > 0 && log.startOffset('alerts', 0) > 0);
  // What is left is the newest records of each topic, intact.
  const kept = await values(log, 'alerts');
  assert.deepEqual(kept, range(120).slice(120 - kept.length));
  await log.close();
});

it('reads version 1 frames (JSON sections) written before the binary encoding', async () => {
  // A segment as the version 1 writer left it: one frame of 2 records and a producer state.
  const state = Buffer.from(JSON.stringify({ batch: 0 }));
  const section = Buffer.from(JSON.stringify(['k', { i: 0 }, 'k', { i: 1 }]));
  const payload = Buffer.alloc(8 + 12 + state.length + section.length);
  payload.writeUInt8(1, 0);
  payload.writeUInt16LE(1, 2);
  payload.writeUInt32LE(state.length, 4);
  payload.writeUInt32LE(0, 8);
  payload.writeUInt32LE(2, 12);
  payload.writeUInt32LE(section.length, 16);
  state.copy(payload, 20);
  section.copy(payload, 20 + state.length);
  const header = Buffer.alloc(8);
  header.writeUInt32LE(payload.length, 0);
  header.writeUInt32LE((await import('node:zlib')).crc32(payload), 4);
  await fs.mkdir(path.join(dir, 'ticks'));
  await fs.writeFile(path.join(dir, 'ticks', 'topic.json'), JSON.stringify({ version: 1, partitions: 1 }));
  await fs.writeFile(path.join(dir, 'ticks', `${'0'.repeat(20)}.seg`), Buffer.concat([header, payload]));
  const log = await opened({ cacheRecords: 0 });
  assert.deepEqual(await values(log, 'ticks'), [0, 1]);
  assert.deepEqual(await log.producerState('ticks'), { batch: 0 });
  await log.append('ticks', batch(2, 1), { batch: 1 });
  await log.close();
  const reopened = await opened({ cacheRecords: 0 });
  assert.deepEqual(await values(reopened, 'ticks'), [0, 1, 2]);
  assert.deepEqual(await reopened.producerState('ticks'), { batch: 1 });
  await reopened.close();
});

it('refuses an append on a full disk with LOG_NO_SPACE, writing nothing, and takes it once space returns', async (t) => {
  // A real full disk: a small tmpfs (needs root to mount; skipped otherwise).
  const mount = path.join(dir, 'tmpfs');
  await fs.mkdir(mount);
  const { execFileSync } = await import('node:child_process');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=262144', 'tmpfs', mount], { stdio: 'ignore' });
  } catch {
    t.skip('mounting a tmpfs needs root');
    return;
  }
  try {
    const log = new EmbeddedLog({ dir: path.join(mount, 'log'), segmentBytes: 32_768 });
    await log.open();
    const filler = path.join(mount, 'filler');
    await fs.writeFile(filler, Buffer.alloc(200_000));
    let appended = 0;
    let refused: unknown;
    for (let i = 0; i < 1_000 && refused === undefined; i++) {
      try {
        await log.append('ticks', batch(appended, 50), { through: appended + 50 });
        appended += 50;
      } catch (error) {
        refused = error;
      }
    }
    assert.ok(refused instanceof LogError && refused.code === 'LOG_NO_SPACE', String(refused));
    assert.equal(log.endOffset('ticks', 0), appended, 'the refused append left nothing');
    assert.deepEqual(await log.producerState('ticks'), { through: appended });
    await fs.rm(filler);
    // The same append again, as ingest retries it.
    await log.append('ticks', batch(appended, 50), { through: appended + 50 });
    await log.close();
    const reopened = new EmbeddedLog({ dir: path.join(mount, 'log'), segmentBytes: 32_768 });
    await reopened.open();
    assert.deepEqual(reopened.repairs, [], 'no torn frame was left behind');
    assert.deepEqual(await values(reopened, 'ticks'), range(appended + 50));
    assert.deepEqual(await reopened.producerState('ticks'), { through: appended + 50 });
    await reopened.close();
  } finally {
    execFileSync('umount', [mount]);
  }
});
