/**
 * Budget for the dashboard's download: gzip size of every JS and CSS file of a fresh web/dist.
 * Measured at 82.7 KiB (26.8 KiB app + 53.7 KiB chart library, loaded lazily, + 2.2 KiB CSS); the budget
 * leaves ~20 % headroom so growth is a decision, not an accident.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { buildWeb } from './support.ts';

const BUDGET_BYTES = 100 * 1024;
/** What the first page needs before the chart library: the entry JS and the CSS. */
const ENTRY_BUDGET_BYTES = 35 * 1024;

test('gzip size of web/dist JS + CSS stays under the budget', async () => {
  // A build of its own: rebuilding web/dist would pull files from under the other suites' servers.
  const outDir = await mkdtemp(join(tmpdir(), 'streamlines-bundle-'));
  buildWeb(outDir);
  const assets = join(outDir, 'assets');
  let total = 0;
  let entry = 0;
  const sizes: string[] = [];
  for (const name of await readdir(assets)) {
    if (!/\.(js|css)$/.test(name)) continue;
    const size = gzipSync(await readFile(join(assets, name)), { level: 9 }).length;
    total += size;
    if (!name.startsWith('chart-')) entry += size;
    sizes.push(`${name} ${(size / 1024).toFixed(1)} KiB`);
  }
  await rm(outDir, { recursive: true, force: true });
  console.log(`bundle (gzip): ${sizes.join(', ')}; total ${(total / 1024).toFixed(1)} KiB`);
  assert.ok(total > 0, 'no assets built');
  assert.ok(total <= BUDGET_BYTES, `total ${total} B > budget ${BUDGET_BYTES} B`);
  assert.ok(entry <= ENTRY_BUDGET_BYTES, `entry ${entry} B > budget ${ENTRY_BUDGET_BYTES} B`);
});
