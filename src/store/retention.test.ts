import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ONES, testCandle } from '../../test/support/records.ts';
import type { Candle, ProcessedTick } from '../core/records.ts';
import { makeBatch } from './conformance.ts';
import { MemoryStore } from './memory/memory-store.ts';
import { StoreRetention } from './retention.ts';
import type { ExpiryCutoffs, ExpiryResult } from './store.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = 1_700_000_000_000 - (1_700_000_000_000 % HOUR);

function tick(seq: number, ts: number): ProcessedTick {
  return {
    source: 's',
    symbol: 'AAA',
    ts,
    price: 1,
    size: 1,
    receivedAt: ts,
    seq,
    maShort: null,
    maLong: null,
    late: false,
  };
}

function candle(ts: number): Candle {
  return testCandle(ts, { symbol: 'AAA', ...ONES });
}

/** A store with one tick every 10 s and one candle a minute over `hours` hours from T0. */
async function filledStore(hours: number): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.open();
  const ticks = Array.from({ length: hours * 360 }, (_, i) => tick(i, T0 + i * 10_000));
  const candles = Array.from({ length: hours * 60 }, (_, i) => candle(T0 + i * MINUTE));
  await store.write(makeBatch({ ticks, candles }));
  return store;
}

/** Records every cutoff the task asks for, around a real store. */
function recording(store: MemoryStore): { store: MemoryStore; steps: ExpiryCutoffs[] } {
  const steps: ExpiryCutoffs[] = [];
  const deleteExpired = store.deleteExpired.bind(store);
  store.deleteExpired = (cutoffs: ExpiryCutoffs): Promise<ExpiryResult> => {
    steps.push(cutoffs);
    return deleteExpired(cutoffs);
  };
  return { store, steps };
}

/** Counts the task's `storedSpan` calls on a real store. */
function countingSpans(store: MemoryStore): { calls: () => number } {
  let calls = 0;
  const storedSpan = store.storedSpan.bind(store);
  store.storedSpan = () => {
    calls++;
    return storedSpan();
  };
  return { calls: () => calls };
}

test('steps through the expired span in slices of about stepRows rows, then deletes exactly what is old', async () => {
  const { store, steps } = recording(await filledStore(10));
  const newest = T0 + 10 * HOUR - 10_000;
  const retention = new StoreRetention({
    store,
    ticksMs: 2 * HOUR,
    candlesMs: 5 * HOUR,
    stepRows: 100,
    maxStepRows: 100,
  });
  let rounds = 0;
  while (await retention.step()) rounds++;
  assert.ok(rounds > 10, `expected many small steps, got ${rounds}`);
  // No step deleted much more than stepRows ticks: a slice only doubles after a step deleting few.
  let previous = Number.NEGATIVE_INFINITY;
  for (const step of steps) {
    const before = step.ticksBeforeMs ?? previous;
    assert.ok((before - Math.max(previous, T0)) / 10_000 <= 2 * 100 + 1, `slice ${previous}..${before}`);
    previous = before;
  }
  const ticks = await store.ticks('AAA', { from: 0, limit: 10_000 });
  assert.equal(ticks[0]?.ts, newest - 2 * HOUR);
  assert.equal(ticks.length, (2 * HOUR) / 10_000 + 1);
  const candles = await store.candles('AAA', '1m', { from: 0, limit: 10_000 });
  assert.equal(candles[0]?.ts, T0 + 5 * HOUR);
  assert.equal(retention.deleted.ticks, 10 * 360 - ticks.length);
  assert.equal(await retention.step(), false);
  const progress = retention.progress();
  assert.equal(progress.ticksDeletedBeforeMs, newest - 2 * HOUR);
  assert.equal(progress.candlesDeletedBeforeMs, newest - 5 * HOUR);
  assert.equal(progress.deletedRows.candles, 5 * 60);
  assert.ok(progress.longestStepMs >= 0);
});

test('a retention that is behind aims higher each step, up to maxStepRows, and back to stepRows once caught up', async () => {
  const { store, steps } = recording(await filledStore(10));
  const retention = new StoreRetention({
    store,
    ticksMs: HOUR,
    candlesMs: 0,
    stepRows: 100,
    maxStepRows: 400,
  });
  const sliceRows = () => {
    const rows: number[] = [];
    let previous = T0;
    for (const step of steps) {
      rows.push((step.ticksBeforeMs! - previous) / 10_000);
      previous = step.ticksBeforeMs!;
    }
    return rows;
  };
  while (await retention.step());
  const catchUp = sliceRows();
  // 9 hours (3 240 rows) behind: slices grew past what stepRows alone allows (2 x 100), never past 2 x 400.
  assert.ok(Math.max(...catchUp) > 2 * 100, `slices ${catchUp}`);
  assert.ok(Math.max(...catchUp) <= 2 * 400 + 1, `slices ${catchUp}`);
  assert.ok(catchUp.length < 3_240 / 200, `${catchUp.length} steps`);
  // Caught up: ten more minutes of ticks expire in one small step again.
  await store.write(
    makeBatch({ ticks: Array.from({ length: 60 }, (_, i) => tick(10_000 + i, T0 + 10 * HOUR + i * 10_000)) }),
  );
  steps.length = 0;
  assert.equal(await retention.step(), false);
  assert.equal(steps.length, 1);
  const remaining = await store.ticks('AAA', { from: 0, limit: 10_000 });
  assert.equal(remaining[0]?.ts, T0 + 10 * HOUR + 590_000 - HOUR);
});

test('holdBackBeforeMs keeps every row at or after the ts it returns', async () => {
  const store = await filledStore(4);
  let hold = T0 + HOUR;
  const retention = new StoreRetention({
    store,
    ticksMs: MINUTE,
    candlesMs: MINUTE,
    holdBackBeforeMs: () => hold,
  });
  while (await retention.step()) {}
  assert.equal((await store.ticks('AAA', { from: 0, limit: 1 }))[0]?.ts, T0 + HOUR);
  assert.equal((await store.candles('AAA', '1m', { from: 0, limit: 1 }))[0]?.ts, T0 + HOUR);
  hold = T0 + 2 * HOUR + 1;
  while (await retention.step()) {}
  assert.equal((await store.ticks('AAA', { from: 0, limit: 1 }))[0]?.ts, T0 + 2 * HOUR + 10_000);
});

test('0 keeps a kind forever, and an empty store has nothing to do', async () => {
  const empty = new MemoryStore();
  await empty.open();
  assert.equal(await new StoreRetention({ store: empty, ticksMs: 1, candlesMs: 1 }).step(), false);
  const store = await filledStore(3);
  const retention = new StoreRetention({ store, ticksMs: HOUR, candlesMs: 0 });
  while (await retention.step()) {}
  assert.equal((await store.candles('AAA', '1m', { from: 0, limit: 10_000 })).length, 180);
  assert.ok((await store.ticks('AAA', { from: 0, limit: 10_000 })).length < 400);
  assert.equal(new StoreRetention({ store, ticksMs: 0, candlesMs: 0 }).enabled, false);
  assert.throws(() => new StoreRetention({ store, ticksMs: -1, candlesMs: 0 }), RangeError);
});

test('start() runs in the background until caught up, and stop() waits for the step in flight', async () => {
  const store = await filledStore(3);
  const retention = new StoreRetention({ store, ticksMs: HOUR, candlesMs: HOUR, stepPauseMs: 0, idleMs: 5 });
  retention.start();
  const deadline = Date.now() + 10_000;
  while ((await store.ticks('AAA', { from: 0, limit: 1 }))[0]?.ts !== T0 + 2 * HOUR - 10_000) {
    assert.ok(Date.now() < deadline, 'retention did not catch up');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await retention.stop();
  const after = retention.deleted.ticks;
  await store.write(makeBatch({ ticks: [tick(99_999, T0 + 5 * HOUR)] }));
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(retention.deleted.ticks, after, 'a stopped task deleted more');
});

test('dead letters: the newest `deadLetters` by seq stay, at most stepRows go per step, with or without ticks', async () => {
  const { store, steps } = recording(new MemoryStore());
  await store.open();
  // No ticks at all: a feed that only sends garbage must still be bounded.
  const letters = Array.from({ length: 25 }, (_, i) => ({
    seq: 1_000 - 30 * i,
    source: 's',
    reason: 'invalid_json' as const,
    detail: `bad ${i}`,
    raw: `{${i}`,
    receivedAt: T0 + i,
  }));
  await store.write(makeBatch({ deadLetters: letters }));
  const retention = new StoreRetention({
    store,
    ticksMs: HOUR,
    candlesMs: HOUR,
    deadLetters: 10,
    stepRows: 4,
    maxStepRows: 4,
    deadLetterCheckMs: 0,
  });
  const more: boolean[] = [];
  for (let i = 0; i < 5; i++) more.push(await retention.step());
  // 15 over the bound: 4 + 4 + 4 + 3, and a full step says there may be more.
  assert.deepStrictEqual(more, [true, true, true, false, false]);
  assert.deepStrictEqual(
    steps.map((cutoffs) => cutoffs.deadLetters),
    Array.from({ length: 5 }, () => ({ keep: 10, maxRows: 4 })),
  );
  const kept = letters.map((letter) => letter.seq).slice(0, 10);
  assert.deepStrictEqual(
    (await store.deadLetters(100)).map((letter) => letter.seq),
    kept.sort((a, b) => a - b),
  );
  assert.equal(retention.deleted.deadLetters, 15);
  assert.equal(retention.progress().deletedRows.deadLetters, 15);
});

test('dead letters: once caught up, the next look waits deadLetterCheckMs; 0 keeps them all', async () => {
  const { store, steps } = recording(await filledStore(1));
  const letter = (seq: number) => ({
    seq,
    source: 's',
    reason: 'invalid_json' as const,
    detail: '',
    raw: '',
    receivedAt: T0,
  });
  await store.write(makeBatch({ deadLetters: [1, 2, 3].map(letter) }));
  const retention = new StoreRetention({ store, ticksMs: 0, candlesMs: 0, deadLetters: 2 });
  assert.equal(retention.enabled, true);
  assert.equal(await retention.step(), false);
  assert.deepStrictEqual(
    (await store.deadLetters(10)).map((kept) => kept.seq),
    [2, 3],
  );
  // Within the default minute it does not look again (and with nothing else to do, asks nothing).
  await store.write(makeBatch({ deadLetters: [4, 5].map(letter) }));
  assert.equal(await retention.step(), false);
  assert.equal(steps.length, 1);
  assert.equal((await store.deadLetters(10)).length, 4);
  assert.equal(new StoreRetention({ store, ticksMs: 0, candlesMs: 0, deadLetters: 0 }).enabled, false);
  for (const deadLetters of [-1, 1.5]) {
    assert.throws(() => new StoreRetention({ store, ticksMs: 0, candlesMs: 0, deadLetters }), RangeError);
  }
});

test('a kind kept forever does not make every step ask where stored rows begin', async () => {
  const store = await filledStore(3);
  const spans = countingSpans(store);
  const retention = new StoreRetention({ store, ticksMs: HOUR, candlesMs: 0, deadLetters: 5 });
  while (await retention.step()) {}
  const asked = spans.calls();
  assert.ok(asked >= 1);
  for (let i = 0; i < 3; i++) await retention.step();
  assert.equal(spans.calls(), asked);
});

test('a store younger than its retention is asked where rows begin once per spanCheckMs, not every step', async () => {
  const { store, steps } = recording(await filledStore(3));
  const spans = countingSpans(store);
  const retention = new StoreRetention({ store, ticksMs: 4 * HOUR, candlesMs: 4 * HOUR });
  for (let i = 0; i < 5; i++) assert.equal(await retention.step(), false);
  assert.equal(spans.calls(), 1);
  assert.equal(steps.length, 0);
  // Once the newest tick puts the oldest rows behind the cutoff, the reused answer no longer says
  // "nothing yet": the store is asked afresh and the first slice starts at its oldest row.
  await store.write(makeBatch({ ticks: [tick(100_000, T0 + 4 * HOUR + 30 * MINUTE)] }));
  while (await retention.step()) {}
  assert.equal(spans.calls(), 2);
  assert.equal(steps[0]?.ticksBeforeMs, T0 + MINUTE); // the first slice, from the oldest row
  assert.equal((await store.ticks('AAA', { to: T0 + 30 * MINUTE - 1, limit: 10 })).length, 0);
  assert.equal((await store.ticks('AAA', { from: T0 + 30 * MINUTE, limit: 1 })).length, 1);

  // With spanCheckMs 0 every step asks, as before.
  const fresh = await filledStore(1);
  const freshSpans = countingSpans(fresh);
  const eager = new StoreRetention({ store: fresh, ticksMs: 2 * HOUR, candlesMs: 0, spanCheckMs: 0 });
  for (let i = 0; i < 3; i++) await eager.step();
  assert.equal(freshSpans.calls(), 3);
});
