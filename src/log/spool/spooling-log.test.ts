/**
 * The spooling log against an inner log that fails on command (a MemoryLog behind a switch), so every
 * outage, lost answer and crash point is reproducible. The MemoryLog outlives each FlakyLog, standing in
 * for a broker that outlives the writer process; a copy of the spool dir taken mid-drain stands in for
 * the disk as a kill -9 leaves it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { CLOCK_VALUE, type WriterState } from '../../../test/fixtures/spool-writer.ts';
import { EmbeddedLog } from '../embedded/embedded-log.ts';
import type { AppendRecord, Log, LogRecord } from '../log.ts';
import { MemoryLog } from '../memory/memory-log.ts';
import {
  type SpooledProducerState,
  SpoolingLog,
  type SpoolingLogOptions,
  type SpoolStats,
} from './spooling-log.ts';

type Mode =
  | 'up'
  /** Appends and state reads fail, nothing is written. */
  | 'down'
  /** The next append is written but reported as failed (the answer was lost); then up. */
  | 'commit-then-fail'
  /** Appends hang until `release()`, then are written. */
  | 'hang';

/** A Log over a shared MemoryLog that fails on command. */
class FlakyLog implements Log {
  readonly store: MemoryLog;
  mode: Mode = 'up';
  appendCalls = 0;
  #hung: (() => void)[] = [];

  constructor(store: MemoryLog) {
    this.store = store;
  }

  release(): void {
    for (const resolve of this.#hung.splice(0)) resolve();
  }

  async open(): Promise<void> {}
  partitions(topic: string): number {
    return this.store.partitions(topic);
  }
  async append<T>(
    topic: string,
    records: readonly AppendRecord<T>[],
    producerState?: unknown,
  ): Promise<void> {
    this.appendCalls++;
    if (this.mode === 'down') throw new Error('broker unreachable');
    if (this.mode === 'hang') {
      await new Promise<void>((resolve) => this.#hung.push(resolve));
      await this.store.append(topic, records, producerState);
      return;
    }
    await this.store.append(topic, records, producerState);
    if (this.mode === 'commit-then-fail') {
      this.mode = 'up';
      throw new Error('request timed out (but committed)');
    }
  }
  async producerState(topic: string): Promise<unknown> {
    if (this.mode === 'down') throw new Error('broker unreachable');
    return this.store.producerState(topic);
  }
  read<T>(topic: string, partition: number, fromOffset: number, maxRecords: number): Promise<LogRecord<T>[]> {
    return this.store.read<T>(topic, partition, fromOffset, maxRecords);
  }
  endOffset(topic: string, partition: number): number {
    return this.store.endOffset(topic, partition);
  }
  waitFor(topic: string, partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    return this.store.waitFor(topic, partition, offset, timeoutMs);
  }
  async close(): Promise<void> {
    this.release();
  }
}

const TOPIC = 'price-ticks';
const batch = (from: number, count: number): AppendRecord<number>[] =>
  Array.from({ length: count }, (_, i) => ({ key: 'BTCUSDT', value: from + i }));
const stateAt = (position: number) => ({ feeds: { f: { position, ended: false } } });

async function values(store: MemoryLog, topic = TOPIC): Promise<number[]> {
  return (await store.read<number>(topic, 0, 0, 1_000_000)).map((record) => record.value);
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.spool'));
}

function pending(promise: Promise<unknown>): Promise<boolean> {
  return Promise.race([
    promise.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 30)),
  ]);
}

describe('spooling log', () => {
  let dir: string;
  let store: MemoryLog;
  const opened: SpoolingLog[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'streamlines-spool-'));
    store = new MemoryLog();
    await store.open();
  });
  afterEach(async () => {
    for (const log of opened.splice(0)) await log.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A "process": a FlakyLog over the shared store and a SpoolingLog over it in `spoolDir`. */
  async function start(options: Partial<SpoolingLogOptions> & { spoolDir?: string; mode?: Mode } = {}) {
    const inner = new FlakyLog(store);
    if (options.mode) inner.mode = options.mode;
    const log = new SpoolingLog({
      inner,
      dir: options.spoolDir ?? dir,
      maxBytes: options.maxBytes ?? 1_000_000,
      appendTimeoutMs: options.appendTimeoutMs ?? 1_000,
      retryMs: options.retryMs ?? 5,
    });
    await log.open();
    opened.push(log);
    return { inner, log };
  }

  /**
   * A "process" whose inner log is down appends batches of `sizes` records (each with the state after
   * it) and closes; the path of the one spool segment they went to.
   */
  async function spoolWhileDown(sizes: number[]): Promise<string> {
    const { log } = await start({ mode: 'down' });
    let next = 0;
    for (const size of sizes) {
      await log.append(TOPIC, batch(next, size), stateAt(next + size));
      next += size;
    }
    await log.close();
    const [segment] = await segments(dir);
    assert.ok(segment);
    return path.join(dir, segment);
  }

  it('appends straight to a healthy inner log, with its sequence number in the producer state', async () => {
    const { inner, log } = await start();
    await log.append(TOPIC, batch(0, 3), stateAt(3));
    await log.append(TOPIC, batch(3, 2), stateAt(5));
    assert.deepEqual(await values(store), [0, 1, 2, 3, 4]);
    assert.equal(inner.appendCalls, 2);
    const raw = (await store.producerState(TOPIC)) as SpooledProducerState;
    assert.deepEqual(raw.state, stateAt(5));
    assert.equal(typeof raw.spoolSeq, 'number');
    assert.deepEqual(await log.producerState(TOPIC), stateAt(5));
    assert.equal(log.stats().spooledAppends, 0);
    assert.deepEqual(await segments(dir), []);
  });

  it('spools during an outage, keeps order, and drains every append once the inner log is back', async () => {
    const { inner, log } = await start();
    await log.append(TOPIC, batch(0, 2), stateAt(2));
    inner.mode = 'down';
    await log.append(TOPIC, batch(2, 3), stateAt(5));
    await log.append(TOPIC, batch(5, 1)); // a clock-like append: no state of its own
    await log.append(TOPIC, batch(6, 2), stateAt(8));
    assert.deepEqual(await values(store), [0, 1], 'nothing reaches the inner log while it is down');
    const during = log.stats();
    assert.equal(during.spooledAppends, 3);
    assert.equal(during.spooledRecords, 6);
    assert.equal(during.pendingAppends, 3);
    assert.ok(during.spoolBytes > 0);
    assert.match(during.lastError ?? '', /broker unreachable/);
    assert.equal((await segments(dir)).length, 1);
    // The caller's view of its state is the last one it appended, though only the spool has it.
    assert.deepEqual(await log.producerState(TOPIC), stateAt(8));

    inner.mode = 'up';
    await log.drained();
    assert.deepEqual(await values(store), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(await log.producerState(TOPIC), stateAt(8));
    const after = log.stats();
    assert.equal(after.drainedAppends, 3);
    assert.equal(after.pendingAppends, 0);
    assert.equal(after.spoolBytes, 0);
    assert.deepEqual(await segments(dir), [], 'drained segments are deleted');

    // Back to direct appends.
    const callsBefore = inner.appendCalls;
    await log.append(TOPIC, batch(8, 1), stateAt(9));
    assert.equal(inner.appendCalls, callsBefore + 1);
    assert.equal(log.stats().spooledAppends, 3);
    assert.deepEqual(await values(store), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('a stateless append drained from the spool carries the last caller state, not none', async () => {
    const { inner, log } = await start();
    await log.append(TOPIC, batch(0, 1), stateAt(1));
    inner.mode = 'down';
    await log.append(TOPIC, batch(1, 1));
    inner.mode = 'up';
    await log.drained();
    const raw = (await store.producerState(TOPIC)) as SpooledProducerState;
    assert.deepEqual(raw.state, stateAt(1));
  });

  it('does not append twice when the inner append committed but reported failure', async () => {
    const { inner, log } = await start();
    inner.mode = 'commit-then-fail';
    await log.append(TOPIC, batch(0, 2), stateAt(2));
    await log.append(TOPIC, batch(2, 1), stateAt(3));
    await log.drained();
    assert.deepEqual(await values(store), [0, 1, 2]);
    const stats = log.stats();
    assert.equal(stats.spooledAppends, 2, 'the failed append and the one behind it went to the spool');
    assert.equal(stats.discardedAppends, 1, 'the committed one was recognised and dropped');
    assert.equal(stats.drainedAppends, 1);
  });

  it('spools an append slower than appendTimeoutMs and does not repeat it when it completes late', async () => {
    const { inner, log } = await start({ appendTimeoutMs: 20 });
    inner.mode = 'hang';
    await log.append(TOPIC, batch(0, 2), stateAt(2)); // resolves after 20 ms, from the spool
    assert.equal(log.stats().spooledAppends, 1);
    inner.mode = 'up';
    await new Promise((resolve) => setTimeout(resolve, 50)); // the drainer must wait for the hung append
    assert.deepEqual(await values(store), []);
    inner.release();
    await log.drained();
    assert.deepEqual(await values(store), [0, 1]);
    assert.equal(log.stats().discardedAppends, 1);
  });

  it('waits at maxBytes instead of dropping, counts the wait, and resumes as the spool drains', async () => {
    // A frame of batch(n, 10) with its state is 385 to 395 bytes (8 header + JSON with a 16-digit
    // sequence number; measured): the bound holds two, not three.
    const { inner, log } = await start({ maxBytes: 900 });
    inner.mode = 'down';
    await log.append(TOPIC, batch(0, 10), stateAt(10));
    await log.append(TOPIC, batch(10, 10), stateAt(20));
    const bytesOfTwo = log.stats().spoolBytes;
    assert.ok(bytesOfTwo <= 900 && bytesOfTwo > 750, `two frames are ${bytesOfTwo} bytes`);
    const third = log.append(TOPIC, batch(20, 10), stateAt(30));
    const fourth = log.append(TOPIC, batch(30, 10), stateAt(40));
    assert.equal(await pending(third), true, 'the third append waits for room');
    assert.equal(log.stats().fullWaits, 1);
    assert.equal(log.stats().spooledAppends, 2);
    inner.mode = 'up';
    await Promise.all([third, fourth]);
    await log.drained();
    assert.deepEqual(
      await values(store),
      Array.from({ length: 40 }, (_, i) => i),
    );
    assert.ok(log.stats().fullWaits >= 1);
    assert.equal(log.stats().spooledAppends, 4, 'the waiting appends went to the spool behind the others');
  });

  it('recovers a pending spool on reopen, cutting off a torn tail, and drains it', async () => {
    const file = await spoolWhileDown([2, 2]);
    const whole = (await stat(file)).size;
    // A crash mid-write: half of a third frame (its header says more bytes than follow).
    const torn = Buffer.alloc(30);
    torn.writeUInt32LE(200, 0);
    await writeFile(file, torn, { flag: 'a' });

    const second = await start({ mode: 'up' });
    // The torn append never resolved for its caller, so the last state is the second append's.
    assert.deepEqual(await second.log.producerState(TOPIC), stateAt(4));
    await second.log.drained();
    assert.deepEqual(await values(store), [0, 1, 2, 3]);
    assert.match(second.log.stats().lastError ?? '', /cut 30 torn bytes/);
    assert.equal(second.log.stats().drainedAppends, 2);
    assert.ok(whole > 0);
  });

  it('cuts a frame whose checksum does not match, and everything after it in the segment', async () => {
    const file = await spoolWhileDown([1, 1]);
    const bytes = await readFile(file);
    const firstLength = bytes.readUInt32LE(0);
    // Flips one payload byte of the second frame, as a torn sector would.
    const secondPayload = 8 + firstLength + 8;
    bytes[secondPayload + 3] = (bytes[secondPayload + 3] ?? 0) ^ 0xff;
    await writeFile(file, bytes);

    const second = await start();
    await second.log.drained();
    assert.deepEqual(await values(store), [0]);
    assert.deepEqual(await second.log.producerState(TOPIC), stateAt(1));
  });

  it('after a crash at any point of the drain, recovers to every append exactly once', async () => {
    const first = await start({ mode: 'down' });
    for (let i = 0; i < 5; i++) await first.log.append(TOPIC, batch(i * 2, 2), stateAt(i * 2 + 2));
    await first.log.close();
    // The disk and the inner log as a kill -9 leaves them: before the drain, and after each inner
    // append committed but before the drainer dropped it from the spool.
    const points: { dir: string; values: number[]; state: unknown }[] = [];
    const capture = async () => {
      const copy = await mkdtemp(path.join(os.tmpdir(), 'streamlines-spool-copy-'));
      await cp(dir, copy, { recursive: true });
      points.push({ dir: copy, values: await values(store), state: await store.producerState(TOPIC) });
    };
    try {
      await capture();
      const inner = new FlakyLog(store);
      const wrapped = inner.append.bind(inner);
      inner.append = async (topic, records, state) => {
        await wrapped(topic, records, state);
        await capture();
      };
      const second = new SpoolingLog({ inner, dir, maxBytes: 1_000_000, retryMs: 5 });
      await second.open();
      await second.drained();
      await second.close();
      assert.equal(points.length, 6);
      for (const [committed, point] of points.entries()) {
        store = new MemoryLog();
        await store.open();
        await store.append(
          TOPIC,
          point.values.map((value) => ({ key: 'BTCUSDT', value })),
          point.state,
        );
        const third = await start({ spoolDir: point.dir });
        await third.log.drained();
        assert.deepEqual(await values(store), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], `crash after ${committed}`);
        assert.equal(third.log.stats().discardedAppends, committed);
        assert.equal(third.log.stats().drainedAppends, 5 - committed);
        assert.deepEqual(await third.log.producerState(TOPIC), stateAt(10));
        assert.deepEqual(await segments(point.dir), []);
      }
    } finally {
      for (const point of points) await rm(point.dir, { recursive: true, force: true });
    }
  });

  it('keeps sequence numbers increasing across restarts, so later spooled appends are not taken as duplicates', async () => {
    const first = await start();
    for (let i = 0; i < 3; i++) await first.log.append(TOPIC, batch(i, 1), stateAt(i + 1));
    await first.log.close();
    const second = await start({ mode: 'down' });
    await second.log.append(TOPIC, batch(3, 1), stateAt(4));
    second.inner.mode = 'up';
    await second.log.drained();
    assert.deepEqual(await values(store), [0, 1, 2, 3]);
    assert.equal(second.log.stats().discardedAppends, 0);
    await second.log.close();
    // A new spool dir (the old one lost): numbering continues above the inner log's.
    const other = await mkdtemp(path.join(os.tmpdir(), 'streamlines-spool-new-'));
    try {
      const third = await start({ spoolDir: other });
      await third.log.append(TOPIC, batch(4, 1), stateAt(5)); // direct; learns the inner's number
      third.inner.mode = 'down';
      await third.log.append(TOPIC, batch(5, 1), stateAt(6));
      third.inner.mode = 'up';
      await third.log.drained();
      assert.deepEqual(await values(store), [0, 1, 2, 3, 4, 5]);
      await third.log.close();
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('returns the caller state: pending spooled one first, else the inner one, unwrapped or as a plain log left it', async () => {
    await store.append('other', [], { plain: true }); // written by a plain (unwrapped) log before
    const { inner, log } = await start();
    assert.equal(await log.producerState(TOPIC), undefined);
    assert.deepEqual(await log.producerState('other'), { plain: true });
    await log.append('other', batch(0, 1)); // no state: carries the plain one
    assert.deepEqual(await log.producerState('other'), { plain: true });
    inner.mode = 'down';
    await log.append(TOPIC, batch(0, 1), stateAt(1));
    await log.append(TOPIC, batch(1, 1));
    assert.deepEqual(
      await log.producerState(TOPIC),
      stateAt(1),
      'a stateless spooled append keeps the last state',
    );
    await assert.rejects(
      log.producerState('other'),
      /unreachable/,
      'with nothing spooled the inner log must answer',
    );
    inner.mode = 'up';
    await log.drained();
    assert.deepEqual(await log.producerState(TOPIC), stateAt(1));
  });

  it('spools appends to several topics in one queue, in call order, each topic with its own state', async () => {
    const { inner, log } = await start({ mode: 'down' });
    const order: string[] = [];
    const wrapped = inner.append.bind(inner);
    inner.append = async (topic, records, state) => {
      if (inner.mode === 'up') order.push(`${topic}:${(records[0] as AppendRecord<number>).value}`);
      return wrapped(topic, records, state);
    };
    await log.append('a', batch(0, 1), { at: 'a0' });
    await log.append('b', batch(100, 1), { at: 'b100' });
    await log.append('a', batch(1, 1));
    inner.mode = 'up';
    await log.drained();
    assert.deepEqual(order, ['a:0', 'b:100', 'a:1']);
    assert.deepEqual(await log.producerState('a'), { at: 'a0' });
    assert.deepEqual(await log.producerState('b'), { at: 'b100' });
  });

  it('passes a record partition through to the inner log', async () => {
    const { inner, log } = await start({ mode: 'down' });
    const seen: AppendRecord<number>[][] = [];
    const wrapped = inner.append.bind(inner);
    inner.append = async (topic, records, state) => {
      if (inner.mode === 'up') seen.push([...records] as AppendRecord<number>[]);
      return wrapped(topic, records, state);
    };
    await log.append(TOPIC, [{ key: '', value: 1, partition: 0 }]);
    inner.mode = 'up';
    await log.drained();
    assert.deepEqual(seen, [[{ key: '', value: 1, partition: 0 }]]);
  });

  it('rejects appends after close and leaves the spool on disk', async () => {
    const { log } = await start({ mode: 'down' });
    await log.append(TOPIC, batch(0, 1), stateAt(1));
    await log.close();
    await assert.rejects(log.append(TOPIC, batch(1, 1)), /LOG_CLOSED/);
    assert.equal((await segments(dir)).length, 1);
  });
});

describe('spooling log under kill -9', () => {
  it('keeps every append exactly once and in order when the writer is killed at random moments', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'streamlines-spool-kill-'));
    const logDir = path.join(root, 'log');
    const spoolDir = path.join(root, 'spool');
    const totals = { spooledAppends: 0, discardedAppends: 0, drainedAppends: 0 };
    try {
      for (let round = 0; round < 8; round++) {
        const last = await runAndKill(logDir, spoolDir, round + 1, 20 + ((round * 37) % 120));
        totals.spooledAppends += last.spooledAppends;
        totals.discardedAppends += last.discardedAppends;
        totals.drainedAppends += last.drainedAppends;
      }
      // Every path was taken: spooled appends, drained ones, and committed ones recognised.
      assert.ok(
        totals.spooledAppends > 0 && totals.drainedAppends > 0 && totals.discardedAppends > 0,
        JSON.stringify(totals),
      );

      // A last, healthy process drains what the last kill left in the spool.
      const inner = new EmbeddedLog({ dir: logDir });
      const log = new SpoolingLog({ inner, dir: spoolDir, maxBytes: 4_096, retryMs: 1 });
      await log.open();
      await log.drained();
      const state = (await log.producerState('ticks')) as WriterState;
      const got: number[] = [];
      for (;;) {
        const records = await log.read<number>('ticks', 0, got.length, 100_000);
        if (records.length === 0) break;
        for (const record of records) got.push(record.value);
      }
      await log.close();
      const numbered = got.filter((value) => value !== CLOCK_VALUE);
      assert.ok(state.next > 0);
      assert.deepEqual(
        numbered,
        Array.from({ length: state.next }, (_, i) => i),
        'values 0..next-1, each once, in order',
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

/** Runs the writer until it has appended once, SIGKILLs it after `delayMs`, and returns its last counters. */
async function runAndKill(
  logDir: string,
  spoolDir: string,
  seed: number,
  delayMs: number,
): Promise<SpoolStats> {
  const FIXTURE = path.join(import.meta.dirname, '../../../test/fixtures/spool-writer.ts');
  const child = spawn(process.execPath, [FIXTURE, logDir, spoolDir, String(seed)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let lastLine = '';
  let buffered = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      if (lines.length > 0) lastLine = lines[lines.length - 1] ?? lastLine;
      resolve();
    });
    child.on('exit', (code) => reject(new Error(`writer exited with ${code} before appending`)));
  });
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  return JSON.parse(lastLine) as SpoolStats;
}
