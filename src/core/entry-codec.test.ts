import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeEntries, EntryCodecError, EntryEncoder, type KeyedValue } from './entry-codec.ts';
import { SeededRandom } from './random.ts';

function decode(bytes: Uint8Array): KeyedValue[] {
  const out: KeyedValue[] = [];
  decodeEntries(bytes, (key, value) => out.push({ key, value }));
  return out;
}

/** Ticks as ingest appends them: ids of every kind, sides, seq or not. */
function ticks(count: number, seed = 1): KeyedValue[] {
  const random = new SeededRandom(seed);
  let ts = 1_700_000_000_000;
  const out: KeyedValue[] = [];
  for (let i = 0; i < count; i++) {
    ts += Math.floor(random.next() * 500) - 100;
    const symbol = `SYM${Math.floor(random.next() * 20)}`;
    const tick: Record<string, unknown> = {
      source: random.next() < 0.5 ? 'binance' : 'replay',
      symbol,
      ts,
      price: Math.round(random.next() * 1e8) / 1e4,
      size: Math.round(random.next() * 1e5) / 1e5,
      receivedAt: 1_764_000_000_000 + i,
    };
    const idKind = random.next();
    if (idKind < 0.6) tick.id = String(1_000_000 + i * 3 - Math.floor(random.next() * 10));
    else if (idKind < 0.7) tick.id = `T-${i}`;
    else if (idKind < 0.75) tick.id = `00${i}`;
    if (random.next() < 0.8) tick.side = random.next() < 0.5 ? 'buy' : 'sell';
    tick.kind = 'tick';
    if (seed % 2 === 0) tick.seq = 10_000 + i;
    out.push({ key: symbol, value: tick });
  }
  return out;
}

describe('entry codec', () => {
  it('round-trips ingest ticks exactly, with or without seq', () => {
    const encoder = new EntryEncoder();
    for (const seed of [1, 2]) {
      const records = ticks(5_000, seed);
      assert.deepEqual(decode(encoder.encode(records)), records);
    }
  });

  it('decodes each tick with its keys in the order ingest builds them', () => {
    const records = ticks(500, 2);
    const decoded = decode(new EntryEncoder().encode(records));
    decoded.forEach(({ value }, i) => {
      assert.deepEqual(Object.keys(value as object), Object.keys(records[i]!.value as object), `record ${i}`);
    });
  });

  it('round-trips any other value as JSON does, in order among the ticks', () => {
    const odd: KeyedValue[] = [
      {
        key: '',
        value: {
          kind: 'rejected',
          source: 'x',
          reason: 'invalid_json',
          detail: 'd',
          raw: '{"a"',
          receivedAt: 5,
        },
      },
      { key: 'k', value: { kind: 'clock', wallMs: 17 } },
      { key: 'é☃𝄞', value: 'text with é☃𝄞 and "quotes"' },
      { key: 'n', value: null },
      { key: 'u', value: undefined },
      { key: 'a', value: [1, { b: [true, false] }] },
      // Tick-like values the tick form does not carry exactly go as JSON.
      {
        key: 'A',
        value: { kind: 'tick', source: 's', symbol: 'A', ts: 1.5, price: 1, size: 1, receivedAt: 1 },
      },
      {
        key: 'A',
        value: { kind: 'tick', source: 's', symbol: 'A', ts: 1, price: 1, size: 1, receivedAt: 1, extra: 1 },
      },
      {
        key: 'A',
        value: {
          kind: 'tick',
          source: 's',
          symbol: 'A',
          ts: 1,
          price: 1,
          size: 1,
          receivedAt: 1,
          side: 'up',
        },
      },
      {
        key: 'A',
        value: { kind: 'tick', source: 's', symbol: 'A', ts: 2 ** 53, price: 1, size: 1, receivedAt: 1 },
      },
      {
        key: 'A',
        value: { kind: 'tick', source: 's', symbol: 'A', ts: 1, price: Number.NaN, size: 1, receivedAt: 1 },
      },
      { key: 'x'.repeat(300), value: { long: 'y'.repeat(70_000) } },
    ];
    const records = [...ticks(10, 3), ...odd, ...ticks(10, 4)];
    const expected = records.map(({ key, value }) => ({
      key,
      value: JSON.parse(JSON.stringify(value) ?? 'null'),
    }));
    assert.deepEqual(decode(new EntryEncoder().encode(records)), expected);
  });

  it('keeps an exact id past 2^52 as a string, and a key other than the symbol', () => {
    const records: KeyedValue[] = [
      {
        key: 'other',
        value: {
          source: 's',
          symbol: 'A',
          ts: 1,
          price: 2,
          size: 0,
          receivedAt: 3,
          id: '9007199254740991',
          kind: 'tick',
        },
      },
      {
        key: 'A',
        value: { source: 's', symbol: 'A', ts: 1, price: 2, size: 0, receivedAt: 3, id: '0', kind: 'tick' },
      },
    ];
    assert.deepEqual(decode(new EntryEncoder().encode(records)), records);
  });

  it('takes at most 40 bytes per typical tick (docs/design.md, Targets: at most 64 in the log)', () => {
    const records = ticks(10_000, 2);
    const bytes = new EntryEncoder().encode(records).length;
    const perTick = bytes / records.length;
    const json = JSON.stringify(records.flatMap(({ key, value }) => [key, value])).length / records.length;
    assert.ok(perTick <= 40, `${perTick.toFixed(1)} bytes per tick`);
    assert.ok(perTick < json / 3, `${perTick.toFixed(1)} bytes vs ${json.toFixed(1)} as JSON`);
  });

  it('rejects bytes it did not write', () => {
    const bytes = new EntryEncoder().encode(ticks(3)).slice();
    assert.throws(() => decode(bytes.subarray(0, bytes.length - 1)), EntryCodecError);
    assert.throws(() => decode(Uint8Array.of(1, 7)), EntryCodecError);
    assert.throws(() => decode(Uint8Array.of(...bytes, 0)), EntryCodecError);
  });
});
