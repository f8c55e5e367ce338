import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChannel } from './channels.ts';

test('normalises the symbol of ticks and candles channels', () => {
  assert.deepEqual(parseChannel('ticks:btcusdt'), { ok: true, channel: 'ticks:BTCUSDT' });
  assert.deepEqual(parseChannel('ticks: eth-usd '), { ok: true, channel: 'ticks:ETH-USD' });
  assert.deepEqual(parseChannel('candles:btcusdt:5m'), { ok: true, channel: 'candles:BTCUSDT:5m' });
  assert.deepEqual(parseChannel('alerts'), { ok: true, channel: 'alerts' });
});

test('symbols containing a colon keep it; the interval is after the last colon', () => {
  assert.deepEqual(parseChannel('ticks:nyse:ibm'), { ok: true, channel: 'ticks:NYSE:IBM' });
  assert.deepEqual(parseChannel('candles:nyse:ibm:1h'), { ok: true, channel: 'candles:NYSE:IBM:1h' });
});

test('rejects bad channels with a message naming them', () => {
  const cases: [unknown, RegExp][] = [
    [42, /channel must be a string, got number/],
    ['trades:BTCUSDT', /"trades:BTCUSDT": expected ticks:SYMBOL/],
    ['ticks:', /"ticks:": symbol must match/],
    ['ticks:BTC USDT', /symbol must match/],
    ['candles:BTCUSDT', /expected candles:SYMBOL:INTERVAL/],
    ['candles:BTCUSDT:2m', /INTERVAL one of 1m, 5m, 15m, 1h/],
    ['candles::1m', /symbol must match/],
    ['Alerts', /expected ticks:SYMBOL, candles:SYMBOL:INTERVAL or alerts/],
  ];
  for (const [raw, message] of cases) {
    const result = parseChannel(raw);
    assert.equal(result.ok, false, String(raw));
    if (!result.ok) assert.match(result.message, message);
  }
});
