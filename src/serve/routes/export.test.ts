import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildTestServer, MINUTE, makeCandle, makeTick, withServer } from '../../../test/support/serve.ts';
import { makeBatch } from '../../store/conformance.ts';
import { MemoryStore } from '../../store/memory/memory-store.ts';
import { csvField, tickPages } from './export.ts';

test('ticks export: CSV with a header, nulls empty, attachment named after the symbol', async () => {
  await withServer(buildTestServer(), async ({ app }) => {
    const response = await app.inject({ url: '/api/v1/export/ticks/btcusdt?from=120000' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/csv; charset=utf-8/);
    assert.equal(response.headers['content-disposition'], 'attachment; filename="BTCUSDT-ticks.csv"');
    // SEED in test/support/serve.ts: BTCUSDT ticks at minutes 2, 3, 4; the last has no id, maShort 101.5, late.
    assert.equal(
      response.body,
      'ts,price,size,id,maShort,maLong,late\n' +
        '120000,101,1,t2,,,false\n' +
        '180000,102,1,t4,,,false\n' +
        '240000,103,1,,101.5,,true\n',
    );
  });
});

test('candles export: final candles from the store, then the forming one, within from/to', async () => {
  const { app, view } = await buildTestServer();
  view.forming.set('BTCUSDT:1m', [makeCandle('BTCUSDT', '1m', 5 * MINUTE, 104, false)]);
  try {
    const all = await app.inject({ url: '/api/v1/export/candles/BTCUSDT?interval=1m' });
    assert.equal(all.statusCode, 200);
    assert.equal(all.headers['content-disposition'], 'attachment; filename="BTCUSDT-candles-1m.csv"');
    const lines = all.body.trimEnd().split('\n');
    assert.equal(lines[0], 'ts,open,high,low,close,volume,trades,vwap,final');
    // Minutes 1..4 final (price 99 + minute), minute 5 forming at 104.
    assert.deepEqual(lines.slice(1), [
      '60000,100,100,100,100,2,1,100,true',
      '120000,101,101,101,101,2,1,101,true',
      '180000,102,102,102,102,2,1,102,true',
      '240000,103,103,103,103,2,1,103,true',
      '300000,104,104,104,104,2,1,104,false',
    ]);
    const ranged = await app.inject({
      url: '/api/v1/export/candles/BTCUSDT?interval=1m&from=120000&to=180000',
    });
    assert.deepEqual(
      ranged.body
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((line) => line.split(',')[0]),
      ['120000', '180000'],
    );
  } finally {
    await app.close();
  }
});

test('export errors: unknown symbol 404, bad interval 400, from > to 400', async () => {
  await withServer(buildTestServer(), async ({ app }) => {
    const cases: [string, number, string][] = [
      ['/api/v1/export/ticks/NOPE', 404, 'unknown_symbol'],
      ['/api/v1/export/candles/BTCUSDT?interval=2m', 400, 'invalid_interval'],
      ['/api/v1/export/ticks/BTCUSDT?from=5&to=4', 400, 'invalid_range'],
      ['/api/v1/export/ticks/BTC%20USDT', 400, 'invalid_symbol'],
    ];
    for (const [url, status, code] of cases) {
      const response = await app.inject({ url });
      assert.equal(response.statusCode, status, url);
      assert.equal(response.json().error.code, code, url);
    }
  });
});

test('tickPages pages through runs of equal timestamps without losing or repeating a tick', async () => {
  const store = new MemoryStore();
  await store.open();
  // 7 ticks: ts 1,1,1,2,2,2,3 with ids t1..t7; page size 2 splits every run.
  const tss = [1, 1, 1, 2, 2, 2, 3];
  await store.write(
    makeBatch({
      ticks: tss.map((ts, i) => makeTick('X', i + 1, ts, 10 + i)),
      checkpoint: { name: 't', offsets: {}, state: null },
    }),
  );
  const ids: (string | null)[] = [];
  for await (const page of tickPages(store, { symbol: 'X', from: 0, to: undefined }, 2))
    ids.push(...page.map((t) => t.id));
  assert.deepEqual(ids, ['t1', 't2', 't3', 't4', 't5', 't6', 't7']);
});

test('csvField quotes commas, quotes and newlines (RFC 4180) and leaves nulls empty', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('x\ny'), '"x\ny"');
  assert.equal(csvField(null), '');
  assert.equal(csvField(1.5), '1.5');
});
