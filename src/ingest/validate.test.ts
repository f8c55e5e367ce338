import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateRecord } from './validate.ts';

const base = { source: 'x', symbol: 'BTCUSDT', ts: 1_700_000_000_000, price: 100.5, size: 0.25, id: 'a1' };

function reasonOf(value: unknown): string {
  const result = validateRecord(value, 'replay', 1);
  return result.ok ? 'ok' : result.reason;
}

describe('validateRecord (docs/design.md, Validation)', () => {
  it('accepts a well-formed record and keeps its fields', () => {
    const result = validateRecord({ ...base, side: 'buy' }, 'replay', 42);
    assert.deepEqual(result, {
      ok: true,
      tick: {
        source: 'x',
        symbol: 'BTCUSDT',
        ts: base.ts,
        price: 100.5,
        size: 0.25,
        id: 'a1',
        side: 'buy',
        receivedAt: 42,
      },
    });
  });

  it("builds ingest's log entry whole when asked: kind last, keys in the entry codec's order", () => {
    const result = validateRecord({ side: 'SELL', ...base, id: 7 }, 'replay', 42, 'tick');
    assert.ok(result.ok);
    assert.deepEqual(
      Object.keys(result.tick),
      'source symbol ts price size receivedAt id side kind'.split(' '),
    );
    assert.deepEqual(result.tick, { ...base, id: '7', side: 'sell', receivedAt: 42, kind: 'tick' });
    const bare = validateRecord({ symbol: 'eth', ts: 1, price: 1, size: 0 }, 'replay', 3, 'tick');
    assert.deepEqual(bare.ok && Object.entries(bare.tick), [
      ['source', 'replay'],
      ['symbol', 'ETH'],
      ['ts', 1],
      ['price', 1],
      ['size', 0],
      ['receivedAt', 3],
      ['kind', 'tick'],
    ]);
  });

  it('trims and upper-cases symbols', () => {
    const result = validateRecord({ ...base, symbol: '  btc-usd ' }, 'replay', 1);
    assert.equal(result.ok && result.tick.symbol, 'BTC-USD');
  });

  it('rejects what is not a JSON object', () => {
    for (const value of [null, 1, 'text', [base], true]) assert.equal(reasonOf(value), 'not_object');
  });

  it('rejects bad symbols', () => {
    for (const symbol of [undefined, 12, '', '   ', '-BTC', 'BTC USD', 'A'.repeat(33), 'btc$']) {
      assert.equal(reasonOf({ ...base, symbol }), 'invalid_symbol', String(symbol));
    }
    // The longest allowed: one leading character plus 31 more.
    assert.equal(reasonOf({ ...base, symbol: 'A'.repeat(32) }), 'ok');
    assert.equal(reasonOf({ ...base, symbol: 'BTC#USD' }), 'invalid_symbol');
    assert.equal(reasonOf({ ...base, symbol: 'BTC/USD:X_1.2-Y' }), 'ok');
  });

  it('rejects ts that is not a positive integer', () => {
    for (const ts of [undefined, 0, -5, 1.5, '1700000000000', Number.NaN, null]) {
      assert.equal(reasonOf({ ...base, ts }), 'invalid_ts', String(ts));
    }
  });

  it('rejects price that is not a finite number > 0', () => {
    for (const price of [undefined, 0, -1, '100', Number.POSITIVE_INFINITY, null]) {
      assert.equal(reasonOf({ ...base, price }), 'invalid_price', String(price));
    }
  });

  it('rejects size that is not a finite number >= 0, and accepts 0', () => {
    for (const size of [undefined, -0.1, '1', null])
      assert.equal(reasonOf({ ...base, size }), 'invalid_size', String(size));
    assert.equal(reasonOf({ ...base, size: 0 }), 'ok');
  });

  it('accepts string and integer ids (as strings), rejects others', () => {
    const result = validateRecord({ ...base, id: 12345 }, 'replay', 1);
    assert.equal(result.ok && result.tick.id, '12345');
    const without = validateRecord({ ...base, id: undefined }, 'replay', 1);
    assert.equal(without.ok && 'id' in without.tick, false);
    for (const id of [1.5, null, true, { a: 1 }, ['x']])
      assert.equal(reasonOf({ ...base, id }), 'invalid_id', String(id));
  });

  it('checks the rules in order and explains the first broken one', () => {
    const result = validateRecord({ symbol: 'BTC', ts: -1, price: -1 }, 'replay', 1);
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'invalid_ts');
    assert.match(!result.ok ? result.detail : '', /ts must be a positive integer.*-1/);
  });

  it('uses the feed source when the record has none', () => {
    const { source: _source, ...withoutSource } = base;
    const result = validateRecord(withoutSource, 'replay', 1);
    assert.equal(result.ok && result.tick.source, 'replay');
  });
});
