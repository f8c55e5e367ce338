/**
 * The pipeline page shows every degraded dependency with the name, code and cause `/ready` gives
 * (issue #11): the real CLI with its DuckDB store on a full disk (a small tmpfs: needs root, skipped
 * otherwise), seen in real Chromium while it lasts, and gone once space returns.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { getJson, type RunningCli, startCli, stopCli, waitDrained } from '../support/cli.ts';
import { writeReplay } from '../support/generate-ticks.ts';
import { fillDisk, mountTmpfs, unmount } from '../support/small-disk.ts';
import { artifactPath, ensureWebBuild, launchBrowser, skipReason } from './support.ts';

const browserSkip = skipReason();
let dir: string;
let disk: string;
let mounted = false;
let cli: RunningCli | undefined;
let browser: BrowserContext | undefined;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'streamlines-browser-health-'));
  disk = join(dir, 'small-disk');
  await mkdir(disk);
  mounted = !browserSkip && mountTmpfs(disk, 48 * 1024 * 1024);
});

after(async () => {
  await browser?.close();
  if (cli) await stopCli(cli);
  if (mounted) unmount(disk);
  await rm(dir, { recursive: true, force: true });
});

interface ReadyBody {
  checks: Record<string, { ok: boolean; error?: string; code?: string }>;
}

test('the pipeline page shows a store on a full disk as /ready names it, and clears once space returns', {
  skip: browserSkip,
  timeout: 300_000,
}, async (t) => {
  if (!mounted) {
    t.skip('cannot mount a tmpfs here (needs root)');
    return;
  }
  ensureWebBuild();
  const replay = join(dir, 'ticks.ndjson');
  await writeReplay(replay, { count: 120_000, seed: 5 });
  const config = join(dir, 'config.json');
  await writeFile(config, JSON.stringify({ store: { type: 'duckdb', path: join(disk, 'store.duckdb') } }));
  // About 1.5 MB free: DuckDB opens, then its writes fail once the replay is under way.
  const freeSpace = await fillDisk(disk, 1_500_000);
  cli = await startCli(['--replay', replay, '--data-dir', join(dir, 'data'), '--config', config]);
  browser = await launchBrowser();
  const page = await browser.newPage();
  await page.goto(`${cli.baseUrl}/pipeline`);

  const row = page.locator('[data-testid="health-table"] tr[data-dependency="store"]');
  await row.waitFor({ timeout: 60_000 });
  const shown = {
    code: (await row.locator('[data-testid="health-code"]').textContent())?.trim(),
    cause: (await row.locator('[data-testid="health-cause"]').textContent())?.trim() ?? '',
  };
  await page.screenshot({ path: await artifactPath('pipeline-health-full-disk.png'), fullPage: true });
  const ready = await getJson<ReadyBody>(cli.baseUrl, '/ready');
  assert.equal(ready.status, 503);
  const store = ready.body.checks.store!;
  assert.equal(shown.code, 'store_write_failed');
  assert.equal(shown.code, store.code, 'the page and /ready give the same code');
  assert.match(shown.cause, /No space left on device/);
  // /ready adds when the fault began: `CAUSE (since ISO-TIME)`.
  assert.ok(store.error?.startsWith(shown.cause), `/ready says ${store.error}; the page ${shown.cause}`);

  await freeSpace();
  await waitDrained(cli.baseUrl);
  await page
    .locator('[data-testid="health-ok"]', { hasText: 'Every dependency is ok.' })
    .waitFor({ timeout: 30_000 });
  assert.equal(await row.count(), 0, 'the store row is gone');
});
