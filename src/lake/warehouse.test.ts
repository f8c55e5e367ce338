import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatResult, type QueryResult, toJsonValue } from './warehouse.ts';

const result: QueryResult = {
  columns: ['symbol', 'n', 'note'],
  rows: [
    { symbol: 'BTCUSDT', n: 12, note: 'a, "quoted" note' },
    { symbol: 'ETHUSDT', n: 3, note: null },
  ],
  truncated: false,
};

describe('warehouse output', () => {
  it('prints JSON as an array of row objects', () => {
    assert.deepEqual(JSON.parse(formatResult(result, 'json')), result.rows);
  });

  it('prints CSV with a header and RFC 4180 quoting, null as empty', () => {
    assert.equal(formatResult(result, 'csv'), 'symbol,n,note\nBTCUSDT,12,"a, ""quoted"" note"\nETHUSDT,3,\n');
  });

  it('prints an aligned table with the row count', () => {
    assert.equal(
      formatResult({ ...result, truncated: true }, 'table'),
      [
        'symbol   n   note',
        '-------  --  ----------------',
        'BTCUSDT  12  a, "quoted" note',
        'ETHUSDT  3',
        '(2 rows, truncated)',
        '',
      ].join('\n'),
    );
  });

  it('keeps BIGINTs exact: numbers when safe, text beyond', () => {
    assert.equal(toJsonValue(1_700_000_000_000n), 1_700_000_000_000);
    assert.equal(toJsonValue(2n ** 60n), '1152921504606846976');
  });
});
