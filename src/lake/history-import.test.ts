import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binanceRecord, describeFile } from './history-import.ts';

// Lines from the FEEDS.md samples (test/fixtures/binance), columns as FEEDS.md lists them.
describe('Binance dump rows', () => {
  it('maps an aggTrade of 2024 (ms) and a trade of 2025 (µs) onto ticks with the taker side', () => {
    assert.deepEqual(
      binanceRecord(
        '3329001,41984.58000000,0.12898983,4400100,4400101,1735689000000,True,True',
        'binance-aggtrades',
        'BTCUSDT',
      ),
      {
        source: 'binance',
        symbol: 'BTCUSDT',
        ts: 1735689000000,
        price: 41984.58,
        size: 0.12898983,
        id: '3329001',
        side: 'sell',
      },
    );
    assert.deepEqual(
      binanceRecord(
        '4400132,41995.32000000,0.06724311,2823.89592225,1735689600390123,False,True',
        'binance-trades',
        'BTCUSDT',
      ),
      {
        source: 'binance',
        symbol: 'BTCUSDT',
        ts: 1735689600390,
        price: 41995.32,
        size: 0.06724311,
        id: '4400132',
        side: 'buy',
      },
    );
  });

  it('hands a malformed line to ingest as it is, to be rejected and kept', () => {
    assert.equal(binanceRecord('garbage,line', 'binance-trades', 'BTCUSDT'), 'garbage,line');
    assert.equal(
      binanceRecord('1,2,3,4,soon,True,True', 'binance-trades', 'BTCUSDT'),
      '1,2,3,4,soon,True,True',
    );
  });

  it('reads the format and symbol off Binance file names', () => {
    assert.deepEqual(describeFile('/x/BTCUSDT-aggTrades-2025-01-01.zip'), {
      format: 'binance-aggtrades',
      symbol: 'BTCUSDT',
    });
    assert.deepEqual(describeFile('ethusdt-trades-2024-12.csv'), {
      format: 'binance-trades',
      symbol: 'ETHUSDT',
    });
    assert.deepEqual(describeFile('ticks.ndjson'), { format: 'ndjson' });
    assert.equal(describeFile('binance-public-trades-2025-01-01.csv'), undefined);
  });
});
