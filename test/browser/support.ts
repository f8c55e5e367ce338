/**
 * Shared by the browser tests: the system Chromium (never downloaded), skipping loudly outside CI
 * when it is missing, a fresh build of the dashboard, and replays shaped for live behaviour.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

export const ROOT = join(import.meta.dirname, '../..');
export const ARTIFACTS = join(ROOT, 'test-artifacts');
export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or undefined. In CI a missing Chromium is a failure. */
export function skipReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const reason = `${CHROMIUM} is missing: install the Debian package "chromium" to run the browser tests`;
  if (process.env.CI === 'true') throw new Error(reason);
  process.stderr.write(`\n*** SKIPPING browser tests: ${reason} ***\n\n`);
  return reason;
}

/** Newest modification time (ms) of the dashboard's sources. */
function newestSource(): number {
  let newest = 0;
  const visit = (path: string) => {
    const stat = statSync(path);
    if (stat.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name));
    else newest = Math.max(newest, stat.mtimeMs);
  };
  for (const path of ['web/src', 'web/index.html', 'web/vite.config.ts']) visit(join(ROOT, path));
  return newest;
}

/** Runs `vite build web`, into web/dist or `outDir`. */
export function buildWeb(outDir?: string): void {
  const args = [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', 'web', '--logLevel', 'warn'];
  if (outDir) args.push('--outDir', outDir, '--emptyOutDir');
  const result = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`vite build failed: ${result.stderr}${result.stdout}`);
}

/**
 * Builds web/dist when it is missing or older than its sources. Never rebuilds a fresh one: another
 * suite's server may be serving it at that moment (its file routes are fixed at startup).
 */
export function ensureWebBuild(): void {
  const index = join(ROOT, 'web/dist/index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newestSource()) return;
  buildWeb();
}

/** Chromium with a fresh profile; close the context to stop it. */
export async function launchBrowser(): Promise<BrowserContext> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'streamlines-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

export interface ReplayShape {
  /** Symbols with `historyMinutes` of one tick a minute before the live part. */
  symbols: string[];
  historyMinutes: number;
  /** The live part: `liveSeconds` of `liveRate` ticks a second, spread over the symbols. */
  liveSeconds: number;
  liveRate: number;
  /** Price of the first symbol over the live part, from -> to (linear): lets a rule fire on cue. */
  firstSymbolLive?: { from: number; to: number };
}

/**
 * A replay whose history is read at once and whose live part plays in real time under `--speed 1`.
 * The pacer anchors wall time on the first line, so that line is the live part's start (an ANCHOR
 * symbol's tick) and the history, earlier in event time, is due at once; the history stays in
 * order per symbol, so none of it is late.
 */
export async function writeLiveReplay(path: string, shape: ReplayShape): Promise<{ liveStart: number }> {
  const liveStart = Math.floor(Date.UTC(2024, 0, 2) / 60_000) * 60_000;
  const lines: string[] = [JSON.stringify({ symbol: 'ANCHOR', ts: liveStart, price: 1, size: 1, id: 'a0' })];
  let id = 0;
  const base = (index: number) => 100 * (index + 1);
  for (let m = shape.historyMinutes; m >= 1; m--) {
    shape.symbols.forEach((symbol, index) => {
      const price = base(index) * (1 + 0.02 * Math.sin(m / 50 + index));
      const ts = liveStart - m * 60_000 + index * 1000;
      lines.push(JSON.stringify({ symbol, ts, price: +price.toFixed(4), size: 1 + (m % 5), id: `h${id++}` }));
    });
  }
  const total = shape.liveSeconds * shape.liveRate;
  for (let n = 0; n < total; n++) {
    const ts = liveStart + Math.floor((n * 1000) / shape.liveRate) + 1;
    const index = n % shape.symbols.length;
    const symbol = shape.symbols[index]!;
    let price = base(index) * (1 + 0.005 * Math.sin(n / 7));
    if (index === 0 && shape.firstSymbolLive) {
      const { from, to } = shape.firstSymbolLive;
      price = from + ((to - from) * n) / total;
    }
    lines.push(JSON.stringify({ symbol, ts, price: +price.toFixed(4), size: 1, id: `l${id++}` }));
  }
  await writeFile(path, `${lines.join('\n')}\n`);
  return { liveStart };
}

/** p-quantile of sorted values (nearest rank). */
export function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
