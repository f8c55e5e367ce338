/**
 * The dashboard in a real browser against the real CLI on a replay whose live part plays for ~30 s:
 * markets, symbol chart, interval switch, alerts toast and list, CSV export, pipeline counters.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { getJson, type RunningCli, startCli, stopCli, waitDrained } from '../support/cli.ts';
import { artifactPath, ensureWebBuild, launchBrowser, skipReason, writeLiveReplay } from './support.ts';

// Page functions run in the browser; the repo's tsconfig has no DOM types.
// biome-ignore lint/suspicious/noExplicitAny: see above.
declare const window: any;
// biome-ignore lint/suspicious/noExplicitAny: see above.
declare const document: any;
declare const requestAnimationFrame: (callback: () => void) => number;

const skip = skipReason();
let cli: RunningCli;
let browser: BrowserContext;
let dir: string;
let watcher: Page;
const consoleErrors: string[] = [];
let toastSeen: Promise<string>;

interface ChartBar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
}
interface ApiCandle {
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  page.on('response', (response) => {
    if (response.status() >= 400) consoleErrors.push(`HTTP ${response.status()} ${response.url()}`);
  });
  return page;
}

before(async () => {
  if (skip) return;
  ensureWebBuild();
  dir = await mkdtemp(join(tmpdir(), 'streamlines-browser-'));
  const replay = join(dir, 'live.ndjson');
  // BTCUSDT history stays within 98..102; live it climbs 100 -> 112 over 30 s, so `above 108`
  // fires once, about 20 s in.
  await writeLiveReplay(replay, {
    symbols: ['BTCUSDT', 'ETHUSDT'],
    historyMinutes: 1500,
    liveSeconds: 30,
    liveRate: 40,
    firstSymbolLive: { from: 100, to: 112 },
  });
  const config = join(dir, 'config.yaml');
  await writeFile(config, 'alerts:\n  rules:\n    - { symbol: BTCUSDT, above: 108 }\n');
  cli = await startCli([
    '--config',
    config,
    '--data-dir',
    join(dir, 'data'),
    '--replay',
    replay,
    '--speed',
    '1',
  ]);
  browser = await launchBrowser();
  watcher = await newPage();
  await watcher.goto(`${cli.baseUrl}/`);
  // Started before the other checks, so the alert is not missed while they run.
  toastSeen = watcher
    .locator('[data-testid="toast"]', { hasText: 'BTCUSDT' })
    .first()
    .textContent({ timeout: 45_000 })
    .then((text) => text ?? '');
});

after(async () => {
  await browser?.close();
  if (cli) await stopCli(cli);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('markets: a card per symbol, first card painted within 1 s, live ticks move the price', {
  skip,
}, async () => {
  const page = await newPage();
  await page.goto(`${cli.baseUrl}/`);
  await page.locator('a.card[data-symbol="BTCUSDT"]').waitFor();
  const firstCard = await page.evaluate(() => performance.getEntriesByName('first-card')[0]?.startTime ?? -1);
  console.log(`first card painted ${firstCard.toFixed(0)} ms after navigation start`);
  assert.ok(firstCard > 0 && firstCard < 1000, `first card at ${firstCard} ms`);
  const symbols = (await getJson<{ symbols: { symbol: string }[] }>(cli.baseUrl, '/api/v1/symbols')).body
    .symbols;
  const cards = await page
    .locator('a.card')
    .evaluateAll((els) => els.map((el) => el.getAttribute('data-symbol')));
  assert.deepEqual(
    cards,
    symbols.map((s) => s.symbol),
  );

  const before = await page.evaluate(() => ({ ...window.__streamlines.cards.BTCUSDT! }));
  await page.waitForFunction(
    (start) => {
      const card = window.__streamlines.cards.BTCUSDT!;
      return card.updates > 0 && card.lastTs > start;
    },
    before.lastTs,
    { timeout: 10_000 },
  );
  // The card is drawn once per animation frame, so the text may trail the latest tick by a frame: read
  // both in the page, at a moment they agree, rather than one after the other from here.
  const { after, shown } = await page
    .waitForFunction(
      () => {
        const card = window.__streamlines.cards.BTCUSDT!;
        const text = document.querySelector(
          'a.card[data-symbol="BTCUSDT"] [data-testid="last-price"]',
        )?.textContent;
        const agree =
          text != null && Number(text.replaceAll(',', '')).toFixed(2) === card.lastPrice.toFixed(2);
        return agree ? { after: { ...card }, shown: text } : false;
      },
      undefined,
      { timeout: 10_000 },
    )
    .then((handle) => handle.jsonValue() as Promise<{ after: typeof before; shown: string }>);
  assert.ok(after.lastTs > before.lastTs);
  assert.equal(Number(shown.replaceAll(',', '')).toFixed(2), after.lastPrice.toFixed(2));
  // A test artifact only: the README's screenshot (docs/screenshot.png) is of `npm start`, not of test data.
  await page.screenshot({ path: await artifactPath('markets.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: await artifactPath('markets-phone.png'), fullPage: true });
  await page.close();
});

/** Chart bars equal the API's candles, except that the forming last one may have moved between reads. */
async function assertChartMatchesApi(page: Page, interval: string): Promise<number> {
  await page.waitForFunction((want) => window.__streamlines.chart?.interval === want, interval);
  const bars = (await page.evaluate(() => window.__streamlines.chart!.candles())) as ChartBar[];
  const { body } = await getJson<{ candles: ApiCandle[] }>(
    cli.baseUrl,
    `/api/v1/candles/BTCUSDT?interval=${interval}&limit=10000`,
  );
  const api = body.candles;
  assert.ok(bars.length > 10, `${interval}: ${bars.length} bars`);
  assert.ok(api.length - bars.length <= 1 && api.length >= bars.length, `${api.length} vs ${bars.length}`);
  const settled = bars.length - 1;
  assert.deepEqual(
    bars.slice(0, settled).map((b) => [b.time * 1000, b.open, b.high, b.low, b.close]),
    api.slice(0, settled).map((c) => [c.ts, c.open, c.high, c.low, c.close]),
  );
  return bars.length;
}

test('symbol view: the chart holds the API candles, live candles move it, intervals reload history', {
  skip,
}, async () => {
  const page = await newPage();
  await page.goto(`${cli.baseUrl}/symbol/BTCUSDT`);
  await page.locator('[data-testid="chart"] canvas').first().waitFor();
  assert.equal((await assertChartMatchesApi(page, '1m')) > 1400, true);
  assert.ok(await page.getByRole('link', { name: 'TradingView', exact: true }).isVisible());
  // The library's own attribution logo (option attributionLogo) is on too.
  assert.ok((await page.locator('a[href*="tradingview.com"]').count()) >= 2);

  // The forming candle arrives over the WebSocket without a reload.
  const updates = await page.evaluate(() => window.__streamlines.chart!.liveUpdates);
  await page.waitForFunction((n) => window.__streamlines.chart!.liveUpdates > n, updates, {
    timeout: 10_000,
  });
  await page.locator('[data-testid="chart"]').hover({ position: { x: 400, y: 150 } });
  await page.screenshot({ path: await artifactPath('symbol-1m.png') });

  for (const interval of ['5m', '1h']) {
    await page.click(`button[data-interval="${interval}"]`);
    await assertChartMatchesApi(page, interval);
  }
  await page.screenshot({ path: await artifactPath('symbol-1h.png') });

  // CSV download: the link's range, fetched by the browser, equals the API's ticks.
  await page.selectOption('select', 'ticks');
  const href = await page.getByTestId('export-link').getAttribute('href');
  const url = new URL(href!, cli.baseUrl);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-link').click(),
  ]);
  assert.equal(download.suggestedFilename(), 'BTCUSDT-ticks.csv');
  const csv = await readFile((await download.path())!, 'utf8');
  const from = url.searchParams.get('from');
  const to = url.searchParams.get('to');
  const { body } = await getJson<{ ticks: { ts: number; price: number; size: number; id: string | null }[] }>(
    cli.baseUrl,
    `/api/v1/ticks/BTCUSDT?from=${from}&to=${to}&limit=10000`,
  );
  const rows = csv.trimEnd().split('\n');
  assert.equal(rows[0], 'ts,price,size,id,maShort,maLong,late');
  const csvTicks = rows.slice(1).map((line) => line.split(','));
  // Ticks keep arriving while the test runs: compare the part both reads cover.
  const n = Math.min(csvTicks.length, body.ticks.length);
  assert.ok(n > 1000, `${n} ticks in the export`);
  assert.deepEqual(
    csvTicks.slice(0, n).map((r) => [Number(r[0]), Number(r[1]), Number(r[2]), r[3]]),
    body.ticks.slice(0, n).map((t) => [t.ts, t.price, t.size, t.id ?? '']),
  );
  await page.close();
});

/**
 * The live-candle race of the symbol view: candles published while its history is in flight. The
 * page talks to a stand-in WebSocket that, like the server, delivers a channel's candles only to
 * clients subscribed when they are published, and the history answers are held until those are out.
 */
test('symbol view: a candle that closes while the history loads still reaches the chart', {
  skip,
}, async () => {
  const minute = 60_000;
  const t0 = Date.UTC(2024, 0, 2, 10);
  const candle = (ts: number, interval: string, trades: number, final: boolean) => ({
    symbol: 'RACE',
    interval,
    ts,
    open: 100,
    high: 100 + trades,
    low: 99,
    close: 100 + trades / 2,
    volume: trades,
    trades,
    vwap: 100,
    final,
  });
  // What each interval's history holds (the server's snapshot), and what is published while the
  // snapshot is on its way: in 1m, the forming bar closes and the next one opens; in 5m, only a state
  // of the forming bar older than the snapshot's (it was published before the snapshot was read).
  const scenario: Record<string, { history: unknown[]; published: unknown[]; expected: number[][] }> = {
    '1m': {
      history: [candle(t0, '1m', 3, true), candle(t0 + minute, '1m', 4, false)],
      published: [candle(t0 + minute, '1m', 5, true), candle(t0 + 2 * minute, '1m', 1, false)],
      expected: [
        [t0, 101.5],
        [t0 + minute, 102.5],
        [t0 + 2 * minute, 100.5],
      ],
    },
    '5m': {
      history: [candle(t0, '5m', 9, true), candle(t0 + 5 * minute, '5m', 4, false)],
      published: [candle(t0 + 5 * minute, '5m', 3, false)],
      expected: [
        [t0, 104.5],
        [t0 + 5 * minute, 102],
      ],
    },
  };
  const page = await newPage();
  const subscribed = new Set<string>();
  let socket: { send: (message: string) => void } | undefined;
  await page.routeWebSocket(
    (url) => url.pathname === '/ws',
    (ws) => {
      socket = ws;
      ws.onMessage((message) => {
        const { op, channels } = JSON.parse(String(message)) as { op: string; channels: string[] };
        for (const channel of channels)
          op === 'subscribe' ? subscribed.add(channel) : subscribed.delete(channel);
        ws.send(JSON.stringify({ op: `${op}d`, channels }));
      });
    },
  );
  let requested: (interval: string) => void = () => {};
  let historyAsked = new Promise<string>((resolve) => {
    requested = resolve;
  });
  const release = new Map<string, () => void>();
  await page.route('**/api/v1/candles/RACE?**', async (route) => {
    const interval = new URL(route.request().url()).searchParams.get('interval') ?? '1m';
    const released = new Promise<void>((resolve) => release.set(interval, resolve));
    requested(interval);
    await released;
    await route.fulfill({ json: { symbol: 'RACE', interval, candles: scenario[interval]!.history } });
  });
  await page.route('**/api/v1/indicators/RACE?**', (route) =>
    route.fulfill({ json: { symbol: 'RACE', interval: '1m', points: [] } }),
  );
  await page.route('**/api/v1/ticks/RACE?**', (route) =>
    route.fulfill({ json: { symbol: 'RACE', ticks: [] } }),
  );

  await page.goto(`${cli.baseUrl}/symbol/RACE`);
  for (const interval of ['1m', '5m']) {
    if (interval !== '1m') await page.click(`button[data-interval="${interval}"]`);
    assert.equal(await historyAsked, interval);
    historyAsked = new Promise<string>((resolve) => {
      requested = resolve;
    });
    // The server publishes to the clients subscribed at that moment.
    const channel = `candles:RACE:${interval}`;
    for (const data of scenario[interval]!.published) {
      if (subscribed.has(channel)) socket?.send(JSON.stringify({ channel, data }));
    }
    release.get(interval)!();
    await page.waitForFunction((want) => window.__streamlines.chart?.interval === want, interval);
    // Live candles are drawn on the next animation frame.
    await page.evaluate(
      () => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))),
    );
    const bars = (await page.evaluate(() => window.__streamlines.chart!.candles())) as ChartBar[];
    assert.deepEqual(
      bars.map((bar) => [bar.time * 1000, bar.close]),
      scenario[interval]!.expected,
      `${interval}: the chart's bars (ts, close)`,
    );
  }
  await page.close();
});

test('alerts: a fired alert appears as a toast and in the list', { skip }, async () => {
  const toast = await toastSeen;
  assert.match(toast, /BTCUSDT/);
  assert.match(toast, /price above/);
  await watcher.screenshot({ path: await artifactPath('toast.png') });
  // Golden and death crosses keep firing while the replay plays: compare the list once it is over.
  await waitDrained(cli.baseUrl, 60_000);
  const page = await newPage();
  await page.goto(`${cli.baseUrl}/alerts`);
  const { body } = await getJson<{ alerts: { symbol: string; kind: string }[] }>(
    cli.baseUrl,
    '/api/v1/alerts',
  );
  assert.ok(body.alerts.some((a) => a.symbol === 'BTCUSDT' && a.kind === 'price_above'));
  // The list is virtualised: it holds every alert, and draws only the rows on screen.
  await page
    .waitForFunction(
      (count) => {
        const status = document.querySelector('[data-testid="alerts-count"]');
        return Number(status?.dataset.count) === count && status?.dataset.complete === 'true';
      },
      body.alerts.length,
      { timeout: 10_000 },
    )
    .catch(async (error) => {
      const shown = await page.getByTestId('alerts-count').getAttribute('data-count');
      throw new Error(`${error}: API has ${body.alerts.length} alerts, page lists ${shown}`);
    });
  const drawn = await page.locator('[data-testid="alerts-table"] [data-row]').count();
  assert.ok(drawn > 0 && drawn <= Math.min(body.alerts.length, 100), `${drawn} rows drawn`);
  await page.selectOption('[data-testid="filter-kind"]', 'anomaly');
  await page.waitForSelector('text=No alerts match.');
  await page.selectOption('[data-testid="filter-kind"]', 'price_above');
  await page.waitForSelector('[data-testid="alerts-table"] >> text=BTCUSDT');
  await page.screenshot({ path: await artifactPath('alerts.png') });
  await page.close();
});

test('pipeline: the page shows the counters of /api/v1/stats', { skip }, async () => {
  const stats = (await waitDrained(cli.baseUrl, 60_000)) as Record<string, number>;
  const page = await newPage();
  await page.goto(`${cli.baseUrl}/pipeline`);
  await page.waitForSelector('text=yes');
  for (const name of [
    'received',
    'accepted',
    'rejected',
    'duplicates',
    'late',
    'candlesClosed',
    'alertsFired',
  ]) {
    const shown = await page.locator(`[data-counter="${name}"]`).textContent();
    assert.equal(Number(shown!.replaceAll(',', '')), stats[name], name);
  }
  assert.equal(await page.locator('[data-counter="lag"]').textContent(), '0');
  const feedMessages = await page.locator('[data-testid="feed-messages"]').first().textContent();
  assert.ok(Number(feedMessages!.replace(/[^0-9.]/g, '')) > 0);
  await page.screenshot({ path: await artifactPath('pipeline.png'), fullPage: true });
  await page.close();
});

test('no console errors on any page', { skip }, () => {
  assert.deepEqual(consoleErrors, []);
});
