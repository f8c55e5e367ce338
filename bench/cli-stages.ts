/**
 * Stages that drive the real `streamlines` CLI in a child process: the embedded pipeline end to
 * end (a replay at full speed into the store, with the child's memory over the run) and the
 * latency from ingest to WebSocket clients under a live synthetic feed.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { getJson, type RunningCli, startCli, stopCli } from '../test/support/cli.ts';
import { quantile, rssMb } from './util.ts';

const POLL_MS = 50;

export interface PipelineResult {
  ticksPerSec: number;
  ms: number;
  accepted: number;
  /** RSS of the CLI process when it starts listening, halfway through the replay and once drained. */
  rssStartMb: number;
  rssHalfMb: number;
  rssEndMb: number;
  rssPeakMb: number;
  /** User + system CPU seconds of the CLI process from listening until drained, all threads. */
  cpuSeconds: number;
  /** The same per thread name (main thread `node`, DuckDB's, libuv's, V8's, workers'), summed by name. */
  cpuSecondsByThread: Record<string, number>;
}

/**
 * `streamlines run --replay FILE --speed max` into a fresh data dir (embedded log, DuckDB store),
 * timed from the moment the CLI listens until `/api/v1/stats` says drained.
 */
export async function measurePipeline(
  replay: string,
  lines: number,
  dataDir: string,
  extraArgs: readonly string[] = [],
): Promise<PipelineResult> {
  const cli = await startCli(['--replay', replay, '--speed', 'max', '--data-dir', dataDir, ...extraArgs]);
  const pid = cli.child.pid!;
  try {
    const started = performance.now();
    const threadsBefore = await threadCpuSeconds(pid);
    const rssStartMb = await rssMb(pid);
    const samples: { at: number; rss: number }[] = [{ at: 0, rss: rssStartMb }];
    let stats: { drained: boolean; accepted: number } = { drained: false, accepted: 0 };
    while (!stats.drained) {
      await sleep(POLL_MS);
      stats = (await getJson<typeof stats>(cli.baseUrl, '/api/v1/stats')).body;
      samples.push({ at: performance.now() - started, rss: await rssMb(pid) });
    }
    const ms = performance.now() - started;
    const threadsAfter = await threadCpuSeconds(pid);
    const rssEndMb = await rssMb(pid);
    const half = samples.reduce((best, sample) =>
      Math.abs(sample.at - ms / 2) < Math.abs(best.at - ms / 2) ? sample : best,
    );
    return {
      ticksPerSec: Math.round(lines / (ms / 1000)),
      ms,
      accepted: stats.accepted,
      rssStartMb,
      rssHalfMb: half.rss,
      rssEndMb,
      rssPeakMb: Math.max(rssEndMb, ...samples.map((sample) => sample.rss)),
      ...cpuBetween(threadsBefore, threadsAfter),
    };
  } finally {
    await stopCli(cli);
  }
}

/** A live synthetic market in the CLI, measured over `measureMs` after `warmupMs`. */
export interface LiveMarketOptions {
  dir: string;
  symbols: readonly string[];
  ticksPerSecond: number;
  warmupMs: number;
  measureMs: number;
  /** Hears the CLI's stdout after it listens (e.g. `--trace-gc` lines, with NODE_OPTIONS set). */
  onCliStdout?: (chunk: Buffer) => void;
  /** Told when the measured window starts (true) and ends (false). */
  onWindow?: (measuring: boolean) => void;
}

/** Starts `streamlines run` on a synthetic feed of `options` (config and data dir named `name` in `dir`). */
async function startLiveMarket(
  options: LiveMarketOptions,
  name: string,
  extraConfig: Record<string, unknown> = {},
): Promise<RunningCli> {
  const config = path.join(options.dir, `${name}-bench.json`);
  await writeFile(
    config,
    JSON.stringify({
      symbols: options.symbols,
      feeds: [{ type: 'synthetic', ticksPerSecond: options.ticksPerSecond, symbols: options.symbols }],
      ...extraConfig,
    }),
  );
  return startCli(['--config', config, '--data-dir', path.join(options.dir, `${name}-data`)]);
}

export interface WsLatencyResult {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  samples: number;
  /** Tick messages per second that reached the clients in the measured window (all clients together). */
  deliveredPerSec: number;
}

export interface EmbeddedWsLatencyResult extends WsLatencyResult {
  /**
   * CPU seconds per second of the window, by thread name, of the CLI (`MainThread` does the live path)
   * and of this process's clients (`clients`): what a loaded machine disturbs far less than latency.
   */
  cpuPerSecByThread: Record<string, number>;
}

/**
 * A synthetic feed at `ticksPerSecond` over `symbols` in the CLI, one WebSocket client per symbol
 * subscribed to `ticks:SYM`, all in this process. Latency is arrival at the client minus the tick's
 * `receivedAt` (ingest's Date.now()): the same machine's clock on both sides, so no skew, but it
 * includes this process's own event-loop delay in reading the socket.
 */
export async function measureWsLatency(options: LiveMarketOptions): Promise<EmbeddedWsLatencyResult> {
  const cli = await startLiveMarket(options, 'ws', {
    // Every client comes from this one address: lift the per-address cap above their number.
    server: { ws: { maxConnectionsPerClient: options.symbols.length + 10 } },
  });
  if (options.onCliStdout) cli.child.stdout!.on('data', options.onCliStdout);
  const clients: WebSocket[] = [];
  try {
    const wsUrl = `${cli.baseUrl.replace(/^http/, 'ws')}/ws`;
    const latencies: number[] = [];
    let measuring = false;
    let deliveredInWindow = 0;
    await Promise.all(
      options.symbols.map(async (symbol) => {
        const client = new WebSocket(wsUrl);
        clients.push(client);
        await new Promise<void>((resolve, reject) => {
          client.once('error', reject);
          client.once('open', () => {
            client.send(JSON.stringify({ op: 'subscribe', channels: [`ticks:${symbol}`] }));
          });
          client.on('message', (raw) => {
            const arrivedAt = Date.now();
            const message = JSON.parse(String(raw)) as {
              op?: string;
              channel?: string;
              data?: { receivedAt: number };
            };
            if (message.op === 'subscribed') resolve();
            else if (message.op === 'error') reject(new Error(`subscribe ${symbol}: ${String(raw)}`));
            else if (measuring && message.data !== undefined) {
              latencies.push(arrivedAt - message.data.receivedAt);
              deliveredInWindow++;
            }
          });
        });
      }),
    );
    await sleep(options.warmupMs);
    const pid = cli.child.pid!;
    const threadsBefore = await threadCpuSeconds(pid);
    const clientsBefore = process.cpuUsage();
    measuring = true;
    options.onWindow?.(true);
    const started = performance.now();
    await sleep(options.measureMs);
    measuring = false;
    options.onWindow?.(false);
    const windowMs = performance.now() - started;
    const clientsCpu = process.cpuUsage(clientsBefore);
    const { cpuSecondsByThread } = cpuBetween(threadsBefore, await threadCpuSeconds(pid));
    const cpuPerSecByThread: Record<string, number> = {};
    for (const [name, seconds] of Object.entries({
      ...cpuSecondsByThread,
      clients: (clientsCpu.user + clientsCpu.system) / 1e6,
    }))
      cpuPerSecByThread[name] = Number((seconds / (windowMs / 1000)).toFixed(3));
    if (latencies.length === 0) throw new Error('no tick reached the WebSocket clients');
    latencies.sort((a, b) => a - b);
    return {
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: latencies.at(-1)!,
      samples: latencies.length,
      deliveredPerSec: Math.round(deliveredInWindow / (windowMs / 1000)),
      cpuPerSecByThread,
    };
  } finally {
    for (const client of clients) client.terminate();
    await stopCli(cli);
  }
}

export interface IdleCpuResult {
  /** CPU time of the CLI process over the window, as a percentage of one core. */
  cpuPct: number;
  /** RSS at the end of the window. */
  rssMb: number;
  /** Ticks the pipeline accepted during the window, per second. */
  acceptedPerSec: number;
}

/** User + system CPU seconds of a process (or one thread's stat file) so far, from /proc (Linux). */
async function cpuSeconds(pid: number, statPath = `/proc/${pid}/stat`): Promise<number> {
  const stat = await readFile(statPath, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticksPerSecond = 100; // USER_HZ, 100 on every Linux this runs on
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** CPU seconds so far of each live thread of a process, by thread id, with the thread's name. */
async function threadCpuSeconds(pid: number): Promise<Map<string, { name: string; seconds: number }>> {
  const threads = new Map<string, { name: string; seconds: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    try {
      const name = (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim();
      threads.set(tid, { name, seconds: await cpuSeconds(pid, `/proc/${pid}/task/${tid}/stat`) });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return threads;
}

/** CPU used between two samples, in total and per thread name (threads that ended are missed). */
function cpuBetween(
  before: Map<string, { name: string; seconds: number }>,
  after: Map<string, { name: string; seconds: number }>,
): { cpuSeconds: number; cpuSecondsByThread: Record<string, number> } {
  const byThread: Record<string, number> = {};
  let total = 0;
  for (const [tid, { name, seconds }] of after) {
    const used = seconds - (before.get(tid)?.seconds ?? 0);
    byThread[name] = Number(((byThread[name] ?? 0) + used).toFixed(2));
    total += used;
  }
  return { cpuSeconds: Number(total.toFixed(2)), cpuSecondsByThread: byThread };
}

/**
 * What a modest live market costs: `streamlines run` with a synthetic feed of `ticksPerSecond` over
 * `symbols` (embedded log, DuckDB store, no client), CPU and RSS of the CLI process measured over
 * `measureMs` after `warmupMs`.
 */
export async function measureIdleCpu(options: LiveMarketOptions): Promise<IdleCpuResult> {
  const cli = await startLiveMarket(options, 'idle');
  const pid = cli.child.pid!;
  try {
    await sleep(options.warmupMs);
    const accepted = async () =>
      (await getJson<{ accepted: number }>(cli.baseUrl, '/api/v1/stats')).body.accepted;
    const cpuBefore = await cpuSeconds(pid);
    const acceptedBefore = await accepted();
    const started = performance.now();
    await sleep(options.measureMs);
    const cpuAfter = await cpuSeconds(pid);
    const acceptedAfter = await accepted();
    const seconds = (performance.now() - started) / 1000;
    return {
      cpuPct: Number((((cpuAfter - cpuBefore) / seconds) * 100).toFixed(1)),
      rssMb: Number((await rssMb(pid)).toFixed(1)),
      acceptedPerSec: Math.round((acceptedAfter - acceptedBefore) / seconds),
    };
  } finally {
    await stopCli(cli);
  }
}

/**
 * The event loop's long turns by the main thread's CPU in them: how many used 8-10, 10-20, 20-50 and
 * 50+ ms of CPU (work on the main thread, whatever the machine's load), how many used less (mostly
 * waiting for a core), and the five with the most CPU.
 */
function summariseBlocks(blocks: readonly { wallMs: number; cpuMs: number }[]) {
  const byCpuMs: Record<string, number> = { under8: 0, '8-10': 0, '10-20': 0, '20-50': 0, '50+': 0 };
  for (const { cpuMs } of blocks) {
    const bucket =
      cpuMs < 8 ? 'under8' : cpuMs < 10 ? '8-10' : cpuMs < 20 ? '10-20' : cpuMs < 50 ? '20-50' : '50+';
    byCpuMs[bucket]!++;
  }
  const most = [...blocks].sort((a, b) => b.cpuMs - a.cpuMs).slice(0, 5);
  return {
    over8MsWall: blocks.length,
    byCpuMs,
    mostCpu: most.map(({ wallMs, cpuMs }) => ({ wallMs, cpuMs })),
  };
}

/**
 * `npx node bench/cli-stages.ts pipeline [LINES] [--cpu-prof DIR] [--config FILE]`: the pipeline stage alone on a
 * fresh replay like `npm run bench`'s (default 1 000 000 lines), printed as one JSON line with the
 * CLI's CPU seconds per million lines (the load-independent figure). `--cpu-prof DIR` runs the CLI
 * under V8's profiler (slower) and leaves its .cpuprofile files in DIR.
 */
if (import.meta.main) {
  const { writeReplay } = await import('../test/support/generate-ticks.ts');
  const { SYMBOLS } = await import('./micro.ts');
  const args = process.argv.slice(2);
  const profileAt = args.indexOf('--cpu-prof');
  const profileDir = profileAt >= 0 ? path.resolve(args.splice(profileAt, 2)[1] ?? 'profiles') : undefined;
  const configAt = args.indexOf('--config');
  const extraArgs = configAt >= 0 ? ['--config', path.resolve(args.splice(configAt, 2)[1] ?? '')] : [];
  const [stage = 'pipeline', linesArg = '1000000'] = args;
  if (stage === 'ws') {
    // `ws [TICKS_PER_SEC] [--trace-gc] [--loop-blocks] [--cpu-prof DIR]`: the WebSocket latency stage
    // as `npm run bench` runs it, with a summary of the CLI's garbage collections and of the turns of
    // its event loop that took over 8 ms (with the main thread's CPU in each) over the measured window.
    const traceGc = process.argv.includes('--trace-gc');
    const loopBlocks = process.argv.includes('--loop-blocks');
    const nodeOptions = [
      ...(traceGc ? [`--import ${path.join(import.meta.dirname, 'trace-gc.ts')}`] : []),
      ...(loopBlocks ? [`--import ${path.join(import.meta.dirname, 'loop-blocks.ts')}`] : []),
      ...(profileDir !== undefined ? [`--cpu-prof --cpu-prof-dir=${profileDir}`] : []),
    ];
    if (nodeOptions.length > 0) process.env.NODE_OPTIONS = nodeOptions.join(' ');
    const blocks: { wallMs: number; cpuMs: number; startUs: number; endUs: number }[] = [];
    const gcPauses: { kind: string; ms: number }[] = [];
    let lastMarkCompact: string | undefined;
    let measuring = false;
    const dir = await mkdtemp(path.join(tmpdir(), 'streamlines-ws-'));
    try {
      const warmupMs = 3_000;
      const result = await measureWsLatency({
        dir,
        symbols: (await import('./micro.ts')).SYMBOLS,
        ticksPerSecond: Number(args[1] ?? 20_000),
        warmupMs,
        measureMs: 20_000,
        onWindow: (inWindow) => {
          measuring = inWindow;
        },
        onCliStdout: (chunk) => {
          if (!measuring) return;
          for (const line of String(chunk).split('\n')) {
            if (line.includes('Mark-Compact')) lastMarkCompact = line.trim();
            const block = /^loop-block ([\d.]+) ([\d.]+) (\d+) (\d+)$/.exec(line);
            if (block !== null) {
              const [wallMs, cpuMs, startUs, endUs] = block.slice(1).map(Number) as [
                number,
                number,
                number,
                number,
              ];
              blocks.push({ wallMs, cpuMs, startUs, endUs });
            }
          }
          // e.g. "[123:0x...]  4567 ms: Scavenge 40.1 (52.3) -> 38.2 (52.3) MB, pooled: 0 MB, 1.23 / 0.00 ms ..."
          for (const match of String(chunk).matchAll(
            /ms: ([A-Za-z-]+(?: \([^)]*\))?)[^,]*, (?:pooled: [\d.]+ MB, )?([\d.]+) \//g,
          ))
            gcPauses.push({ kind: match[1]!, ms: Number(match[2]) });
        },
      });
      const byKind: Record<string, { count: number; totalMs: number; maxMs: number }> = {};
      for (const { kind, ms } of gcPauses) {
        byKind[kind] ??= { count: 0, totalMs: 0, maxMs: 0 };
        const entry = byKind[kind];
        entry.count++;
        entry.totalMs = Number((entry.totalMs + ms).toFixed(2));
        entry.maxMs = Math.max(entry.maxMs, ms);
      }
      const loadAverage = (await import('node:os')).loadavg().map((l) => Number(l.toFixed(2)));
      process.stdout.write(
        `${JSON.stringify({
          ...result,
          ...(traceGc && { gc: byKind, lastMarkCompact }),
          ...(loopBlocks && { loopBlocks: summariseBlocks(blocks) }),
          loadAverage,
        })}\n`,
      );
      if (loopBlocks && profileDir !== undefined) {
        await writeFile(path.join(profileDir, 'loop-blocks.json'), JSON.stringify(blocks));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    process.exit(0);
  }
  if (stage !== 'pipeline') {
    process.stderr.write(
      'usage: node bench/cli-stages.ts pipeline [LINES] [--cpu-prof DIR] [--config FILE] | ws [TICKS_PER_SEC] [--trace-gc] [--loop-blocks] [--cpu-prof DIR]\n',
    );
    process.exit(2);
  }
  // The CLI child inherits this: the bench process itself spawns nothing else.
  if (profileDir !== undefined) process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${profileDir}`;
  const dir = await mkdtemp(path.join(tmpdir(), 'streamlines-pipeline-'));
  try {
    const replay = path.join(dir, 'ticks.ndjson');
    await writeReplay(replay, { count: Number(linesArg), seed: 1, hostile: false, symbols: [...SYMBOLS] });
    const lines = (await readFile(replay, 'utf8')).split('\n').filter((line) => line !== '').length;
    const loadBefore = (await import('node:os')).loadavg()[0]!;
    const result = await measurePipeline(replay, lines, path.join(dir, 'data'), extraArgs);
    const cpuSecondsPerMillion = Number(((result.cpuSeconds / lines) * 1e6).toFixed(2));
    const loadAverage = [loadBefore, (await import('node:os')).loadavg()[0]!].map((l) =>
      Number(l.toFixed(2)),
    );
    process.stdout.write(`${JSON.stringify({ lines, ...result, cpuSecondsPerMillion, loadAverage })}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
