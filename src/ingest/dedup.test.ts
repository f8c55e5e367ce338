import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SeededRandom } from '../core/random.ts';
import { Dedup, exactIdOf, IdRanges } from './dedup.ts';

const HOUR = 3_600_000;

describe('exactIdOf', () => {
  it('takes canonical decimal integers below 2^53 and nothing else', () => {
    assert.equal(exactIdOf('7'), 7);
    assert.equal(exactIdOf('0'), 0);
    assert.equal(exactIdOf('9007199254740991'), 2 ** 53 - 1);
    for (const other of [
      '007',
      '00',
      '-1',
      '1e3',
      '1.0',
      ' 7',
      '7 ',
      '',
      'abc',
      '9007199254740992',
      '12345678901234567',
    ])
      assert.equal(exactIdOf(other), -1, other);
  });
});

describe('IdRanges', () => {
  it('merges an increasing feed into one range', () => {
    const ranges = new IdRanges();
    for (let id = 1; id <= 10_000; id++) assert.equal(ranges.add(id), true);
    assert.equal(ranges.rangeCount, 1);
    assert.deepEqual(ranges.toFlat(), [1, 10_000]);
    assert.equal(ranges.add(5_000), false);
    assert.equal(ranges.has(10_001), false);
  });

  it('stays exact for out-of-order ids, merging gaps as they fill', () => {
    const random = new SeededRandom(3);
    const ids = Array.from({ length: 2_000 }, (_, i) => i * 2); // even ids, then odd ones fill the gaps
    const odd = Array.from({ length: 2_000 }, (_, i) => i * 2 + 1);
    for (let i = odd.length - 1; i > 0; i--) {
      const j = Math.floor(random.next() * (i + 1));
      [odd[i], odd[j]] = [odd[j]!, odd[i]!];
    }
    const ranges = new IdRanges();
    const seen = new Set<number>();
    for (const id of [...ids.reverse(), ...odd]) {
      assert.equal(ranges.add(id), !seen.has(id), `add ${id}`);
      seen.add(id);
      // Spot-check membership against a plain set.
      const probe = Math.floor(random.next() * 4_100);
      assert.equal(ranges.has(probe), seen.has(probe), `has ${probe}`);
    }
    assert.deepEqual(ranges.toFlat(), [0, 3_999]);
    for (let id = 0; id < 4_000; id++) assert.equal(ranges.add(id), false);
  });
});

describe('Dedup', () => {
  it('drops a repeated id per (source, symbol), "7" and 7 being one id, "007" another', () => {
    const dedup = new Dedup(24 * HOUR);
    assert.equal(dedup.check('s', 'A', 1_000, '7'), 'accept');
    assert.equal(dedup.check('s', 'A', 1_001, '7'), 'duplicate');
    assert.equal(dedup.check('s', 'A', 1_002, '007'), 'accept');
    assert.equal(dedup.check('s', 'A', 1_003, '007'), 'duplicate');
    assert.equal(dedup.check('s', 'B', 1_004, '7'), 'accept');
    assert.equal(dedup.check('t', 'A', 1_005, '7'), 'accept');
    assert.equal(dedup.check('s', 'A', 1_006, undefined), 'accept');
    assert.equal(dedup.check('s', 'A', 1_006, undefined), 'accept');
  });

  it('remembers exact ids forever, other ids for the horizon, and rejects older ones as too_old', () => {
    const dedup = new Dedup(HOUR);
    assert.equal(dedup.check('s', 'A', 0, 'abc'), 'accept');
    assert.equal(dedup.check('s', 'A', 0, '1'), 'accept');
    // The newest tick moves to exactly one horizon later: ts 0 is still inside.
    assert.equal(dedup.check('s', 'A', HOUR, undefined), 'accept');
    assert.equal(dedup.check('s', 'A', 0, 'abc'), 'duplicate');
    assert.equal(dedup.check('s', 'A', 1, 'x-1'), 'accept');
    // One ms further and ts 0 falls behind: a non-canonical id there can no longer be checked.
    assert.equal(dedup.check('s', 'A', HOUR + 1, undefined), 'accept');
    assert.equal(dedup.check('s', 'A', 0, 'abc'), 'too_old');
    assert.equal(dedup.check('s', 'A', 0, 'new'), 'too_old');
    assert.equal(dedup.check('s', 'A', 1, 'x-1'), 'duplicate');
    // Exact ids are never too old.
    assert.equal(dedup.check('s', 'A', 0, '1'), 'duplicate');
    assert.equal(dedup.check('s', 'A', 0, '2'), 'accept');
    // An id whose first tick fell behind is forgotten: within the horizon it is new again.
    assert.equal(dedup.check('s', 'A', 3 * HOUR, undefined), 'accept');
    assert.equal(dedup.check('s', 'A', 2 * HOUR + 5, 'x-1'), 'accept');
    // Other symbols have their own newest tick.
    assert.equal(dedup.check('s', 'B', 0, 'abc'), 'accept');
  });

  it('holds a few numbers per symbol for increasing ids, and a bounded set for other ids', () => {
    const dedup = new Dedup(HOUR);
    for (let n = 0; n < 200_000; n++) {
      const symbol = `S${n % 100}`;
      dedup.check('feed', symbol, 1_000 * n, String(Math.floor(n / 100) + 1));
      dedup.check('other', symbol, 1_000 * n, `trade-${n}`);
    }
    const sizes = dedup.sizes();
    assert.equal(sizes.keys, 200);
    assert.equal(sizes.ranges, 100, 'one range per symbol of the integer feed');
    // 1 h of event time behind the newest ts is 3 600 s = 36 ids per symbol; the map holds at most twice
    // what it held at its last sweep (and at least the sweep threshold).
    assert.ok(sizes.ids <= 100 * 2_048, `ids kept: ${sizes.ids}`);
    // The checkpoint holds ranges and newest ts only: its size does not depend on the ids.
    assert.ok(JSON.stringify(dedup.checkpoint()).length < 200 * 120);
  });

  it('points horizonFrom at the oldest append still holding an id inside the horizon', () => {
    const dedup = new Dedup(HOUR);
    dedup.beginAppend([0]);
    dedup.check('s', 'A', 0, '1');
    assert.equal(dedup.horizonFrom(), undefined, 'integer ids need no reading back');
    dedup.beginAppend([10]);
    dedup.check('s', 'A', 1_000, 'x');
    dedup.beginAppend([20]);
    dedup.check('s', 'B', 2_000, 'y');
    assert.deepEqual(dedup.horizonFrom(), [10]);
    dedup.beginAppend([30]);
    dedup.check('s', 'A', HOUR + 1_001, undefined); // x falls behind A's horizon
    assert.deepEqual(dedup.horizonFrom(), [20]);
    dedup.check('s', 'B', HOUR + 2_001, undefined);
    assert.equal(dedup.horizonFrom(), undefined);
    assert.equal(dedup.checkpoint().horizonFrom, null);
  });

  it('writes out ids older than the previous checkpoint, so the log to read back stays short', () => {
    const dedup = new Dedup(HOUR);
    dedup.beginAppend([0]);
    dedup.check('s', 'A', 0, 'x');
    const first = dedup.checkpoint();
    assert.deepEqual(first.keys[0]!.ids, []);
    assert.deepEqual(first.horizonFrom, [0]);
    dedup.beginAppend([10]);
    dedup.check('s', 'A', 1, 'y');
    const second = JSON.parse(JSON.stringify(dedup.checkpoint()));
    assert.deepEqual(second.keys[0].ids, ['x', 0]);
    assert.deepEqual(second.horizonFrom, [10]);
    // Restored from the second checkpoint: x is known at once, y once the log from offset 10 is read.
    const restored = new Dedup(HOUR, second);
    assert.equal(restored.check('s', 'A', 5, 'x'), 'duplicate');
    restored.replayAccepted('s', 'A', 1, 'y');
    assert.equal(restored.check('s', 'A', 5, 'y'), 'duplicate');
    // Writing all out: nothing left to read back.
    const all = dedup.checkpoint(true);
    assert.deepEqual(all.keys[0]!.ids, ['x', 0, 'y', 1]);
    assert.equal(all.horizonFrom, null);
  });

  it('restores from its snapshot and the log from horizonFrom on to the same decisions', () => {
    const random = new SeededRandom(11);
    const first = new Dedup(HOUR);
    const inputs: [string, number, string | undefined][] = [];
    for (let n = 0; n < 5_000; n++) {
      const id =
        random.next() < 0.5
          ? String(Math.floor(random.next() * 3_000))
          : `z${Math.floor(random.next() * 3_000)}`;
      inputs.push([
        `S${n % 3}`,
        Math.floor(n * 2_000 - random.next() * 2 * HOUR),
        random.next() < 0.1 ? undefined : id,
      ]);
    }
    // The "log": accepted ticks at their offsets, appended in batches of 50.
    const log: [string, number, string | undefined][] = [];
    const half = inputs.length / 2;
    for (let i = 0; i < half; i++) {
      if (i % 50 === 0) first.beginAppend([log.length]);
      const [symbol, ts, id] = inputs[i]!;
      if (first.check('src', symbol, ts, id) === 'accept') log.push([symbol, ts, id]);
    }
    const snapshot = JSON.parse(JSON.stringify(first.checkpoint()));
    assert.ok(snapshot.horizonFrom[0] > 0, 'only the tail of the log is read back');
    const restored = new Dedup(HOUR, snapshot);
    for (const [symbol, ts, id] of log.slice(snapshot.horizonFrom[0]))
      restored.replayAccepted('src', symbol, ts, id);
    for (let i = half; i < inputs.length; i++) {
      if (i % 50 === 0) {
        first.beginAppend([log.length]);
        restored.beginAppend([log.length]);
      }
      const [symbol, ts, id] = inputs[i]!;
      const verdict = first.check('src', symbol, ts, id);
      assert.equal(restored.check('src', symbol, ts, id), verdict, `${symbol} ${ts} ${id}`);
      if (verdict === 'accept') log.push([symbol, ts, id]);
    }
  });
});
