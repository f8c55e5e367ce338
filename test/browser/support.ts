/**
 * Shared by the browser tests: the system Chromium (never downloaded), skipping loudly outside CI
 * when it is missing, a fresh build of the dashboard, and replays shaped for live behaviour.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

// Page functions run in the browser; the repo's tsconfig has no DOM types.
// biome-ignore lint/suspicious/noExplicitAny: see above.
declare const window: any;
declare const requestAnimationFrame: (callback: (now: number) => void) => number;

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

/** One frame of a page's main thread in a Chromium trace (from one BeginMainThreadFrame to the next). */
export interface TracedFrame {
  /** Wall time of the frame (ms). */
  wallMs: number;
  /** CPU time the page's main thread used in it (ms): its own work, whatever else the machine ran. */
  cpuMs: number;
  /** Wall time the main thread spent in tasks (ms): above `cpuMs` when it was descheduled mid-task. */
  busyMs: number;
  /** CPU time (ms) by trace event, self time only (children subtracted), largest first. */
  work: [name: string, ms: number][];
}

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  tts?: number;
  dur?: number;
  tdur?: number;
  args?: { name?: string };
}

/** Scheduler wrappers around every task: their self time is only bookkeeping. */
const TASK_WRAPPERS = new Set(['RunTask', 'ThreadControllerImpl::RunTask']);

/**
 * Traces the page's renderer main thread while `during` runs (Chrome DevTools Protocol Tracing) and
 * returns its frames. CPU time comes from the thread's own clock (`tts`), so a frame stretched by
 * other processes on a busy machine shows a wall time well above its CPU time.
 */
export async function traceFrames(
  context: BrowserContext,
  page: Page,
  during: () => Promise<void>,
): Promise<TracedFrame[]> {
  const cdp = await context.newCDPSession(page);
  const events: TraceEvent[] = [];
  cdp.on('Tracing.dataCollected', (message) => events.push(...(message.value as unknown as TraceEvent[])));
  const complete = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
  await cdp.send('Tracing.start', {
    transferMode: 'ReportEvents',
    traceConfig: {
      includedCategories: [
        '__metadata',
        'toplevel',
        'devtools.timeline',
        'disabled-by-default-devtools.timeline',
        'disabled-by-default-devtools.timeline.frame',
        'v8',
        'v8.gc',
        'blink.gc',
      ],
    },
  });
  try {
    await during();
  } finally {
    await cdp.send('Tracing.end');
    await complete;
    await cdp.detach();
  }
  return framesOf(events);
}

function framesOf(events: TraceEvent[]): TracedFrame[] {
  const mainThreads = new Set(
    events
      .filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain')
      .map((e) => `${e.pid}:${e.tid}`),
  );
  // The page's main thread is the renderer main thread that ran the animation frames.
  const frameCount = new Map<string, number>();
  for (const e of events) {
    const thread = `${e.pid}:${e.tid}`;
    if (e.name === 'FireAnimationFrame' && mainThreads.has(thread)) {
      frameCount.set(thread, (frameCount.get(thread) ?? 0) + 1);
    }
  }
  const main = [...frameCount].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (main === undefined) return [];
  const mine = events.filter((e) => `${e.pid}:${e.tid}` === main).sort((a, b) => a.ts - b.ts);
  const begins = mine.filter((e) => e.name === 'BeginMainThreadFrame' && e.tts !== undefined);
  const frames: TracedFrame[] = [];
  for (let i = 0; i + 1 < begins.length; i++) {
    const start = begins[i]!;
    const end = begins[i + 1]!;
    frames.push({
      wallMs: (end.ts - start.ts) / 1000,
      cpuMs: (end.tts! - start.tts!) / 1000,
      busyMs: 0,
      work: [],
    });
  }
  // Self CPU time of each complete event, credited to the frame it started in.
  // Parents before their children: by start, then the longer first.
  const complete = mine
    .filter((e) => e.ph === 'X' && e.dur !== undefined)
    .sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
  const work = frames.map(() => new Map<string, number>());
  const stack: { event: TraceEvent; end: number; children: number; frame: number }[] = [];
  let frame = 0;
  // A task's wall time, split over the frames it overlaps (it may start just before a frame begins).
  const addBusy = (from: number, to: number, first: number) => {
    for (let i = Math.max(0, first - 1); i < frames.length && begins[i]!.ts < to; i++) {
      const overlap = Math.min(to, begins[i + 1]!.ts) - Math.max(from, begins[i]!.ts);
      if (overlap > 0) frames[i]!.busyMs += overlap / 1000;
    }
  };
  const close = (upTo: number) => {
    while (stack.length > 0 && stack[stack.length - 1]!.end <= upTo) {
      const top = stack.pop()!;
      const own = top.event.tdur ?? top.event.dur!;
      const parent = stack[stack.length - 1];
      if (parent) parent.children += own;
      else addBusy(top.event.ts, top.end, top.frame);
      if (!TASK_WRAPPERS.has(top.event.name) && work[top.frame]) {
        const map = work[top.frame]!;
        map.set(top.event.name, (map.get(top.event.name) ?? 0) + Math.max(0, own - top.children) / 1000);
      }
    }
  };
  for (const e of complete) {
    close(e.ts);
    while (frame + 1 < begins.length && begins[frame + 1]!.ts <= e.ts) frame++;
    if (e.ts < (begins[0]?.ts ?? 0)) continue;
    stack.push({ event: e, end: e.ts + e.dur!, children: 0, frame });
  }
  close(Number.POSITIVE_INFINITY);
  frames.forEach((f, i) => {
    f.work = [...work[i]!].filter(([, ms]) => ms >= 0.05).sort((a, b) => b[1] - a[1]);
  });
  return frames;
}

/** A line on a traced frame: its wall and CPU time and what the CPU went to. */
export function describeFrame(frame: TracedFrame): string {
  const top = frame.work
    .slice(0, 5)
    .map(([name, ms]) => `${name} ${ms.toFixed(1)}`)
    .join(', ');
  return `${frame.wallMs.toFixed(1)} ms wall, ${frame.cpuMs.toFixed(1)} ms main-thread CPU, ${frame.busyMs.toFixed(1)} ms in tasks (${top || 'idle'})`;
}

/** Frames of a page while something runs in it. */
export interface Frames {
  /** requestAnimationFrame deltas (ms): what the user sees, machine load included. */
  deltas: number[];
  /** The same frames in a trace of the page's main thread: its own CPU time in each, and on what. */
  traced: TracedFrame[];
}

/** Frame times of `page` while `during` runs: requestAnimationFrame deltas and a trace of the same time. */
export async function measureFrames(
  context: BrowserContext,
  page: Page,
  during: () => Promise<void>,
): Promise<Frames> {
  await page.evaluate(() => {
    window.__frames = [];
    window.__framesOn = true;
    let last = performance.now();
    const frame = (now: number) => {
      window.__frames.push(now - last);
      last = now;
      if (window.__framesOn) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  const traced = await traceFrames(context, page, during);
  const deltas = (await page.evaluate(() => {
    window.__framesOn = false;
    return window.__frames.slice(1);
  })) as number[];
  return { deltas, traced };
}

const stats = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) => quantile(sorted, p).toFixed(1);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${(sorted[sorted.length - 1] ?? 0).toFixed(1)} ms`;
};

/** p50/p99/max of the frames, wall and main-thread CPU, and a line per frame of 50 ms or more. */
export function frameSummary({ deltas, traced }: Frames): string {
  const slow = traced.filter((frame) => frame.wallMs >= 50);
  const heaviest = [...traced].sort((a, b) => b.cpuMs - a.cpuMs).slice(0, 3);
  return [
    `${deltas.length} frames (requestAnimationFrame): ${stats(deltas)}`,
    `  main-thread CPU per frame (trace, ${traced.length} frames): ${stats(traced.map((f) => f.cpuMs))}`,
    `  the 3 frames with the most CPU: ${heaviest.map(describeFrame).join('; ')}`,
    `  frames of 50 ms or more (wall): ${slow.length === 0 ? 'none' : `${slow.length}\n    ${slow.map(describeFrame).join('\n    ')}`}`,
  ].join('\n');
}
